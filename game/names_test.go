package game_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
)

// Names people really have, from many scripts: each must be accepted as
// written (after PRECIS's trimming and width folding).
func TestNamesPeopleHave(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"O'Brien", "O'Brien"},
		{"Zoë Ødegaard-Smith", "Zoë Ødegaard-Smith"},
		{"  José María  ", "José María"},
		{"Nguyễn Văn An", "Nguyễn Văn An"},
		{"Ana 🎉", "Ana 🎉"},
		{"👍🏽 Kim", "👍🏽 Kim"},
		{"می\u200cخواهم", "می\u200cخواهم"}, // Persian with a zero-width non-joiner
		{"مریم\u200cالسادات", "مریم\u200cالسادات"},
		{"دانيال", "دانيال"},
		{"עמית", "עמית"},
		{"Σωκράτης", "Σωκράτης"},
		{"Дмитрий", "Дмитрий"},
		{"श्रीनिवास", "श्रीनिवास"},
		{"ஸ்ரீநிவாசன்", "ஸ்ரீநிவாசன்"},
		{"山田 太郎", "山田 太郎"},
		{"やまだ タロウ", "やまだ タロウ"},
		{"田中ゆき", "田中ゆき"}, // Han + Hiragana in one word
		{"김민준", "김민준"},
		{"李小龙", "李小龙"},
		{"ქეთევანი", "ქეთევანი"},
		{"Հայկ", "Հայկ"},
		{"ᏣᎳᎩ", "ᏣᎳᎩ"},
		{"ｔａｐｐｅｒ", "tapper"},         // full-width letters are folded
		{"Ann  Lee", "Ann Lee"},      // spaces collapsed
		{"Sasha Саша", "Sasha Саша"}, // two scripts in two words
		{strings.Repeat("é", 24), strings.Repeat("é", 24)},
		{strings.Repeat("e\u0301", 24), strings.Repeat("é", 24)}, // 24 characters, composed
		{"R2-D2", "R2-D2"},
		{"x_æ_a-12", "x_æ_a-12"},
		// Emoji keep their selectors, joiners and tags (emoji.go).
		{"❤️ Ann", "❤️ Ann"},                 // U+2764 U+FE0F
		{"👩\u200d💻 Ana", "👩\u200d💻 Ana"},     // woman technologist
		{"🏃🏽\u200d♀️ Mia", "🏃🏽\u200d♀️ Mia"}, // skin tone, joiner, female sign, selector
		{"🏳️\u200d🌈", "🏳️\u200d🌈"},           // rainbow flag
		{"👨\u200d👩\u200d👧 Lee", "👨\u200d👩\u200d👧 Lee"},
		{"🏴󠁧󠁢󠁷󠁬󠁳󠁿 Dai", "🏴󠁧󠁢󠁷󠁬󠁳󠁿 Dai"},                                   // Wales
		{"1️⃣ Uno", "1️⃣ Uno"},                                           // keycap
		{"👩💻 👩\u200d💻", "👩💻 👩\u200d💻"},                                   // each keeps its own
		{"  ⭐️  Star  ", "⭐️ Star"},                                      // trimmed and collapsed around emoji
		{strings.Repeat("👩\u200d💻", 24), strings.Repeat("👩\u200d💻", 24)}, // 24 characters
		{"क्\u200dष", "क्\u200dष"},                                       // a joiner after a virama, as PRECIS allows
		{testenv.LongestName, testenv.LongestName},                       // 24 characters, 320 bytes
	} {
		got, err := game.NormalizeName(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// Tricks that must fail, each with the message a person sees.
func TestNameTricks(t *testing.T) {
	for _, tc := range []struct{ in, msg string }{
		{"", "choose a name"},
		{"   ", "choose a name"},
		{"\u3164", "a control, invisible or formatting character"}, // Hangul filler
		{"\u3164\u3164\u3164", "a control, invisible or formatting character"},
		{"\u200b", "a control, invisible or formatting character"},
		{"a\u200bb", "a control, invisible or formatting character"},
		{"rtl\u202eoverride", "a control, invisible or formatting character"},
		{"tab\there", "a control, invisible or formatting character"},
		{"nul\x00", "a control, invisible or formatting character"},
		{"\u200d", "a control, invisible or formatting character"},
		{"a" + strings.Repeat("\u0301", 23), "too many accents"},
		{"Z" + strings.Repeat("\u0336\u0335", 4) + "algo", "too many accents"},
		{"аdmin", "mixes alphabets"}, // Cyrillic а
		{"pаypal", "mixes alphabets"},
		{"Ρaul", "mixes alphabets"}, // Greek capital rho
		{"...", "at least one visible"},
		{"- _ -", "at least one visible"},
		{strings.Repeat("a", 25), "too long: at most 24 characters (it has 25)"},
		{strings.Repeat("😀", 25), "too long"},
		{"\xff\xfe", "not valid text"},
		// Selectors, joiners and tags outside an emoji.
		{"An\u200dn", "a control, invisible or formatting character"},
		{"a\u200d😀", "a control, invisible or formatting character"},
		{"😀\u200d", "a control, invisible or formatting character"},
		{"😀\u200d\u200d😀", "a control, invisible or formatting character"},
		{"x\ufe0f", "a control, invisible or formatting character"},
		{"❤\ufe0f\ufe0f", "a control, invisible or formatting character"},
		{"🏴\U000E0067\U000E0062", "a control, invisible or formatting character"}, // no cancel tag
		{"😀\U000E0067\U000E007F", "a control, invisible or formatting character"}, // tags after another emoji
		{strings.Repeat("👩\u200d💻", 25), "too long: at most 24 characters (it has 25)"},
		// One character of 15.9 KB: emoji joined by zero-width joiners.
		{strings.Repeat("😀\u200d", 2269) + "😀", "at most 320 bytes"},
		{strings.Repeat("🏴󠁧󠁢󠁷󠁬󠁳󠁿", 12), "at most 320 bytes of text (emoji and some alphabets take several bytes a character; it has 336)"}, // 12 characters of 28 bytes
		{testenv.LongestName + "e", "too long"},
		{"€" + testenv.LongestName[:len(testenv.LongestName)-2], "at most 320 bytes"}, // 24 characters, 321 bytes
	} {
		got, err := game.NormalizeName(tc.in)
		if err == nil {
			t.Errorf("NormalizeName(%q) = %q, want a refusal", tc.in, got)
			continue
		}
		if game.ErrorCode(err) != game.EINVALID || !errors.Is(err, game.ErrInvalidName) {
			t.Errorf("NormalizeName(%q): %v is not an invalid-name error", tc.in, err)
		}
		if msg := game.ErrorMessage(err); !strings.Contains(msg, tc.msg) {
			t.Errorf("NormalizeName(%q) says %q, want it to say %q", tc.in, msg, tc.msg)
		}
	}
}

// Names that clash share a key (game.NameKeys, after NormalizeName): case,
// width and look-alike letters of other scripts, whole words included;
// different names do not.
func TestNameKeys(t *testing.T) {
	keys := func(name string) []string {
		t.Helper()
		n, err := game.NormalizeName(name)
		if err != nil {
			t.Fatalf("NormalizeName(%q): %v", name, err)
		}
		return game.NameKeys(n)
	}
	clash := func(a, b string) bool {
		for _, ka := range keys(a) {
			for _, kb := range keys(b) {
				if ka == kb {
					return true
				}
			}
		}
		return false
	}
	for _, p := range [][2]string{
		{"alice", "alice"}, {"alice", "Alice"}, {"alice", "ALICE"}, {"alice", "ａｌｉｃｅ"},
		{"ABE", "ΑΒΕ"},                                 // Greek capitals, a whole word
		{"ABE", "АВЕ"},                                 // Cyrillic capitals
		{"Ian", "ian"}, {"Ian", "IAN"}, {"Ian", "lan"}, // I and l look alike
		{"rn", "m"}, {"Straße", "STRASSE"}, {"Ana 🎉", "ana 🎉"},
		{"Zoë", "ZOË"}, {"Zoë", "Zoe\u0308"},
	} {
		if !clash(p[0], p[1]) {
			t.Errorf("%q and %q do not clash: keys %q and %q", p[0], p[1], keys(p[0]), keys(p[1]))
		}
	}
	for _, p := range [][2]string{
		{"ann", "anna"}, {"αβε", "abe"}, {"Zoë", "Zoe"}, {"Sasha", "Саша"}, {"Ana 🎉", "Ana 🎈"}, {"山田 太郎", "山田 次郎"},
		{"Turbo Otter 42", "Turbo Otter 43"},
	} {
		if clash(p[0], p[1]) {
			t.Errorf("%q and %q clash: keys %q and %q", p[0], p[1], keys(p[0]), keys(p[1]))
		}
	}
}

package game_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"github.com/tapwars/tapwars/game"
)

func TestFunNamesAreValid(t *testing.T) {
	for range 200 {
		if n := game.FunName(); mustName(t, n) != n {
			t.Fatalf("FunName %q is not a valid name", n)
		}
	}
}

func mustName(t *testing.T, n string) string {
	t.Helper()
	got, err := game.NormalizeName(n)
	if err != nil {
		t.Fatalf("NormalizeName(%q): %v", n, err)
	}
	return got
}

// FuzzNormalizeName checks the rule on any input: an accepted name is
// valid UTF-8, trimmed, 1–24 user-perceived characters, holds no control
// or bidi-override character, and normalising it again changes nothing.
func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"ann", "  Zoë  ", "<b>x</b>", "a\"b", "", " ", strings.Repeat("x", 25), "山田", "\u202e", "\xff", "O'Brien", "می\u200cخواهم", "👩\u200d💻 Ana", "❤️", "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", "1️⃣", "a\u200d😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := game.NormalizeName(in)
		if err != nil {
			if !errors.Is(err, game.ErrInvalidName) {
				t.Fatalf("unexpected error %v", err)
			}
			if out != "" {
				t.Fatalf("refused name returned %q", out)
			}
			return
		}
		if n := uniseg.GraphemeClusterCount(out); n < 1 || n > game.MaxNameLen || !utf8.ValidString(out) {
			t.Fatalf("%q accepted with %d characters", out, n)
		}
		if out != strings.TrimSpace(out) {
			t.Fatalf("%q is not trimmed", out)
		}
		for _, r := range out {
			if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
				t.Fatalf("%q accepted with %U", out, r)
			}
		}
		if again, err := game.NormalizeName(out); err != nil || again != out {
			t.Fatalf("normalising %q again gave %q, %v", out, again, err)
		}
	})
}

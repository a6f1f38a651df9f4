package game_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/tapwars/tapwars/game"
)

// allowedRune is the naming rule, written independently of NormalizeName.
func allowedRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.Is(unicode.M, r) || unicode.IsDigit(r) || r == ' ' || r == '-' || r == '_' || r == '.'
}

func TestNormalizeName(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"ann", "ann"},
		{"  ann  ", "ann"},
		{"Zoë Ödegaard-3.5_x", "Zoë Ödegaard-3.5_x"},
		{"山田 太郎", "山田 太郎"},
		{"नमस्ते", "नमस्ते"}, // letters with combining marks
		{"Ωμέγα", "Ωμέγα"},
		{strings.Repeat("é", 24), strings.Repeat("é", 24)}, // 24 characters, 48 bytes
	} {
		got, err := game.NormalizeName(tc.in)
		if err != nil || got != tc.out {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", tc.in, got, err, tc.out)
		}
	}
	for _, in := range []string{"", "   ", strings.Repeat("a", 25), "<script>", "a\"b", "a'b", "a&b", "tab\there",
		"new\nline", "nul\x00", "rtl\u202eoverride", "zero\u200bwidth", "emoji😀", "a/b", `a\b`, "\xff\xfe", "a;b", "a{b}"} {
		if got, err := game.NormalizeName(in); err != game.ErrInvalidName {
			t.Errorf("NormalizeName(%q) = %q, %v; want ErrInvalidName", in, got, err)
		}
	}
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
// trimmed, 1–24 characters, only letters, marks, digits, space, '-', '_',
// '.', valid UTF-8, free of anything HTML or JSON would need to escape, and
// normalising it again changes nothing.
func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"ann", "  Zoë  ", "<b>x</b>", "a\"b", "", " ", strings.Repeat("x", 25), "山田", "\u202e", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := game.NormalizeName(in)
		if err != nil {
			if err != game.ErrInvalidName {
				t.Fatalf("unexpected error %v", err)
			}
			if out != "" {
				t.Fatalf("refused name returned %q", out)
			}
			return
		}
		if out != strings.TrimSpace(in) {
			t.Fatalf("%q normalised to %q, not just trimmed", in, out)
		}
		if n := utf8.RuneCountInString(out); n < 1 || n > game.MaxNameLen || !utf8.ValidString(out) {
			t.Fatalf("%q accepted with %d characters", out, n)
		}
		if out != strings.TrimSpace(out) {
			t.Fatalf("%q is not trimmed", out)
		}
		for _, r := range out {
			if !allowedRune(r) {
				t.Fatalf("%q accepted with %U", out, r)
			}
		}
		if strings.ContainsAny(out, "<>&\"'`\\/\n\r\t\x00") {
			t.Fatalf("%q holds a character that needs escaping", out)
		}
		if again, err := game.NormalizeName(out); err != nil || again != out {
			t.Fatalf("normalising %q again gave %q, %v", out, again, err)
		}
	})
}

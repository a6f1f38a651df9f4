package flatjson

import (
	"encoding/json"
	"testing"
)

// FuzzAppendString: every string comes out as json.Marshal writes it.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "ann", `a"b`, `a\b`, "<script>&", "tab\there", "\x00\x1f\x7f", "Zoë 🐱", "\u2028\u2029", "\xff\xfe", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("AppendString(%q) = %s, json.Marshal %s", s, got[1:], want)
		}
	})
}

// FuzzReader: whatever a Reader accepts, encoding/json reads the same.
func FuzzReader(f *testing.F) {
	for _, s := range []string{`{"s":"ann","n":12}`, `{"s":"","n":-0}`, `{"s":"Zoë","n":007}`, `{"s":"a\"b","n":1}`,
		`{"s":"a","n":1e3}`, `{"s":"a","n":1.5}`, `{"s":"a","n":123456789012345678}`, `{"s":"a","n":1234567890123456789}`,
		`{"s":"a","n":1,"o":"x"}`, `{"s":"a","n":1} `, `{"s":"\xff","n":1}`, `{"s":"a\u0001","n":1}`, `{"s":"a","n":-}`, `{"S":"a","n":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		var got struct {
			S string  `json:"s"`
			N int64   `json:"n"`
			O *string `json:"o"`
		}
		got.S, got.N = r.String("s"), r.Int("n")
		if r.Next("o") {
			o := r.String("o")
			got.O = &o
		}
		if !r.End() {
			return
		}
		var want struct {
			S string  `json:"s"`
			N int64   `json:"n"`
			O *string `json:"o"`
		}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("Reader accepted %q, encoding/json refuses it: %v", b, err)
		}
		if got.S != want.S || got.N != want.N || (got.O == nil) != (want.O == nil) || (got.O != nil && *got.O != *want.O) {
			t.Fatalf("%q: Reader read %+v, encoding/json %+v", b, got, want)
		}
	})
}

func TestReaderRefuses(t *testing.T) {
	for _, s := range []string{``, `[]`, `{"s":"a","n":01}`, `{"s":"a","n":1e3}`, `{"s":"a","n":1.0}`, `{"s":"a\\n","n":1}`,
		`{"s":"a","n":1234567890123456789}`, `{"s":"a","n":1} `, `{"s":"a","n":1}}`, `{"s":"\xff","n":1}`, `{"s":"a" ,"n":1}`,
		`{"s":"a","n":1`, `{"s":"a"}`, `{"n":1,"s":"a"}`} {
		r := NewReader([]byte(s))
		r.String("s")
		r.Int("n")
		if r.End() {
			t.Errorf("Reader accepted %q", s)
		}
	}
	r := NewReader([]byte(`{"s":"Zoë 🐱","n":-42}`))
	if s, n := r.String("s"), r.Int("n"); !r.End() || s != "Zoë 🐱" || n != -42 {
		t.Errorf("read %q %d, ok %v", s, n, r.End())
	}
}

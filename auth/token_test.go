package auth_test

import (
	"strings"
	"testing"

	"github.com/tapwars/tapwars/auth"
)

var key = []byte("0123456789abcdef0123456789abcdef")

func TestSignParse(t *testing.T) {
	s := auth.NewSigner(key)
	tok := s.Sign("abc123")
	if id, err := s.Parse(tok); err != nil || id != "abc123" {
		t.Fatalf("Parse(Sign) = %q, %v", id, err)
	}
	other := auth.NewSigner([]byte("another key, another key, another"))
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	flip := "A"
	if strings.HasSuffix(tok, "A") {
		flip = "B"
	}
	bad := []string{
		"", "v1.", "v1..", "garbage", "v2" + tok[2:], // missing, malformed, other version
		tok[:len(tok)-1] + flip,                     // tampered signature
		strings.Replace(tok, "abc123", "abc124", 1), // tampered id
		other.Sign("abc123"),                        // forged with another key
		tok + "A", tok + strings.Repeat("A", 500),   // over-long signature
		"v1." + strings.Repeat("a", 65) + "." + sig, // over-long id
		"v1.a b." + sig, "v1.a.b." + sig, // bad id characters
		" " + tok, tok + " ",
	}
	for _, b := range bad {
		if id, err := s.Parse(b); err != auth.ErrBadToken || id != "" {
			t.Errorf("Parse(%.40q) = %q, %v; want ErrBadToken", b, id, err)
		}
	}
}

// FuzzParse feeds any string to the token parser: it must never panic, and
// it may accept only exactly the token Sign makes for the id it returns.
func FuzzParse(f *testing.F) {
	s := auth.NewSigner(key)
	good := s.Sign("0123456789abcdef0123456789abcdef")
	for _, seed := range []string{good, "", "v1.", "v1.x.", good[:len(good)-1], good + "A", "v1." + strings.Repeat("a", 64) + "." + strings.Repeat("A", 43), "Bearer " + good} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := s.Parse(tok)
		if err != nil {
			if err != auth.ErrBadToken || id != "" {
				t.Fatalf("Parse(%q) = %q, %v", tok, id, err)
			}
			return
		}
		if s.Sign(id) != tok {
			t.Fatalf("Parse accepted %q for id %q, but Sign makes %q", tok, id, s.Sign(id))
		}
		if len(tok) > auth.MaxSize {
			t.Fatalf("accepted a %d-byte token", len(tok))
		}
	})
}

// FuzzSignParse checks that every id Sign accepts round-trips, and that a
// token of one id never parses as another's after any one-byte change.
func FuzzSignParse(f *testing.F) {
	f.Add("abc", 3, byte('x'))
	f.Add("0123456789abcdef0123456789abcdef", 40, byte('A'))
	f.Fuzz(func(t *testing.T, id string, pos int, b byte) {
		s := auth.NewSigner(key)
		tok := s.Sign(id)
		got, err := s.Parse(tok)
		valid := id != "" && len(id) <= 64 && strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == ""
		if valid != (err == nil) || (err == nil && got != id) {
			t.Fatalf("Sign/Parse(%q) = %q, %v (id valid: %v)", id, got, err, valid)
		}
		if len(tok) == 0 {
			return
		}
		p := ((pos % len(tok)) + len(tok)) % len(tok)
		if tok[p] == b {
			return
		}
		changed := tok[:p] + string([]byte{b}) + tok[p+1:]
		if got, err := s.Parse(changed); err == nil {
			t.Fatalf("a changed token %q parsed as %q", changed, got)
		}
	})
}

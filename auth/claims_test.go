package auth

import (
	"encoding/json"
	"testing"

	"github.com/tapwars/tapwars/game"
)

// FuzzReadClaims: claims read without reflection are what encoding/json
// reads, and SignUser's claims of a plain name are read that way.
func FuzzReadClaims(f *testing.F) {
	for _, u := range []game.User{
		{ID: "0123456789abcdef", Username: "ann", Team: game.Blue, SessionID: "s", JoinedAt: 1764090000000},
		{ID: "x", Username: "Zoë d'Arc 🐱", Team: game.Red},
		{ID: "x", Username: `<a href="x">&</a>`, Team: game.Red, JoinedAt: -1},
	} {
		raw, _ := json.Marshal(claims{ID: u.ID, Name: u.Username, Team: u.Team, Session: u.SessionID, JoinedAt: u.JoinedAt})
		f.Add(raw)
	}
	f.Add([]byte(`{"i":"x","n":"a","t":"red","s":"","j":1,"x":2}`))
	f.Add([]byte(`{"I":"x","n":"a","t":"red","s":"","j":1}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := readClaims(raw)
		if !ok {
			return
		}
		var want claims
		if err := json.Unmarshal(raw, &want); err != nil || got != want {
			t.Fatalf("%q: readClaims %+v; encoding/json %+v, %v", raw, got, want, err)
		}
	})
}

func TestSignedClaimsReadWithoutReflection(t *testing.T) {
	s := NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	u := game.User{ID: "0123456789abcdef", Username: "Zoë d'Arc 🐱", Team: game.Red, SessionID: "s", JoinedAt: 1764090000000}
	raw, _ := json.Marshal(claims{ID: u.ID, Name: u.Username, Team: u.Team, Session: u.SessionID, JoinedAt: u.JoinedAt})
	if _, ok := readClaims(raw); !ok {
		t.Fatalf("readClaims refused %s", raw)
	}
	if got, full, err := s.ParseUser(s.SignUser(u)); err != nil || !full || got != u {
		t.Fatalf("ParseUser(SignUser) = %+v, %v, %v", got, full, err)
	}
}

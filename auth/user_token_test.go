package auth_test

import (
	"strings"
	"testing"

	"github.com/tapwars/tapwars/auth"
	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
)

func TestUserTokens(t *testing.T) {
	s := auth.NewSigner(key)
	u := game.User{ID: "0123456789abcdef", Username: "Zoë d'Arc", Team: game.Red, SessionID: "sess", JoinedAt: 1764090000000, TapCount: 99}
	tok := s.SignUser(u)
	got, full, err := s.ParseUser(tok)
	u.TapCount = 0 // counts are never in a token
	if err != nil || !full || got != u {
		t.Fatalf("ParseUser(SignUser) = %+v, %v, %v", got, full, err)
	}
	// v1 tokens still parse, as an id only.
	if got, full, err := s.ParseUser(s.Sign(u.ID)); err != nil || full || got.ID != u.ID {
		t.Fatalf("v1 token: %+v %v %v", got, full, err)
	}
	dot := strings.LastIndexByte(tok, '.')
	other := auth.NewSigner([]byte("another key, another key, another"))
	blue := u
	blue.Team = game.Blue
	blueTok := s.SignUser(blue)
	blueBody := blueTok[:strings.LastIndexByte(blueTok, '.')]
	for name, bad := range map[string]string{
		"another key":       other.SignUser(u),
		"truncated":         tok[:len(tok)-1],
		"claims of another": blueBody + tok[dot:], // the team changed, the signature kept
		"empty claims":      "v2.." + tok[dot+1:],
		"not base64":        "v2.!!!!" + tok[dot:],
		"huge":              "v2." + strings.Repeat("A", 5000) + tok[dot:],
		"v1 with v2 sig":    "v1." + u.ID + tok[dot:],
	} {
		if got, full, err := s.ParseUser(bad); err != auth.ErrBadToken || full || got != (game.User{}) {
			t.Errorf("%s: ParseUser = %+v, %v, %v; want ErrBadToken", name, got, full, err)
		}
	}
	// Signed claims that are not a valid player are refused too.
	for _, bad := range []game.User{{ID: "", Username: "a", Team: game.Blue}, {ID: "x", Username: "a", Team: "green"}, {ID: "x", Team: game.Blue}, {ID: "a.b", Username: "a", Team: game.Blue}} {
		if _, _, err := s.ParseUser(s.SignUser(bad)); err != auth.ErrBadToken {
			t.Errorf("claims %+v accepted", bad)
		}
	}
}

// The longest legal name, with the longest id and session, makes a token
// that parses, with room to spare under MaxUserSize.
func TestLongestNameFitsAToken(t *testing.T) {
	s := auth.NewSigner(key)
	u := game.User{ID: strings.Repeat("i", 64), Username: testenv.LongestName, Team: game.Blue, SessionID: strings.Repeat("s", 64), JoinedAt: 1 << 52}
	tok := s.SignUser(u)
	got, full, err := s.ParseUser(tok)
	if err != nil || !full || got != u {
		t.Fatalf("ParseUser(SignUser) = %+v, %v, %v", got, full, err)
	}
	if room := auth.MaxUserSize - len(tok); room < auth.MaxUserSize/10 {
		t.Fatalf("a token of %d bytes leaves %d of MaxUserSize %d", len(tok), room, auth.MaxUserSize)
	}
	t.Logf("token %d bytes of %d", len(tok), auth.MaxUserSize)
}

// BenchmarkParseUser is what every tap over HTTP spends on its token.
func BenchmarkParseUser(b *testing.B) {
	s := auth.NewSigner(key)
	tok := s.SignUser(game.User{ID: "0123456789abcdef0123456789abcdef", Username: "player 42", Team: game.Blue,
		SessionID: "00112233445566778899aabbccddeeff", JoinedAt: 1764090000000})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.ParseUser(tok); err != nil {
			b.Fatal(err)
		}
	}
}

package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"hash"
	"io"
	"strings"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/flatjson"
)

// User tokens ("v2.<claims>.<signature>") carry what a tap needs besides the
// id: name, team, session and join time. A valid one is proof of a join, so
// a tap is accepted (and counted once the log's join is applied) even while
// Redis is being rebuilt from the log and does not know the player yet.
// v1 tokens (id only) keep working while Redis knows their player.

const (
	prefixV2 = "v2."
	// maxClaims bounds the encoded claims: a 64-byte id and session, a
	// name of game.MaxNameBytes (≤ 440 bytes JSON-escaped) and the rest.
	maxClaims = 1024
	// MaxUserSize is the longest token ParseUser reads.
	MaxUserSize = len(prefixV2) + maxClaims + 1 + sigLen
)

// claims is a v2 token's JSON; short names keep tokens small.
type claims struct {
	ID       string    `json:"i"`
	Name     string    `json:"n"`
	Team     game.Team `json:"t"`
	Session  string    `json:"s"`
	JoinedAt int64     `json:"j"`
}

// SignUser returns the v2 token of a player.
func (s *Signer) SignUser(u game.User) string {
	raw, _ := json.Marshal(claims{ID: u.ID, Name: u.Username, Team: u.Team, Session: u.SessionID, JoinedAt: u.JoinedAt}) // cannot fail
	body := prefixV2 + base64.RawURLEncoding.EncodeToString(raw)
	return body + "." + s.mac(body)
}

// ParseUser checks a v1 or v2 token. For v2 it returns the player as
// signed (tapCount 0) and full true; for v1 only the id, full false.
func (s *Signer) ParseUser(token string) (u game.User, full bool, err error) {
	if !strings.HasPrefix(token, prefixV2) {
		id, err := s.Parse(token)
		return game.User{ID: id}, false, err
	}
	if len(token) > MaxUserSize {
		return game.User{}, false, ErrBadToken
	}
	dot := strings.LastIndexByte(token, '.')
	if dot <= len(prefixV2) || len(token)-dot-1 != sigLen {
		return game.User{}, false, ErrBadToken
	}
	body, sig := token[:dot], token[dot+1:]
	if !hmac.Equal([]byte(sig), []byte(s.mac(body))) {
		return game.User{}, false, ErrBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(body[len(prefixV2):])
	if err != nil {
		return game.User{}, false, ErrBadToken
	}
	c, ok := readClaims(raw)
	if !ok {
		c = claims{}
		if err := json.Unmarshal(raw, &c); err != nil {
			return game.User{}, false, ErrBadToken
		}
	}
	if !game.ValidID(c.ID) || !c.Team.Valid() || c.Name == "" {
		return game.User{}, false, ErrBadToken
	}
	return game.User{ID: c.ID, Username: c.Name, Team: c.Team, SessionID: c.Session, JoinedAt: c.JoinedAt}, true, nil
}

// readClaims reads claims laid out as SignUser's json.Marshal writes them,
// with strings that need no unescaping, without reflection (every tap
// parses its token); ok is false for anything else, which encoding/json
// then reads.
func readClaims(raw []byte) (c claims, ok bool) {
	r := flatjson.NewReader(raw)
	c.ID = r.String("i")
	c.Name = r.String("n")
	c.Team = game.Team(r.String("t"))
	c.Session = r.String("s")
	c.JoinedAt = r.Int("j")
	return c, r.End()
}

// mac signs a whole token body (v2 signs its prefix and claims).
func (s *Signer) mac(body string) string {
	m, _ := s.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, s.key)
	}
	m.Reset() // back to the keyed state, which hmac keeps after the first Reset
	_, _ = io.WriteString(m, body)
	var sum [sha256.Size]byte
	out := base64.RawURLEncoding.EncodeToString(m.Sum(sum[:0]))
	s.macs.Put(m)
	return out
}

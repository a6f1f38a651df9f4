// Package auth signs and checks the tokens that identify players (API bearer
// tokens and the browser's session cookie carry the same value).
package auth

import (
	"crypto/hmac"
	"strings"
	"sync"

	"github.com/tapwars/tapwars/game"
)

// ErrBadToken is returned for a missing, malformed, forged or tampered token.
var ErrBadToken = game.Errorf(game.EUNAUTHORIZED,
	"invalid or missing token: join first (POST /api/join) and send Authorization: Bearer <token>")

const (
	prefix  = "v1."
	sigLen  = 43 // base64url without padding of a 32-byte HMAC-SHA256
	maxID   = game.MaxIDLen
	MaxSize = len(prefix) + maxID + 1 + sigLen
)

// Signer makes and checks tokens with an HMAC-SHA256 key.
type Signer struct {
	key  []byte
	macs sync.Pool // hash.Hash: HMACs of key, reused (a new one hashes the key again)
}

// NewSigner returns a Signer; the key should be at least 32 random bytes.
func NewSigner(key []byte) *Signer { return &Signer{key: append([]byte(nil), key...)} }

// Sign returns the token of a player id: "v1.<id>.<signature>".
func (s *Signer) Sign(id string) string {
	return prefix + id + "." + s.sig(id)
}

// Parse checks a token and returns its player id. Lengths and characters are
// checked before the constant-time signature comparison.
func (s *Signer) Parse(token string) (string, error) {
	if len(token) > MaxSize || !strings.HasPrefix(token, prefix) {
		return "", ErrBadToken
	}
	rest := token[len(prefix):]
	dot := strings.LastIndexByte(rest, '.')
	if dot <= 0 || dot > maxID || len(rest)-dot-1 != sigLen {
		return "", ErrBadToken
	}
	id, sig := rest[:dot], rest[dot+1:]
	if !game.ValidID(id) {
		return "", ErrBadToken
	}
	if !hmac.Equal([]byte(sig), []byte(s.sig(id))) {
		return "", ErrBadToken
	}
	return id, nil
}

func (s *Signer) sig(id string) string { return s.mac(prefix + id) }

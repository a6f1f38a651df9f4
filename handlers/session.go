package handlers

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/auth"
	"github.com/tapwars/tapwars/game"
)

// CookieName is the browser's session cookie; it holds the same signed
// token as the API's bearer token.
const CookieName = "tapwars_session"

// userCacheSize bounds the players an instance keeps in memory: more than
// the players of a large event, ~200 bytes each.
const userCacheSize = 100_000

// userCache keeps the players this instance has seen most recently (name,
// team, session): a tap needs them for its event and they never change, so
// taps cost no Redis read. Tap counts in it are not kept current.
type userCache struct {
	store Store
	lru   *lru.Cache[string, game.User]
}

func newUserCache(st Store, size int) *userCache {
	c, _ := lru.New[string, game.User](max(size, 1))
	return &userCache{store: st, lru: c}
}

// cached is the player id held in memory, if any.
func (uc *userCache) cached(id string) (game.User, bool) { return uc.lru.Get(id) }

// load reads player id from the store and keeps it (call it after cached
// missed).
func (uc *userCache) load(ctx context.Context, id string) (game.User, error) {
	u, err := uc.store.User(ctx, id)
	if err != nil {
		return game.User{}, err
	}
	uc.lru.Add(id, u)
	return u, nil
}

func (uc *userCache) add(u game.User)  { uc.lru.Add(u.ID, u) }
func (uc *userCache) remove(id string) { uc.lru.Remove(id) }
func (uc *userCache) clear()           { uc.lru.Purge() }

// token returns the token of the request: the bearer token, else the
// session cookie, else "". Another Authorization scheme (Basic from a
// proxy's login) is ignored.
func token(c echo.Context) string {
	if t, ok := bearer(c.Request()); ok {
		return t
	}
	if ck, err := c.Cookie(CookieName); err == nil {
		return ck.Value
	}
	return ""
}

// player returns the signed-in player of the request, or an error wrapping
// auth.ErrBadToken. The player is read from the store (once, then cached
// until a kick or an import): a player an import left out is signed out,
// and one it moved plays for their new team. While the store is rebuilt
// from the log and does not know the player yet, a v2 token, which carries
// the player, is proof of the join (once the kicked set was loaded: the
// store deletes kicked players); other tokens get 503 until then, never
// 401, which only says that the player is gone.
func (s *Server) player(c echo.Context) (game.User, error) {
	u, full, err := s.signer.ParseUser(token(c))
	if err != nil {
		return game.User{}, err
	}
	return s.signedIn(c.Request().Context(), u, full)
}

// signedIn returns the current record of player u, whose token was checked
// (full: it carries the whole player, as a v2 token does), or why they may
// no longer play.
func (s *Server) signedIn(ctx context.Context, u game.User, full bool) (game.User, error) {
	if s.kicks.has(u.ID) { // kicked on any instance: see kicked.go
		return game.User{}, errKicked
	}
	if cached, ok := s.users.cached(u.ID); ok {
		return cached, nil
	}
	cur, err := s.users.load(ctx, u.ID)
	switch {
	case errors.Is(err, game.ErrNotReplayed):
		if full && s.kicks.loaded() {
			return u, nil
		}
		// Known once the replay gets there: not a reason to sign out
		// (a page leaves for the join form on 401).
		return game.User{}, game.ErrUnavailable
	case errors.Is(err, game.ErrUnknownPlayer):
		return game.User{}, auth.ErrBadToken
	}
	return cur, err
}

// bearer returns the credentials of the request's Authorization header when
// its scheme is Bearer, matched case-insensitively (RFC 9110, 11.1). Any
// other scheme is not ours: a browser behind a password-protected proxy
// sends Basic credentials with every request, cross-site ones included, so
// only Bearer may stand for an API client (see crossOriginGuard).
func bearer(r *http.Request) (string, bool) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(r.Header.Get(echo.HeaderAuthorization)), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(cred), true
}

// setSession sets the signed session cookie: HttpOnly, SameSite=Lax,
// Secure when the request came over TLS.
func (s *Server) setSession(c echo.Context, tok string) {
	c.SetCookie(&http.Cookie{
		Name:     CookieName,
		Value:    tok,
		Path:     "/",
		MaxAge:   int((365 * 24 * time.Hour).Seconds()),
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   c.Scheme() == "https",
	})
}

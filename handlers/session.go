package handlers

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
)

// CookieName is the browser's session cookie; it holds the same signed
// token as the API's bearer token.
const CookieName = "tapwars_session"

// userCache keeps the players this instance has seen (name, team, session):
// a tap needs them for its event and they never change, so taps cost no
// Redis read. Tap counts in it are not kept current.
type userCache struct {
	store Store
	m     sync.Map // id -> game.User
}

func newUserCache(st Store) *userCache { return &userCache{store: st} }

func (uc *userCache) get(ctx context.Context, id string) (game.User, error) {
	if u, ok := uc.m.Load(id); ok {
		return u.(game.User), nil
	}
	u, err := uc.store.User(ctx, id)
	if err != nil {
		return game.User{}, err
	}
	uc.m.Store(id, u)
	return u, nil
}

// token returns the token of the request: the bearer token, else the
// session cookie, else "".
func token(c echo.Context) string {
	if h := c.Request().Header.Get(echo.HeaderAuthorization); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
		return h // a malformed header fails token parsing
	}
	if ck, err := c.Cookie(CookieName); err == nil {
		return ck.Value
	}
	return ""
}

// player returns the signed-in player of the request, or an error wrapping
// auth.ErrBadToken or game.ErrUnknownPlayer. A v2 token carries the player
// (a valid one is proof of a join), so it works even while Redis does not
// know the player yet (rebuilding from the log); a v1 token needs Redis, and
// so does any token until the kicked set was first loaded (the store
// deletes kicked players).
func (s *Server) player(c echo.Context) (game.User, error) {
	u, full, err := s.signer.ParseUser(token(c))
	if err != nil {
		return game.User{}, err
	}
	if s.kicks.has(u.ID) { // kicked on any instance: see admin_kick.go
		return game.User{}, errKicked
	}
	if cached, ok := s.users.m.Load(u.ID); ok {
		return cached.(game.User), nil
	}
	if full && s.kicks.loaded() {
		return u, nil
	}
	return s.users.get(c.Request().Context(), u.ID)
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

package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
)

type joinRequest struct {
	Username string `json:"username"`
}

type joinResponse struct {
	User  game.User `json:"user"`
	Token string    `json:"token"`
}

// join: POST /api/join {"username"} -> 201 {"user","token"}. A player who
// comes back with a valid token (or cookie) gets 200 with the same id, team
// and taps instead of a new player.
func (s *Server) join(c echo.Context) error {
	if u, err := s.player(c); err == nil {
		cur, err := s.store.User(c.Request().Context(), u.ID) // current tap count
		switch {
		case err == nil:
			u = cur
		case errors.Is(err, game.ErrNotReplayed) && u.Team.Valid():
			// signed in with a v2 token while Redis is rebuilt from the log
		default:
			return err
		}
		tok := s.signer.SignUser(u)
		s.setSession(c, tok)
		return c.JSON(http.StatusOK, joinResponse{User: u, Token: tok})
	}
	var req joinRequest
	if err := s.decodeBody(c, &req); err != nil {
		return err
	}
	u, tok, err := s.newPlayer(c, req.Username)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, joinResponse{User: u, Token: tok})
}

// funNameTries is how many generated names a blank join tries before it
// answers that they were all taken (40,000 of them: a few hundred players
// meet a taken one now and then).
const funNameTries = 10

// newPlayer creates a player (a fun name when name is blank) and signs them in.
func (s *Server) newPlayer(c echo.Context, name string) (game.User, string, error) {
	tries := 1
	if _, err := game.NormalizeName(name); err != nil {
		if !isBlank(name) {
			return game.User{}, "", err
		}
		name, tries = game.FunName(), funNameTries
	}
	u, err := s.store.Join(c.Request().Context(), name, time.Now())
	for ; errors.Is(err, game.ErrNameTaken) && tries > 1; tries-- {
		u, err = s.store.Join(c.Request().Context(), game.FunName(), time.Now())
	}
	if err != nil {
		return game.User{}, "", err
	}
	s.users.add(u)
	tok := s.signer.SignUser(u)
	s.setSession(c, tok)
	return u, tok, nil
}

func isBlank(s string) bool {
	for _, r := range s {
		if r != ' ' && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
	}
	return true
}

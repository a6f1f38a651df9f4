package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/httpstatus"
	"github.com/tapwars/tapwars/views"
)

// adminLogin: POST /admin/login (form field token) — sets the admin cookie.
func (s *Server) adminLogin(c echo.Context) error {
	adminHeaders(c)
	if !s.admin.tokenOK(c.Request().PostFormValue("token")) {
		if err := s.adminFailure(c); !errors.Is(err, errAdminAuth) { // too many tries: 429
			return renderError(c, err, views.AdminLoginPage(game.ErrorMessage(err)))
		}
		return render(c, httpstatus.Of(errWrongAdminToken), views.AdminLoginPage(errWrongAdminToken.Message))
	}
	now := time.Now()
	sess := s.admin.newSession(now)
	if err := s.opt.Admin.StartAdminSession(c.Request().Context(), sessionID(sess), now.Add(adminSessionTTL)); err != nil {
		return err
	}
	s.setAdminCookie(c, sess, int(adminSessionTTL.Seconds()))
	return c.Redirect(http.StatusSeeOther, "/admin?done=login")
}

// adminLogout: POST /admin/logout — ends the admin session on every
// instance and clears the cookie.
func (s *Server) adminLogout(c echo.Context) error {
	if ck, err := c.Cookie(adminCookieName); err == nil && s.admin.sessionOK(ck.Value, time.Now()) {
		if err := s.opt.Admin.EndAdminSession(c.Request().Context(), sessionID(ck.Value)); err != nil {
			return err
		}
	}
	s.setAdminCookie(c, "", -1)
	if wantsHTML(c) || !adminOf(c).bearer {
		return c.Redirect(http.StatusSeeOther, "/admin")
	}
	return c.NoContent(http.StatusNoContent)
}

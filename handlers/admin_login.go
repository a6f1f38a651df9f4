package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/metrics"
	"github.com/tapwars/tapwars/views"
)

// adminLogin: POST /admin/login (form field token) — sets the admin cookie.
func (s *Server) adminLogin(c echo.Context) error {
	adminHeaders(c)
	key := clientKey(c)
	if s.admin.failures.blocked(key, time.Now()) || !s.admin.tokenOK(c.Request().PostFormValue("token")) {
		if ok, wait := s.admin.failures.take(key, 1, time.Now()); !ok {
			metrics.LimitRefusals.WithLabelValues("admin_logins").Inc()
			err := tooMany(wait, "too many wrong admin tokens from your address")
			c.Response().Header().Set("Retry-After", strconv.Itoa(err.RetryAfter))
			return render(c, HTTPStatus(err), views.AdminLoginPage(err.Message))
		}
		return render(c, HTTPStatus(errWrongAdminToken), views.AdminLoginPage(errWrongAdminToken.Message))
	}
	s.setAdminCookie(c, s.admin.newSession(time.Now()), int(adminSessionTTL.Seconds()))
	return c.Redirect(http.StatusSeeOther, "/admin?done=login")
}

// adminLogout: POST /admin/logout — clears the admin cookie.
func (s *Server) adminLogout(c echo.Context) error {
	s.setAdminCookie(c, "", -1)
	if wantsHTML(c) || !adminOf(c).bearer {
		return c.Redirect(http.StatusSeeOther, "/admin")
	}
	return c.NoContent(http.StatusNoContent)
}

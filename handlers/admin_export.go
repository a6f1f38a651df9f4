package handlers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// adminExport: GET /admin/export — the whole state as a JSON download.
func (s *Server) adminExport(c echo.Context) error {
	now := time.Now()
	ex, err := s.opt.Admin.Export(c.Request().Context(), now)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("tapwars-round%d-%s.json", ex.Round, now.UTC().Format("20060102-150405"))
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	c.Response().WriteHeader(http.StatusOK)
	enc := json.NewEncoder(c.Response())
	enc.SetIndent("", " ")
	return enc.Encode(ex)
}

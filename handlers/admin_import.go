package handlers

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/stream"
)

type importResponse struct {
	Round     int64 `json:"round"`
	Players   int   `json:"players"`
	Kicked    int   `json:"kicked"`
	TotalTaps int64 `json:"totalTaps"`
	Pending   bool  `json:"pending,omitempty"` // logged, not applied yet
}

// adminImport: POST /admin/import — restores an export: the raw JSON body
// (curl --data-binary @file), or the form's file field. A malformed or
// inconsistent file is refused with 400 and the first problem, and nothing
// changes.
func (s *Server) adminImport(c echo.Context) error {
	ctx := c.Request().Context()
	var (
		data []byte
		err  error
	)
	if strings.HasPrefix(c.Request().Header.Get(echo.HeaderContentType), echo.MIMEMultipartForm) {
		if c.FormValue("confirm") != "yes" && wantsHTML(c) {
			return s.adminFail(c, game.Errorf(game.EINVALID, "Tick the box to confirm that the file replaces the whole game state."))
		}
		fh, ferr := c.FormFile("file")
		if ferr != nil {
			return s.adminFail(c, readError(ferr, "Choose an export file to import (form field \"file\")."))
		}
		f, ferr := fh.Open()
		if ferr != nil {
			return s.adminFail(c, game.Errorf(game.EINVALID, "The uploaded file cannot be read."))
		}
		data, err = io.ReadAll(f) // the body limit bounds it (MaxImportBytes, see New)
		_ = f.Close()
	} else {
		data, err = io.ReadAll(c.Request().Body) // past the body limit: Echo's 413, answered as errImportTooLarge
	}
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return err
		}
		return s.adminFail(c, readError(err, "The import could not be read"))
	}
	ex, err := store.ParseExport(data)
	if err != nil {
		return s.adminFail(c, err)
	}
	if _, err := s.kafkaEnds(ctx); err != nil {
		return s.adminFail(c, err)
	}
	round, err := s.opt.Admin.Import(ctx, ex, stream.Topic, time.Now())
	pending := errors.Is(err, store.ErrNotApplied)
	if pending {
		err = nil
	}
	if err != nil {
		return err
	}
	_ = s.reloadKicks(ctx, true)
	s.log.Info("admin: state imported", "round", round, "players", len(ex.Players), "kicked", len(ex.Kicked), "totalTaps", ex.TotalTaps)
	if wantsHTML(c) {
		return c.Redirect(http.StatusSeeOther, "/admin?done=import")
	}
	res := importResponse{Round: round, Players: len(ex.Players), Kicked: len(ex.Kicked), TotalTaps: ex.TotalTaps, Pending: pending}
	if pending { // logged; the consumer applies it later
		return c.JSON(http.StatusAccepted, res)
	}
	return c.JSON(http.StatusOK, res)
}

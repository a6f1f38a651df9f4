package handlers

import (
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/game"
)

// The tap's answer is written as encoding/json writes it; everything else,
// and ?pretty, goes to encoding/json.
func TestJSONSerializerWritesWhatEncodingJSONWrites(t *testing.T) {
	e := echo.New()
	for _, v := range []any{
		tapResponse{Success: true, TapEvent: game.TapEvent{ID: "0123456789abcdef", UserID: "u1", Username: "ann", Team: game.Blue, Timestamp: 1764090000000, SessionID: "s"}},
		tapResponse{Success: true, TapEvent: game.TapEvent{ID: "e", UserID: "u1", Username: `Zoë <b>"&"</b> 🐱`, Team: game.Red, Timestamp: 1, Count: 50, Round: 3}},
		map[string]string{"error": "x"},
	} {
		for _, indent := range []string{"", "  "} {
			write := func(s echo.JSONSerializer) string {
				rec := httptest.NewRecorder()
				if err := s.Serialize(e.NewContext(httptest.NewRequest("POST", "/api/tap", nil), rec), v, indent); err != nil {
					t.Fatal(err)
				}
				return rec.Body.String()
			}
			if got, want := write(jsonSerializer{}), write(echo.DefaultJSONSerializer{}); got != want {
				t.Errorf("indent %q: wrote\n%s\nencoding/json writes\n%s", indent, got, want)
			}
		}
	}
}

package views

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"

	"github.com/tapwars/tapwars/game"
)

func TestRateChart(t *testing.T) {
	for _, tc := range []struct {
		v, want int64
	}{{0, 10}, {7, 10}, {11, 20}, {20, 20}, {21, 50}, {501, 1000}, {1_000_001, 2_000_000}} {
		if got := niceCeil(tc.v); got != tc.want {
			t.Errorf("niceCeil(%d) = %d, want %d", tc.v, got, tc.want)
		}
	}
	rate := make([]int64, 900)
	rate[899], rate[100] = 40, 120
	c := newChart(rate)
	if c.Minutes != 15 || len(c.XTicks) != 4 || c.XTicks[3].Label != "now" || c.XTicks[0].Label != "−15 min" || len(c.YTicks) != 3 || c.YTicks[2].Label != "200" {
		t.Fatalf("chart %+v", c)
	}
	if !strings.Contains(c.Desc, "Peak 120") || !strings.Contains(c.Desc, "last second 40") {
		t.Fatalf("desc %q", c.Desc)
	}
	if strings.Count(c.Line, "L") != 899 || strings.ContainsAny(c.Area+c.Line, "NaInf") {
		t.Fatalf("path %.100s", c.Line)
	}
	if empty := newChart(nil); empty.Line == "" || strings.Contains(empty.Line, "NaN") {
		t.Fatalf("empty chart %+v", empty)
	}
}

func TestAdminPagesEscape(t *testing.T) {
	evil := `<script>alert("x")</script>`
	tie := "tie"
	d := AdminData{CSRF: `"><b>csrf`, Error: evil, Flash: evil,
		Stats: AdminStats{Now: time.Now(), Rate: make([]int64, 60), KafkaError: evil, Partitions: []AdminPartition{{Partition: 0, End: 5, Applied: -1, RoundStart: -1}}},
		Top:   []game.LeaderboardEntry{{ID: "a\"b", Username: evil, Team: game.Blue, TapCount: 3}},
		Console: AdminConsole{Now: time.Now(), Online: []game.Player{{ID: "x", Username: evil, Team: game.Red}},
			Round: game.RoundState{Mode: game.ModeTimed, Final: true, Winner: &tie, TopTapper: &game.LeaderboardEntry{Username: evil}}},
		Target: game.User{ID: "t", Username: evil, Team: game.Red}}
	for _, html := range []string{admRender(t, AdminPage(d)), admRender(t, AdminKickPage(d)), admRender(t, AdminResetPage(d)), admRender(t, AdminLoginPage(evil))} {
		if strings.Contains(html, "<script>") || strings.Contains(html, `"><b>`) {
			t.Fatalf("unescaped user data in\n%s", html)
		}
	}
	page := admRender(t, AdminPage(d))
	if !strings.Contains(page, "/admin/kick?id=a%22b") || !strings.Contains(page, `hx-trigger="every 2s"`) {
		t.Fatalf("kick link or polling missing")
	}
}

func admRender(t *testing.T, c templ.Component) string {
	t.Helper()
	var b bytes.Buffer
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

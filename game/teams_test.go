package game

import (
	"strings"
	"testing"
)

func TestNormalizeTeams(t *testing.T) {
	white := [3]uint8{255, 255, 255}
	if c := Contrast(RGB("#2563eb"), white); c < 5.1 || c > 5.25 {
		t.Errorf("white on #2563eb: %.2f, want 5.17 (WCAG)", c)
	}
	if c := Contrast([3]uint8{}, white); c != 21 {
		t.Errorf("white on black: %.2f, want 21", c)
	}
	if _, err := NormalizeTeams(DefaultTeams()); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	ok := Teams{Blue: TeamStyle{Name: "  Ｃats ", Color: "#7C2D12"}, Red: TeamStyle{Name: "Dogs 🐶", Color: "#0f766e"}}
	got, err := NormalizeTeams(ok)
	if err != nil || got.Blue.Name != "Cats" || got.Blue.Color != "#7c2d12" || got.Red.Name != "Dogs 🐶" {
		t.Fatalf("NormalizeTeams(%+v) = %+v, %v", ok, got, err)
	}
	for _, tc := range []struct {
		ts   Teams
		want string
	}{
		{Teams{Blue: TeamStyle{"Cats", "#ffd23f"}, Red: DefaultTeams().Red}, "darker shade such as #"},
		{Teams{Blue: TeamStyle{"Cats", "yellow"}, Red: DefaultTeams().Red}, "must be #rrggbb"},
		{Teams{Blue: TeamStyle{"", "#111111"}, Red: DefaultTeams().Red}, "needs a name"},
		{Teams{Blue: TeamStyle{"The Incredible Sponsors", "#111111"}, Red: DefaultTeams().Red}, "too long"},
		{Teams{Blue: TeamStyle{"red", "#111111"}, Red: DefaultTeams().Red}, "different names"},
		{Teams{Blue: TeamStyle{"a\u200bb", "#111111"}, Red: DefaultTeams().Red}, "cannot have"},
		{Teams{Blue: TeamStyle{"Cats", "#E11D48"}, Red: DefaultTeams().Red}, "different colours"},
	} {
		_, err := NormalizeTeams(tc.ts)
		if err == nil || ErrorCode(err) != EINVALID || !strings.Contains(ErrorMessage(err), tc.want) {
			t.Errorf("NormalizeTeams(%+v): %v, want %q", tc.ts, err, tc.want)
		}
	}
	// The suggested shade passes, and stays the same hue.
	d := Darken(RGB("#ffd23f"), MinTeamContrast)
	if Contrast(d, white) < MinTeamContrast || d[0] < d[1] || d[1] < d[2] {
		t.Errorf("Darken(#ffd23f) = %s", Hex(d))
	}
}

package game

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/rivo/uniseg"
	"golang.org/x/text/secure/precis"
)

// TeamStyle is how a team is shown: the name the host gave it and its
// colour (#rrggbb). The team's id (blue, red) never changes: keys, tokens
// and the API keep it.
type TeamStyle struct {
	Name  string `json:"name"`
	Color string `json:"color"`
}

// Teams is how both teams are shown ("Cats vs Dogs" in sponsor colours).
type Teams struct {
	Blue TeamStyle `json:"blue"`
	Red  TeamStyle `json:"red"`
}

// DefaultTeams is the game's own look.
func DefaultTeams() Teams {
	return Teams{Blue: TeamStyle{Name: "Blue", Color: "#2563eb"}, Red: TeamStyle{Name: "Red", Color: "#e11d48"}}
}

// Of is team t's style (the default for anything but blue and red).
func (ts Teams) Of(t Team) TeamStyle {
	switch t {
	case Blue:
		return ts.Blue
	case Red:
		return ts.Red
	}
	return TeamStyle{Name: string(t), Color: "#7c6cff"}
}

// Name is team t's display name.
func (ts Teams) Name(t Team) string { return ts.Of(t).Name }

// MaxTeamNameLen is the longest team name, in characters: it must fit a
// badge on a phone and the winner banner on a projector.
const MaxTeamNameLen = 16

// MinTeamContrast is the least contrast of white text on a team colour:
// WCAG 2 level AA for normal text.
const MinTeamContrast = 4.5

// NormalizeTeams checks the styles a host asks for and returns them in
// normal form: names as PRECIS nicknames of 1 to MaxTeamNameLen
// characters, different from each other; colours as #rrggbb with white
// text readable on them (MinTeamContrast). A refusal says which team and
// what to change, with a colour that would pass.
func NormalizeTeams(ts Teams) (Teams, error) {
	var err error
	for _, side := range []struct {
		label string
		s     *TeamStyle
	}{{"first (blue)", &ts.Blue}, {"second (red)", &ts.Red}} {
		if side.s.Name, err = normalizeTeamName(side.label, side.s.Name); err != nil {
			return Teams{}, err
		}
		if side.s.Color, err = checkTeamColor(side.label, side.s.Color); err != nil {
			return Teams{}, err
		}
	}
	if strings.EqualFold(ts.Blue.Name, ts.Red.Name) {
		return Teams{}, Errorf(EINVALID, "Both teams are called %q: give them different names.", ts.Blue.Name)
	}
	if ts.Blue.Color == ts.Red.Color {
		return Teams{}, Errorf(EINVALID, "Both teams are %s: give them different colours.", ts.Blue.Color)
	}
	return ts, nil
}

func normalizeTeamName(label, name string) (string, error) {
	out, err := precis.Nickname.String(name)
	switch {
	case strings.TrimSpace(name) == "":
		return "", Errorf(EINVALID, "The %s team needs a name (1 to %d characters).", label, MaxTeamNameLen)
	case err != nil:
		return "", Errorf(EINVALID, "The %s team's name has a character names cannot have (a control, invisible or formatting character).", label)
	}
	if n := uniseg.GraphemeClusterCount(out); n > MaxTeamNameLen {
		return "", Errorf(EINVALID, "The %s team's name is too long: at most %d characters (it has %d).", label, MaxTeamNameLen, n)
	}
	return out, nil
}

func checkTeamColor(label, c string) (string, error) {
	rgb, ok := parseHexColor(c)
	if !ok {
		return "", Errorf(EINVALID, "The %s team's colour must be #rrggbb (like #2563eb), not %q.", label, c)
	}
	if cr := Contrast(rgb, [3]uint8{255, 255, 255}); cr < MinTeamContrast {
		return "", Errorf(EINVALID, "White text on the %s team's colour %s has a contrast of %.1f:1; it needs at least %.1f:1 to be readable. A darker shade such as %s passes.",
			label, hexColor(rgb), cr, MinTeamContrast, hexColor(Darken(rgb, MinTeamContrast)))
	}
	return hexColor(rgb), nil
}

func parseHexColor(s string) ([3]uint8, bool) {
	s = strings.TrimSpace(s)
	if len(s) != 7 || s[0] != '#' {
		return [3]uint8{}, false
	}
	v, err := strconv.ParseUint(s[1:], 16, 32)
	if err != nil {
		return [3]uint8{}, false
	}
	return [3]uint8{uint8(v >> 16), uint8(v >> 8), uint8(v)}, true
}

func hexColor(c [3]uint8) string { return fmt.Sprintf("#%02x%02x%02x", c[0], c[1], c[2]) }

// luminance is the WCAG 2 relative luminance of an sRGB colour.
func luminance(c [3]uint8) float64 {
	lin := func(v uint8) float64 {
		f := float64(v) / 255
		if f <= 0.04045 {
			return f / 12.92
		}
		return math.Pow((f+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c[0]) + 0.7152*lin(c[1]) + 0.0722*lin(c[2])
}

// Contrast is the WCAG 2 contrast ratio of two colours (1 to 21).
func Contrast(a, b [3]uint8) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// Darken is c scaled towards black until white text on it reaches ratio.
func Darken(c [3]uint8, ratio float64) [3]uint8 {
	white := [3]uint8{255, 255, 255}
	for k := 1.0; k > 0; k -= 0.01 {
		d := [3]uint8{uint8(float64(c[0]) * k), uint8(float64(c[1]) * k), uint8(float64(c[2]) * k)}
		if Contrast(d, white) >= ratio {
			return d
		}
	}
	return [3]uint8{}
}

// Lighten is c mixed towards white until it reaches ratio against bg: a
// team's colour for text on the game's dark background.
func Lighten(c, bg [3]uint8, ratio float64) [3]uint8 {
	for k := 0.0; k <= 1; k += 0.02 {
		m := [3]uint8{mix(c[0], 255, k), mix(c[1], 255, k), mix(c[2], 255, k)}
		if Contrast(m, bg) >= ratio {
			return m
		}
	}
	return [3]uint8{255, 255, 255}
}

// Shade is c scaled towards black by k (0: c, 1: black).
func Shade(c [3]uint8, k float64) [3]uint8 {
	return [3]uint8{mix(c[0], 0, k), mix(c[1], 0, k), mix(c[2], 0, k)}
}

func mix(a, b uint8, k float64) uint8 {
	return uint8(math.Round(float64(a) + (float64(b)-float64(a))*k))
}

// RGB is the colour of a #rrggbb string (black if it is not one).
func RGB(s string) [3]uint8 {
	c, _ := parseHexColor(s)
	return c
}

// Hex is c as #rrggbb.
func Hex(c [3]uint8) string { return hexColor(c) }

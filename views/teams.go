package views

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/a-h/templ"

	"github.com/tapwars/tapwars/game"
)

// Team names and colours are the host's (game.Teams). Every component that
// names a team reads them from the context it is rendered with: handlers
// put them there for the pages (WithTeams), and StateParts for the live
// fragments, from the snapshot they show.

type teamsKey struct{}

// WithTeams returns ctx carrying how the teams are shown.
func WithTeams(ctx context.Context, ts game.Teams) context.Context {
	return context.WithValue(ctx, teamsKey{}, ts)
}

// teamsOf is the teams in ctx, or the defaults.
func teamsOf(ctx context.Context) game.Teams {
	if ts, ok := ctx.Value(teamsKey{}).(game.Teams); ok {
		return ts
	}
	return game.DefaultTeams()
}

// renderWithTeams renders c with ts in its context (the defaults if ts is
// unset: a snapshot made without a store).
func renderWithTeams(ts game.Teams, c templ.Component) templ.Component {
	if ts == (game.Teams{}) {
		ts = game.DefaultTeams()
	}
	return templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
		return c.Render(WithTeams(ctx, ts), w)
	})
}

// bg is the page background the team colours are read against (app.css --bg).
var bg = [3]uint8{0x14, 0x16, 0x3a}

// ThemeCSS is the stylesheet of the host's team colours (GET /theme.css):
// app.css's team custom properties, and the background glow. Empty for
// the game's own colours, which app.css holds as tuned by hand.
func ThemeCSS(ts game.Teams) string {
	def := game.DefaultTeams()
	if ts.Blue.Color == def.Blue.Color && ts.Red.Color == def.Red.Color {
		return "/* the game's own team colours (app.css) */\n"
	}
	var b strings.Builder
	b.WriteString("/* team colours set by the host */\n:root {\n")
	rgba := map[string]string{}
	for _, side := range []struct {
		name string
		s    game.TeamStyle
	}{{"blue", ts.Blue}, {"red", ts.Red}} {
		c := game.RGB(side.s.Color)
		fmt.Fprintf(&b, "  --%s: %s;\n  --%s-deep: %s;\n  --%s-ink: %s;\n", side.name, game.Hex(c),
			side.name, game.Hex(game.Shade(c, 0.35)), side.name, game.Hex(game.Lighten(c, bg, 7)))
		rgba[side.name] = fmt.Sprintf("%d, %d, %d", c[0], c[1], c[2])
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, "body {\n  background:\n    radial-gradient(60rem 30rem at 0%% 0%%, rgba(%s, 0.35), transparent 60%%),\n"+
		"    radial-gradient(60rem 30rem at 100%% 100%%, rgba(%s, 0.30), transparent 60%%),\n    linear-gradient(160deg, var(--bg), var(--bg-2));\n}\n",
		rgba["blue"], rgba["red"])
	return b.String()
}

// ThemeHash names a version of ThemeCSS (its URL's ?v=).
func ThemeHash(ts game.Teams) string {
	sum := sha256.Sum256([]byte(ThemeCSS(ts)))
	return hex.EncodeToString(sum[:6])
}

// themeURL is the stylesheet link for the teams in ctx.
func themeURL(ctx context.Context) string {
	return "/theme.css?v=" + ThemeHash(teamsOf(ctx))
}

// teamHash names the teams' names and colours: the screen reloads itself
// when the live stream brings another one.
func teamHash(ctx context.Context) string {
	ts := teamsOf(ctx)
	sum := sha256.Sum256([]byte(ts.Blue.Name + "\x00" + ts.Blue.Color + "\x00" + ts.Red.Name + "\x00" + ts.Red.Color))
	return hex.EncodeToString(sum[:6])
}

package views

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/tapwars/tapwars/game"
)

func render(t *testing.T, c templ.Component) string {
	t.Helper()
	var sb strings.Builder
	if err := c.Render(context.Background(), &sb); err != nil {
		t.Fatalf("render: %v", err)
	}
	return sb.String()
}

// snapshot has n leaderboard entries; entry i has ID "p<i>" and a hostile
// name. ranks are 1-based.
func snapshot(n int) game.Snapshot {
	s := game.Snapshot{GameState: game.State{
		BlueScore: 300, RedScore: 100, TotalTaps: 400, ActiveUsers: 7, BlueOnline: 4, RedOnline: 3,
	}}
	for i := range n {
		team := game.Blue
		if i%2 == 1 {
			team = game.Red
		}
		s.Leaderboard = append(s.Leaderboard, game.LeaderboardEntry{
			ID: fmt.Sprintf("p%d", i), Username: fmt.Sprintf("<b>n%d</b>", i),
			Team: team, TapCount: int64(1000 - i), Rank: i + 1,
		})
	}
	return s
}

func pageData(transport string) PageData {
	return PageData{
		Me:        game.User{ID: "me-1", Username: `<script>alert("x")</script>`, Team: game.Red, TapCount: 42},
		Rank:      0,
		State:     snapshot(12),
		Transport: transport,
	}
}

func mustContain(t *testing.T, doc string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(doc, p) {
			t.Errorf("missing %q", p)
		}
	}
}

func mustNotContain(t *testing.T, doc string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if strings.Contains(doc, p) {
			t.Errorf("unexpected %q", p)
		}
	}
}

func hasID(doc, id string) bool { return strings.Contains(doc, `id="`+id+`"`) }

// topLevel parses an HTML fragment the way htmx does (in a body context)
// and returns its top-level element nodes; text between them must be blank.
func topLevel(t *testing.T, frag string) []*html.Node {
	t.Helper()
	ctx := &html.Node{Type: html.ElementNode, Data: "body", DataAtom: atom.Body}
	nodes, err := html.ParseFragment(strings.NewReader(frag), ctx)
	if err != nil {
		t.Fatal(err)
	}
	var els []*html.Node
	for _, n := range nodes {
		switch n.Type {
		case html.ElementNode:
			els = append(els, n)
		case html.TextNode:
			if strings.TrimSpace(n.Data) != "" {
				t.Errorf("stray top-level text %q", n.Data)
			}
		}
	}
	return els
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

var liveIDs = []string{"blue-score", "red-score", "total-taps", "blue-online", "red-online", "tug-bar", "round", "leaderboard"}

func TestJoinPage(t *testing.T) {
	doc := render(t, JoinPage("", ""))
	mustContain(t, doc,
		"<!doctype html>", `<title>tapwars</title>`,
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		`action="/join"`, `method="post"`, `name="username"`, `maxlength="384"`, `type="submit"`)
	mustNotContain(t, doc, `role="alert"`, `aria-invalid`)

	doc = render(t, JoinPage(`name <em>bad</em>`, `<img src=x onerror=alert(1)>`))
	mustContain(t, doc, `role="alert"`, `name &lt;em&gt;bad&lt;/em&gt;`, `aria-invalid="true"`,
		`value="&lt;img src=x onerror=alert(1)&gt;"`)
	mustNotContain(t, doc, `<em>bad`, `<img src=x`)
}

func TestLayoutAssets(t *testing.T) {
	doc := render(t, JoinPage("", ""))
	for _, name := range []string{"app.css", "htmx-2.0.11.min.js", "htmx-ext-sse-2.2.4.js", "htmx-ext-ws-2.0.4.js", "app.js"} {
		ext := path.Ext(name)
		re := regexp.MustCompile(`"/static/` + regexp.QuoteMeta(strings.TrimSuffix(name, ext)) + `\.[0-9a-f]{12}` + regexp.QuoteMeta(ext) + `"`)
		if !re.MatchString(doc) {
			t.Errorf("no cache-busted URL for %s", name)
		}
	}
	// Scripts are deferred and in dependency order.
	iHTMX := strings.Index(doc, "htmx-2.0.11.min.")
	iSSE := strings.Index(doc, "htmx-ext-sse-2.2.4.")
	iWS := strings.Index(doc, "htmx-ext-ws-2.0.4.")
	iApp := regexp.MustCompile(`/static/app\.[0-9a-f]{12}\.js`).FindStringIndex(doc)[0]
	if !(iHTMX < iSSE && iSSE < iWS && iWS < iApp) {
		t.Errorf("script order wrong: %d %d %d %d", iHTMX, iSSE, iWS, iApp)
	}
	if n := strings.Count(doc, " defer></script>"); n != 4 {
		t.Errorf("%d deferred scripts, want 4", n)
	}
}

// Every page says when it was made, in the server's clock: the page's round
// clock is set from it.
func TestLayoutServerTime(t *testing.T) {
	before := time.Now().UnixMilli()
	doc := render(t, JoinPage("", ""))
	after := time.Now().UnixMilli()
	m := regexp.MustCompile(`<meta name="server-time" content="(\d+)">`).FindStringSubmatch(doc)
	if m == nil {
		t.Fatalf("no server-time meta in %.400s", doc)
	}
	if ms, _ := strconv.ParseInt(m[1], 10, 64); ms < before || ms > after {
		t.Fatalf("server-time %d, rendered between %d and %d", ms, before, after)
	}
}

func TestGamePage(t *testing.T) {
	d := pageData("auto")
	doc := render(t, GamePage(d))

	for _, id := range append(liveIDs, "tap-button", "my-taps", "my-rank", "connection-status", "live", "tap-error") {
		if !hasID(doc, id) {
			t.Errorf("no #%s", id)
		}
	}
	mustContain(t, doc,
		`<button id="tap-button"`, `type="button"`, `aria-label="Tap for team Red"`,
		`data-applied="42">42</span>`, `<span id="my-rank" class="num num--w1">–</span>`,
		`aria-live="polite"`, `href="/leaderboard"`, `connecting…`,
		`tug__fill--75`, // 300 of 400
		`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`, `&lt;b&gt;n0&lt;/b&gt;`,
		`<ol id="leaderboard"`, `role="status"`, "Red")
	// app.js sends taps (socket or POST); an htmx request queue on the
	// button would strand taps behind a slow POST.
	mustNotContain(t, doc, `<script>alert`, `<b>n0`, `hx-swap-oob`, `hx-post`)

	// Top 10 only.
	if n := strings.Count(doc, `class="board__row `); n != 10 {
		t.Errorf("%d leaderboard rows, want 10", n)
	}
	mustNotContain(t, doc, `data-player-id="p10"`)

	// Live transport: auto and ws use the WebSocket, sse the event stream.
	mustContain(t, doc, `<div id="live" data-transport="auto">`, `<div hx-ext="ws" ws-connect="/ws"></div>`)
	mustNotContain(t, doc, "sse-connect", "data-sse-url", "?page=")

	doc = render(t, GamePage(pageData("sse")))
	mustContain(t, doc, `<div id="live" data-transport="sse">`,
		`<div hx-ext="sse" sse-connect="/events"><div id="live-sink" sse-swap="state" hidden></div></div>`)
	mustNotContain(t, doc, "ws-connect")

	doc = render(t, GamePage(pageData("ws")))
	mustContain(t, doc, `data-transport="ws"`, `ws-connect="/ws"`)

	doc = render(t, GamePage(pageData("")))
	mustContain(t, doc, `data-transport="auto"`, `ws-connect="/ws"`)
}

func TestGamePageMarksOwnRow(t *testing.T) {
	d := pageData("auto")
	d.Me.ID = "p3"
	d.Rank = 4
	doc := render(t, GamePage(d))
	mustContain(t, doc,
		`<li class="board__row team-red is-me" data-player-id="p3" aria-current="true">`,
		`<span id="my-rank" class="num num--w1" data-n="4" data-of="0">4</span>`, `data-me-id="p3"`)
	if n := strings.Count(doc, "is-me"); n != 1 {
		t.Errorf("%d rows marked as mine, want 1", n)
	}
}

func TestGamePageEmpty(t *testing.T) {
	doc := render(t, GamePage(PageData{Me: game.User{ID: "x", Username: "solo", Team: game.Blue}}))
	mustContain(t, doc, `tug__fill--50`, "No taps yet", `aria-label="Tap for team Blue"`)
}

func TestLeaderboardPage(t *testing.T) {
	d := pageData("auto")
	d.State = snapshot(120)
	d.Rank = 7
	doc := render(t, LeaderboardPage(d))
	mustContain(t, doc, `<ol id="leaderboard-full"`, `data-player-id="p99"`,
		`&lt;b&gt;n5&lt;/b&gt;`, `&lt;script&gt;`, `href="/"`)
	mustNotContain(t, doc, `data-player-id="p100"`, `<b>n5`, `<script>alert`)
	if n := strings.Count(doc, `class="board__row `); n != 100 {
		t.Errorf("%d rows, want 100", n)
	}
	for _, id := range []string{"blue-score", "red-score", "tug-bar", "total-taps", "blue-online", "red-online", "my-rank", "my-taps", "connection-status", "live"} {
		if !hasID(doc, id) {
			t.Errorf("no #%s", id)
		}
	}

	// The leaderboard page asks for its own stream.
	mustContain(t, doc, `<div id="live" data-transport="auto" data-sse-url="/events?page=leaderboard">`,
		`<div hx-ext="ws" ws-connect="/ws?page=leaderboard"></div>`)
	doc = render(t, LeaderboardPage(pageData("sse")))
	mustContain(t, doc, `<div hx-ext="sse" sse-connect="/events?page=leaderboard"><div id="live-sink" sse-swap="state" hidden></div></div>`)
	mustNotContain(t, doc, "ws-connect")
}

func TestStateFragments(t *testing.T) {
	s := snapshot(12)
	frag := render(t, StateFragments(s, 10))
	if strings.Contains(frag, "\n") {
		t.Error("fragment contains a newline")
	}
	els := topLevel(t, frag)
	var ids []string
	for _, n := range els {
		id, _ := attr(n, "id")
		ids = append(ids, id)
		if v, ok := attr(n, "hx-swap-oob"); !ok || v != "true" {
			t.Errorf("#%s: hx-swap-oob = %q, %v", id, v, ok)
		}
	}
	if strings.Join(ids, ",") != strings.Join(liveIDs, ",") {
		t.Errorf("top-level ids %v, want %v", ids, liveIDs)
	}
	mustContain(t, frag, `<span id="blue-score" data-n="300" class="num num--w3" hx-swap-oob="true">300</span>`,
		`tug__fill--75`, `&lt;b&gt;n9&lt;/b&gt;`)
	mustNotContain(t, frag, `data-player-id="p10"`, `<b>n`, "is-me")

	if n := strings.Count(render(t, StateFragments(s, 3)), `class="board__row `); n != 3 {
		t.Errorf("top 3: %d rows", n)
	}
}

// Every fragment element, without its hx-swap-oob attribute, must be exactly
// what the page rendered: one component per live element.
func TestFragmentsMatchPages(t *testing.T) {
	d := pageData("auto") // Me is not on the leaderboard, so no row is marked
	page := render(t, GamePage(d))
	frag := render(t, StateFragments(d.State, GameTop)) + render(t, MeFragment(d.Me.TapCount, d.Rank, 10))
	for _, n := range topLevel(t, frag) {
		var sb strings.Builder
		if err := html.Render(&sb, n); err != nil {
			t.Fatal(err)
		}
		el := strings.Replace(sb.String(), ` hx-swap-oob="true"`, "", 1)
		if !strings.Contains(normalize(page), normalize(el)) {
			id, _ := attr(n, "id")
			t.Errorf("fragment #%s differs from the page:\n%s", id, el)
		}
	}

	d.State = snapshot(120)
	page = normalize(render(t, LeaderboardPage(d)))
	frag = render(t, LeaderboardFragments(d.State)) + render(t, MeFragment(d.Me.TapCount, d.Rank, 10))
	for _, n := range topLevel(t, frag) {
		var sb strings.Builder
		if err := html.Render(&sb, n); err != nil {
			t.Fatal(err)
		}
		el := strings.Replace(sb.String(), ` hx-swap-oob="true"`, "", 1)
		if !strings.Contains(page, normalize(el)) {
			id, _ := attr(n, "id")
			t.Errorf("fragment #%s differs from the leaderboard page:\n%s", id, el)
		}
	}
}

// normalize re-serialises HTML through the parser so that both sides use the
// same escaping and attribute quoting.
func normalize(s string) string {
	ctx := &html.Node{Type: html.ElementNode, Data: "body", DataAtom: atom.Body}
	nodes, err := html.ParseFragment(strings.NewReader(s), ctx)
	if err != nil {
		return s
	}
	var sb strings.Builder
	for _, n := range nodes {
		_ = html.Render(&sb, n)
	}
	return sb.String()
}

func TestMeFragment(t *testing.T) {
	frag := render(t, MeFragment(1234, 5, 40))
	want := `<span id="my-taps" class="num num--w5" data-applied="1234" hx-swap-oob="true">1,234</span>` +
		`<span id="my-rank" class="num num--w1" data-n="5" data-of="40" hx-swap-oob="true">5</span>`
	if frag != want {
		t.Errorf("got  %s\nwant %s", frag, want)
	}
	mustContain(t, render(t, MeFragment(0, 0, 0)), `data-applied="0"`, `hx-swap-oob="true">–</span>`)
}

func TestLeaderboardFragmentsTop100(t *testing.T) {
	frag := render(t, LeaderboardFragments(snapshot(150)))
	var ids []string
	for _, n := range topLevel(t, frag) {
		id, _ := attr(n, "id")
		ids = append(ids, id)
		if v, _ := attr(n, "hx-swap-oob"); v != "true" {
			t.Errorf("#%s: no hx-swap-oob", id)
		}
	}
	want := append(append([]string{}, liveIDs[:len(liveIDs)-1]...), "leaderboard-full")
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("top-level ids %v, want %v", ids, want)
	}
	if n := strings.Count(frag, `class="board__row `); n != 100 {
		t.Errorf("%d rows, want 100", n)
	}
	if strings.Contains(frag, "\n") {
		t.Error("fragment contains a newline")
	}
}

func TestShares(t *testing.T) {
	for _, c := range []struct {
		blue, red int64
		b, r      int
	}{
		{0, 0, 50, 50},
		{1, 0, 100, 0},
		{0, 5, 0, 100},
		{2, 1, 67, 33},
	} {
		b, r := shares(game.State{BlueScore: c.blue, RedScore: c.red})
		if b != c.b || r != c.r {
			t.Errorf("shares(%d,%d) = %d %d", c.blue, c.red, b, r)
		}
	}
}

package app_test

// The doors a stranger could leave ajar: Basic credentials taken for an API
// client, wrong guesses locking the operator out, one address using up the
// instance's joins.

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// clientFrom is an HTTP client whose connections come from ip (any
// 127.0.0.0/8 address reaches a server on 127.0.0.1): another client
// address, as another NAT would be, without a proxy.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// basicAuth is what a browser sends by itself to every request, cross-site
// ones included, once a password-protected proxy in front asked for it.
var basicAuth = "Basic " + "dXNlcjpwYXNzd29yZA==" // user:password

// Only a Bearer token marks an API client: a cross-site form post that
// carries Basic credentials is refused like any other, and Basic credentials
// neither disable the admin's cookie session nor count as wrong tokens.
func TestBasicCredentialsAreNoBearerToken(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	base := m.URL()
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": basicAuth}

	// Login CSRF with Basic credentials attached: refused, no cookie.
	browser := browserClient()
	code, hdr, body := admReq(t, browser, "POST", base+"/join", "username=victim",
		overlay(form, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}))
	if code != 403 || hdr.Get("Set-Cookie") != "" || !strings.Contains(body, "cross-origin") {
		t.Fatalf("cross-site POST /join with Basic credentials: %d %q %s", code, hdr.Get("Set-Cookie"), body)
	}
	// The player's own page behind that proxy: joins and taps with its cookie.
	same := overlay(form, map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin"})
	if code, _, body := admReq(t, browser, "POST", base+"/join", "username=ann", same); code != 303 {
		t.Fatalf("same-origin POST /join with Basic credentials: %d %s", code, body)
	}
	if code, _, body := admReq(t, browser, "POST", base+"/api/tap", "count=3", same); code != 202 {
		t.Fatalf("the player's cookie with Basic credentials: %d %s", code, body)
	}

	// The operator behind the same proxy: the cookie session works with
	// Basic credentials on every request, reads and writes.
	op, page := adminSignIn(t, base)
	csrf := csrfToken(t, page)
	for i := range 15 {
		if code, _, body := admReq(t, op, "GET", base+"/admin/stats?format=json", "", map[string]string{"Authorization": basicAuth}); code != 200 {
			t.Fatalf("admin session with Basic credentials, request %d: %d %.200s", i, code, body)
		}
	}
	if code, _, body := admReq(t, op, "POST", base+"/admin/reset", url.Values{"_csrf": {csrf}}.Encode(), same); code != 200 {
		t.Fatalf("admin reset with Basic credentials: %d %.200s", code, body)
	}
	// Those 15 were no wrong tokens: the first wrong bearer token is a
	// plain 401, not the 429 of an address that guessed ten times.
	if code, _, body := admReq(t, nil, "GET", base+"/admin/stats", "", map[string]string{"Authorization": "Bearer " + strings.Repeat("x", 40)}); code != 401 {
		t.Fatalf("first wrong token after Basic requests: %d %s", code, body)
	}
}

// Strangers sharing the operator's address (a venue's NAT) guess wrong
// tokens until they get 429; the right token and the signed-in session
// still work.
func TestWrongGuessesNeverLockOutTheOperator(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 1, stream.Topic)
	m := admInstance(t, r, k, nil, nil)
	base := m.URL()
	op, page := adminSignIn(t, base)
	csrf := csrfToken(t, page)

	wrong := map[string]string{"Authorization": "Bearer guess-guess-guess-guess-guess-guess"}
	last := 0
	for range 12 {
		last, _, _ = admReq(t, nil, "GET", base+"/admin/stats", "", wrong)
	}
	if last != 429 {
		t.Fatalf("12th wrong token: %d, want 429", last)
	}
	formHdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
	if code, _, body := admReq(t, browserClient(), "POST", base+"/admin/login", url.Values{"token": {"guess"}}.Encode(), formHdr); code != 429 {
		t.Fatalf("wrong login while guessing is throttled: %d %.200s", code, body)
	}
	// And every way in for the operator still works.
	if code, _, body := admReq(t, nil, "GET", base+"/admin/stats?format=json", "", bearer); code != 200 {
		t.Fatalf("the right token after strangers' guesses: %d %.200s", code, body)
	}
	if code, _, body := admReq(t, browserClient(), "POST", base+"/admin/login", url.Values{"token": {admToken}}.Encode(), formHdr); code != 303 {
		t.Fatalf("login with the right token after strangers' guesses: %d %.200s", code, body)
	}
	if code, _, body := admReq(t, op, "POST", base+"/admin/reset", url.Values{"_csrf": {csrf}}.Encode(), formHdr); code != 303 {
		t.Fatalf("the signed-in operator after strangers' guesses: %d %.200s", code, body)
	}
}

// One address flooding joins is refused by its own budget before it uses
// up the instance's: meanwhile a room of 300 behind another address joins
// with the defaults.
func TestOneAddressCannotUseUpTheJoins(t *testing.T) {
	if testing.Short() {
		t.Skip("hundreds of joins")
	}
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	m := instance(t, r, k, nil) // the defaults
	base := m.URL()

	joinFrom := func(c *http.Client, n, workers int) (joined, refused int, msg string) {
		var ok, no atomic.Int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		next := atomic.Int64{}
		for range workers {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					code, _, body := admReq(t, c, "POST", base+"/api/join", `{}`, map[string]string{"Content-Type": "application/json"})
					switch code {
					case 201:
						ok.Add(1)
					case 429:
						no.Add(1)
						mu.Lock()
						msg = body
						mu.Unlock()
					default:
						t.Errorf("join: %d %s", code, body)
					}
				}
			})
		}
		wg.Wait()
		return int(ok.Load()), int(no.Load()), msg
	}
	flood := clientFrom("127.0.0.1")
	got, refused, msg := joinFrom(flood, 1200, 16)
	if refused == 0 || !strings.Contains(msg, "JOIN_RATE_LIMIT") {
		t.Fatalf("a flood of 1,200 joins from one address: %d joined, %d refused, last refusal %s", got, refused, msg)
	}
	t.Logf("flood from one address: %d joined, %d refused: %s", got, refused, msg)
	// The flooding address is refused now; a room behind another address joins.
	if code, _, body := admReq(t, flood, "POST", base+"/api/join", `{}`, map[string]string{"Content-Type": "application/json"}); code != 429 {
		t.Fatalf("the flooding address is not refused any more: %d %s", code, body)
	}
	room := clientFrom("127.0.0.2")
	if got, refused, msg := joinFrom(room, 300, 16); got != 300 {
		t.Fatalf("a room of 300 behind another address while one address floods: %d joined, %d refused: %s", got, refused, msg)
	}
	// And single players from yet other addresses.
	for i := 3; i < 13; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i)
		if code, _, body := admReq(t, clientFrom(ip), "POST", base+"/api/join", `{}`, map[string]string{"Content-Type": "application/json"}); code != 201 {
			t.Fatalf("a player from %s: %d %s", ip, code, body)
		}
	}
}

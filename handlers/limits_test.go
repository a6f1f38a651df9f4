package handlers

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/internal/httpstatus"
)

func TestTapBurst(t *testing.T) {
	if tapBurst(20) != 50 || tapBurst(100) != 200 {
		t.Fatalf("tap bursts %d %d", tapBurst(20), tapBurst(100))
	}
}

func TestConnLimiter(t *testing.T) {
	l := newConnLimiter(3, 2)
	if err := l.acquire("a"); err != nil {
		t.Fatal(err)
	}
	if err := l.acquire("a"); err != nil {
		t.Fatal(err)
	}
	if err := l.acquire("a"); httpstatus.Of(err) != http.StatusTooManyRequests || !strings.Contains(err.Error(), "limit 2") {
		t.Fatalf("third from one address: %v", err)
	}
	if err := l.acquire("b"); err != nil {
		t.Fatal(err)
	}
	if err := l.acquire("c"); httpstatus.Of(err) != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "full") {
		t.Fatalf("over the total: %v", err)
	}
	l.release("a")
	if err := l.acquire("c"); err != nil {
		t.Fatal("slot not released")
	}
	l.release("a")
	l.release("b")
	l.release("c")
	if l.n != 0 || len(l.byKey) != 0 {
		t.Fatalf("leaked: %d %v", l.n, l.byKey)
	}
}

func TestClientKeyAndTrustedProxies(t *testing.T) {
	key := func(p Proxies, remote, xff string) string {
		e := echo.New()
		e.IPExtractor = p.IPExtractor()
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = remote
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		return clientKey(e.NewContext(req, httptest.NewRecorder()))
	}
	direct, err := ParseProxies(nil)
	if err != nil {
		t.Fatal(err)
	}
	if k := key(direct, "203.0.113.7:5000", "1.2.3.4"); k != "203.0.113.7" {
		t.Fatalf("X-Forwarded-For believed without trusted proxies: %s", k)
	}
	if a, b := key(direct, "[2001:db8:1:2:aaaa::1]:5000", ""), key(direct, "[2001:db8:1:2:bbbb::9]:5000", ""); a != b || a != "2001:db8:1:2::/64" {
		t.Fatalf("IPv6 addresses of one /64: %s %s", a, b)
	}
	proxied, err := ParseProxies([]string{"10.0.0.0/8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if k := key(proxied, "10.1.2.3:5000", "198.51.100.9"); k != "198.51.100.9" {
		t.Fatalf("trusted proxy's X-Forwarded-For ignored: %s", k)
	}
	if k := key(proxied, "192.0.2.1:5000", "6.6.6.6, 198.51.100.9"); k != "198.51.100.9" {
		t.Fatalf("nearest untrusted hop: %s", k)
	}
	if k := key(proxied, "203.0.113.7:5000", "1.2.3.4"); k != "203.0.113.7" {
		t.Fatalf("untrusted peer's X-Forwarded-For believed: %s", k)
	}
	if _, err := ParseProxies([]string{"not-an-address"}); err == nil {
		t.Fatal("bad proxy accepted")
	}
}

// One address's join budget is at most half of the instance's, in burst
// and in rate; without an instance budget it is JOIN_RATE_LIMIT as set.
func TestJoinLimiterIsAtMostHalfTheInstance(t *testing.T) {
	for _, tc := range []struct {
		perMinute, instance, burst int
		perSecond                  float64
	}{
		{600, 100, 500, 10}, {600, 50, 250, 10}, {600, 10, 50, 5}, {600, 0, 600, 10}, {30, 100, 30, 0.5},
	} {
		l := newJoinLimiter(tc.perMinute, tc.instance)
		if l.burst != tc.burst || float64(l.limit) != tc.perSecond {
			t.Errorf("JOIN_RATE_LIMIT %d, JOINS_PER_SECOND %d: burst %d, %v/s; want %d, %v/s", tc.perMinute, tc.instance, l.burst, l.limit, tc.burst, tc.perSecond)
		}
	}
	if newJoinLimiter(0, 100) != nil {
		t.Error("JOIN_RATE_LIMIT 0 is no per-address limit")
	}
}

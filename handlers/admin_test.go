package handlers

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tapwars/tapwars/internal/httpstatus"
)

func TestAdminTokenAndSessions(t *testing.T) {
	a := newAdminAuth("the-admin-token-0123456789")
	if !a.tokenOK("the-admin-token-0123456789") {
		t.Fatal("right token refused")
	}
	for _, bad := range []string{"", "the-admin-token-012345678", "the-admin-token-0123456789 ", strings.Repeat("x", 5000)} {
		if a.tokenOK(bad) {
			t.Fatalf("wrong token %.20q accepted", bad)
		}
	}
	now := time.Now()
	sess := a.newSession(now)
	if !a.sessionOK(sess, now) || !a.sessionOK(sess, now.Add(adminSessionTTL-time.Minute)) {
		t.Fatal("fresh session refused")
	}
	if a.sessionOK(sess, now.Add(adminSessionTTL+time.Second)) {
		t.Fatal("expired session accepted")
	}
	if a.newSession(now) == sess {
		t.Fatal("two sessions are equal")
	}
	if id := sessionID(sess); len(id) < 22 || strings.Contains(id, ".") || !strings.Contains(sess, "."+id+".") || sessionID(a.newSession(now)) == id {
		t.Fatalf("session id %q of %q", id, sess)
	}
	other := newAdminAuth("another-admin-token-0123456")
	for _, bad := range []string{"", "a1.", "a1..", "a1.x.y.z", sess + "x", sess[:len(sess)-2], other.newSession(now),
		strings.Replace(sess, "a1.", "a1.9", 1), strings.Repeat("a1.", 100)} {
		if a.sessionOK(bad, now) {
			t.Fatalf("session %.30q accepted", bad)
		}
	}
	// The CSRF token is bound to the session and the key.
	if a.csrf(sess) == a.csrf(a.newSession(now)) || a.csrf(sess) == other.csrf(sess) {
		t.Fatal("csrf tokens are not per session and key")
	}
	if first, again := a.csrf(sess), a.csrf(sess); first != again {
		t.Fatal("csrf token of one session is not stable")
	}
}

func TestKeyedLimiter(t *testing.T) {
	l := newKeyedLimiter(10, 20) // 10/s, burst 20
	now := time.Unix(1000, 0)
	if ok, _ := l.take("a", 20, now); !ok {
		t.Fatal("burst refused")
	}
	ok, wait := l.take("a", 1, now)
	if ok || wait < 90*time.Millisecond || wait > 110*time.Millisecond {
		t.Fatalf("over the burst: %v %v", ok, wait)
	}
	if ok, _ := l.take("b", 5, now); !ok {
		t.Fatal("another key is limited too")
	}
	if ok, _ := l.take("a", 1, now.Add(100*time.Millisecond)); !ok {
		t.Fatal("no refill")
	}
	if ok, wait := l.take("a", 21, now.Add(time.Hour)); ok || wait <= 0 {
		t.Fatal("more than the burst at once accepted")
	}
	// Idle keys are evicted once their bucket would be full again.
	for i := range 1000 {
		l.take("k"+strconv.Itoa(i), 1, now.Add(2*time.Hour))
	}
	l.take("kept", 1, now.Add(2*time.Hour+l.idle))
	if n := l.size(); n != 1001 { // one generation later: still held
		t.Fatalf("%d keys one idle period later, want 1001", n)
	}
	l.take("fresh", 1, now.Add(2*time.Hour+2*l.idle+time.Millisecond))
	if n := l.size(); n != 2 { // two generations later: only the used ones
		t.Fatalf("%d keys after everything went idle, want 2", n)
	}
	var nilLimiter *keyedLimiter
	if ok, _ := nilLimiter.take("x", 1000, now); !ok {
		t.Fatal("a disabled limiter refused")
	}
	if newKeyedLimiter(0, 5) != nil {
		t.Fatal("rate 0 must disable")
	}
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

// BenchmarkKickedCheck is the per-request cost of the in-memory kicked set
// (compare store's BenchmarkIsKicked, a Redis round trip).
func BenchmarkKickedCheck(b *testing.B) {
	var k kickSet
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = strings.Repeat("x", 20) + string(rune('a'+i%26)) + strings.Repeat("y", i%7)
	}
	k.set(ids)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if k.has("0123456789abcdef0123456789abcdef") {
				b.Fatal("not kicked")
			}
		}
	})
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

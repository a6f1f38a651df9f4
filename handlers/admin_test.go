package handlers

import (
	"strings"
	"testing"
	"time"
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

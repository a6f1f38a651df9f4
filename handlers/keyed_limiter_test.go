package handlers

import (
	"strconv"
	"testing"
	"time"
)

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
}

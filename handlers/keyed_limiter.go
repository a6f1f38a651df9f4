package handlers

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimiter is a token bucket per key with eviction of idle keys (the
// limits in limits.go and the admin login's use it). A key idle longer
// than it takes to refill its bucket may be dropped: a new bucket is full
// too, so eviction never changes an answer. Eviction is by generations:
// every idle period the current map becomes the previous one and the
// previous one is dropped (a key used meanwhile moves back), so there is
// never a sweep over millions of players under the lock.
type keyedLimiter struct {
	limit rate.Limit
	burst int
	idle  time.Duration // after this a bucket is full again

	mu        sync.Mutex
	cur, prev map[string]*rate.Limiter
	rotated   time.Time
}

func newKeyedLimiter(perSecond float64, burst int) *keyedLimiter {
	if perSecond <= 0 {
		return nil
	}
	idle := time.Duration(float64(burst)/perSecond*float64(time.Second)) + time.Second
	return &keyedLimiter{limit: rate.Limit(perSecond), burst: burst, idle: idle,
		cur: map[string]*rate.Limiter{}, prev: map[string]*rate.Limiter{}}
}

// bucket returns key's bucket, creating it if create; l.mu is held.
func (l *keyedLimiter) bucket(key string, now time.Time, create bool) *rate.Limiter {
	switch since := now.Sub(l.rotated); {
	case since >= 2*l.idle:
		l.prev, l.cur, l.rotated = map[string]*rate.Limiter{}, map[string]*rate.Limiter{}, now
	case since >= l.idle:
		l.prev, l.cur, l.rotated = l.cur, make(map[string]*rate.Limiter, len(l.cur)), now
	}
	if b := l.cur[key]; b != nil {
		return b
	}
	b := l.prev[key]
	if b != nil {
		delete(l.prev, key)
	} else if create {
		b = rate.NewLimiter(l.limit, l.burst)
	} else {
		return nil
	}
	l.cur[key] = b
	return b
}

// take takes n tokens for key now, or returns how long to wait until they
// would be there (then nothing is taken). A nil limiter allows everything.
func (l *keyedLimiter) take(key string, n int, now time.Time) (ok bool, wait time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(key, now, true)
	if n > l.burst {
		return false, l.idle
	}
	r := b.ReserveN(now, n)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// size is the number of keys held (for tests).
func (l *keyedLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cur) + len(l.prev)
}

package handlers

// Kicked players: every instance keeps the set of kicked ids in memory and
// checks it on each authenticated request and again under the tap's hold
// of the round view (a map lookup, no Redis round trip). It is reloaded
// when any instance kicks or imports (pub/sub game:admin), after every
// reconnection of that subscription, every 10 s as a safety net, and by the
// round view when a kick is announced: a kick is logged only once every
// instance reloaded and answered the taps it judged before (see
// ledger.RoundView), so no tap of a kicked player is answered 202 and then
// skipped by the consumer. While Redis
// is empty or rebuilt from the log, the reload keeps the ids it knew
// (ledger.Game.KickedIDs), since the replay gets to the kicks only later.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapwars/tapwars/game"
)

// errKicked is the error of a kicked player's token.
var errKicked = game.Errorf(game.EUNAUTHORIZED, "this player was removed from the game by its operator")

// kickSet is an immutable set replaced as a whole: readers never lock.
type kickSet struct {
	mu  sync.Mutex // serialises writers
	ids atomic.Pointer[map[string]struct{}]
}

// loaded reports whether the set was read from the store at least once.
func (k *kickSet) loaded() bool { return k.ids.Load() != nil }

func (k *kickSet) has(id string) bool {
	m := k.ids.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[id]
	return ok
}

func (k *kickSet) add(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.ids.Load()
	m := make(map[string]struct{}, 1+lenOf(old))
	if old != nil {
		for id := range *old {
			m[id] = struct{}{}
		}
	}
	m[id] = struct{}{}
	k.ids.Store(&m)
}

func (k *kickSet) set(ids []string) {
	m := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		m[id] = struct{}{}
	}
	k.mu.Lock()
	k.ids.Store(&m)
	k.mu.Unlock()
}

func lenOf(m *map[string]struct{}) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// kickReload is the safety-net reload interval of the kicked set.
const kickReload = 10 * time.Second

// watchKicks keeps the kicked set current until ctx ends.
func (s *Server) watchKicks(ctx context.Context) {
	changes := s.opt.Admin.SubscribeAdmin(ctx)
	tick := time.NewTicker(kickReload)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				return
			}
			// A kick or an import (or a reconnection that may have missed
			// one): players may have been removed or changed team.
			_ = s.reloadKicks(ctx, true)
		case <-tick.C:
			_ = s.reloadKicks(ctx, false)
		}
	}
}

// reloadKicks reads the kicked set; dropCache also forgets the cached
// players, which are read again from the store on their next request.
func (s *Server) reloadKicks(ctx context.Context, dropCache bool) error {
	if s.opt.Admin == nil {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ids, err := s.opt.Admin.KickedIDs(rctx)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			s.log.Warn("reload kicked players", "err", err)
		}
	} else {
		s.kicks.set(ids)
		s.hub.Kick(ids) // pages of kicked players still connected here
	}
	if dropCache {
		s.users.clear()
	}
	return err
}

package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/stream"
)

// Checkpointer keeps checkpoints of the projection in Kafka (see
// stream.Checkpoints), so a rebuild loads the newest one and replays only
// the log after it.
type Checkpointer struct {
	st  *store.Store
	cps *stream.Checkpoints
	log *slog.Logger

	mu   sync.Mutex        // one restore at a time
	last map[string]string // offsets of the last checkpoint written
}

// NewCheckpointer returns a Checkpointer of st's projection on cps.
func NewCheckpointer(st *store.Store, cps *stream.Checkpoints, log *slog.Logger) *Checkpointer {
	return &Checkpointer{st: st, cps: cps, log: log}
}

// Take writes a checkpoint unless the projection is empty or did not move
// since the last one this instance wrote.
func (c *Checkpointer) Take(ctx context.Context) (written bool, err error) {
	cp, ok, err := c.st.TakeCheckpoint(ctx)
	if err != nil || !ok || maps.Equal(cp.Offsets(), c.last) {
		return false, err
	}
	data, err := json.Marshal(cp)
	if err != nil {
		return false, fmt.Errorf("encode checkpoint: %w", err)
	}
	start := time.Now()
	if err := c.cps.Write(ctx, data, time.Now()); err != nil {
		return false, err
	}
	c.last = cp.Offsets()
	c.log.Info("checkpoint written", "bytes", len(data), "players", len(cp.Hashes[store.KeyUsers]), "offsets", cp.Offsets(), "took", time.Since(start))
	return true, nil
}

// Run writes a checkpoint every interval while owner() says this instance
// should (the one consuming partition 0 writes them) and rebuilding() does
// not hold, until ctx ends.
func (c *Checkpointer) Run(ctx context.Context, every time.Duration, owner, rebuilding func() bool) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !owner() || rebuilding() {
			continue
		}
		tctx, cancel := context.WithTimeout(ctx, time.Minute)
		if _, err := c.Take(tctx); err != nil && ctx.Err() == nil {
			c.log.Warn("checkpoint failed; the next one retries", "err", err)
		}
		cancel()
	}
}

// Restore loads the newest checkpoint into a projection that holds no
// offsets (a new or wiped Redis). It does nothing when the projection holds
// offsets, or when there is no checkpoint (the replay then starts at the
// log's beginning).
func (c *Checkpointer) Restore(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if has, err := c.st.HasOffsets(ctx); err != nil || has {
		return err
	}
	start := time.Now()
	data, err := c.cps.Latest(ctx)
	if err != nil || data == nil {
		return err
	}
	var cp store.Checkpoint
	if err := json.Unmarshal(data, &cp); err != nil {
		return fmt.Errorf("checkpoint is damaged: %w", err)
	}
	ok, err := c.st.RestoreCheckpoint(ctx, cp)
	if err != nil {
		return err
	}
	if ok {
		c.log.Info("checkpoint loaded into an empty store; replaying the log after it", "offsets", cp.Offsets(),
			"players", len(cp.Hashes[store.KeyUsers]), "bytes", len(data), "took", time.Since(start))
	}
	return nil
}

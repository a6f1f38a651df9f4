package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/tapwars/tapwars/metrics"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/stream"
)

// Checkpointer keeps checkpoints of the projection in Kafka (see
// stream.CheckpointLog), so a rebuild loads the newest one and replays only
// the log after it.
type Checkpointer struct {
	st  *store.Store
	cps *stream.CheckpointLog
	log *slog.Logger

	mu   sync.Mutex        // one restore at a time
	last map[string]string // offsets of the last checkpoint written

	readMu  sync.Mutex
	readErr error // the last restore's failure to read the newest checkpoint
}

// NewCheckpointer returns a Checkpointer of st's projection on cps.
func NewCheckpointer(st *store.Store, cps *stream.CheckpointLog, log *slog.Logger) *Checkpointer {
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
// not hold, until ctx ends. The other instances read when the newest one
// was written, for tapwars_checkpoint_age_seconds.
func (c *Checkpointer) Run(ctx context.Context, every time.Duration, owner, rebuilding func() bool) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	c.readAge(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !owner() || rebuilding() {
			c.readAge(ctx)
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
	data, info, err := c.cps.Latest(ctx)
	if errors.Is(err, stream.ErrNoCheckpoint) {
		c.noteRead(nil)
		return nil
	}
	var cp store.Checkpoint
	if err == nil {
		if jerr := json.Unmarshal(data, &cp); jerr != nil {
			err = &stream.CheckpointError{Err: fmt.Errorf("checkpoint %s is damaged: %w", info.ID, jerr)}
		}
	}
	if err != nil {
		// Never "no checkpoint": the log's start may be gone, and a replay
		// without it would build (and then checkpoint) a wrong state.
		c.noteRead(err)
		return err
	}
	c.noteRead(nil)
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

// noteRead records the outcome of reading the newest checkpoint: a failure
// is logged at error level (once until it reads again) and counted.
func (c *Checkpointer) noteRead(err error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	switch {
	case err != nil && c.readErr == nil:
		metrics.LogProblems.WithLabelValues(metrics.ProblemCheckpoint).Inc()
		c.log.Error("the newest checkpoint cannot be read: the state is not rebuilt until it can (retrying)", "err", err)
	case err == nil && c.readErr != nil:
		c.log.Info("the newest checkpoint can be read again")
	}
	c.readErr = err
}

// Ready reports, for /readyz, that the newest checkpoint could not be read
// when the state was last rebuilt.
func (c *Checkpointer) Ready(context.Context) error {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	return c.readErr
}

// readAge learns when the newest checkpoint was written (the log keeps it:
// NewestAt).
func (c *Checkpointer) readAge(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.cps.Newest(rctx); err != nil && !errors.Is(err, stream.ErrNoCheckpoint) && ctx.Err() == nil {
		c.log.Warn("cannot read when the newest checkpoint was written", "err", err)
	}
}

// Age says how old the newest checkpoint this instance knows is, for
// /readyz.
func (c *Checkpointer) Age(every time.Duration) func(context.Context) string {
	return func(context.Context) string {
		if every <= 0 {
			return "off (CHECKPOINT_INTERVAL=0)"
		}
		at := c.cps.NewestAt()
		if at.IsZero() {
			return "none yet"
		}
		return fmt.Sprintf("newest %s old (one every %s)", time.Since(at).Round(time.Second), every)
	}
}

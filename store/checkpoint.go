package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// A Checkpoint is the projection at one point of the log: every key that
// replaying the log builds, read atomically with the offsets it covers.
// Loading it into an empty Redis and replaying the log from its offsets
// gives the same state as replaying the whole log. Presence, the
// taps-per-second chart and pending kicks are left out: they are not
// rebuilt from the log either.
type Checkpoint struct {
	Version int                          `json:"version"`
	Hashes  map[string]map[string]string `json:"hashes"`
	Strings map[string]string            `json:"strings"`
	Sorted  map[string]map[string]int64  `json:"sorted"` // member -> score
}

// CheckpointVersion is the format of Checkpoint.
const CheckpointVersion = 1

// The checkpoint's key lists are built from the table of keys (keys.go).

// Offsets of a checkpoint, per "topic/partition" field.
func (c Checkpoint) Offsets() map[string]string { return c.Hashes[KeyOffsets] }

// TakeCheckpoint reads the projection in one MULTI/EXEC. ok is false when
// the projection holds no offsets (nothing to keep).
func (s *Store) TakeCheckpoint(ctx context.Context) (cp Checkpoint, ok bool, err error) {
	hashes := make([]*redis.MapStringStringCmd, len(checkpointHashes))
	var strs *redis.SliceCmd
	sorted := make([]*redis.ZSliceCmd, len(checkpointSorted))
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range checkpointHashes {
			hashes[i] = p.HGetAll(ctx, k)
		}
		strs = p.MGet(ctx, checkpointStrings...)
		for i, k := range checkpointSorted {
			sorted[i] = p.ZRangeWithScores(ctx, k, 0, -1)
		}
		return nil
	})
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("read checkpoint: %w", err)
	}
	if len(hashes[0].Val()) == 0 && len(sorted[0].Val())+len(sorted[1].Val()) > 0 {
		return Checkpoint{}, false, ErrInconsistent // never a checkpoint of a state that lost its players
	}
	cp = Checkpoint{Version: CheckpointVersion, Hashes: map[string]map[string]string{}, Strings: map[string]string{}, Sorted: map[string]map[string]int64{}}
	for i, k := range checkpointHashes {
		if v := hashes[i].Val(); len(v) > 0 {
			cp.Hashes[k] = v
		}
	}
	for i, v := range strs.Val() {
		if str, ok := v.(string); ok {
			cp.Strings[checkpointStrings[i]] = str
		}
	}
	for i, k := range checkpointSorted {
		if zs := sorted[i].Val(); len(zs) > 0 {
			m := make(map[string]int64, len(zs))
			for _, z := range zs {
				m[z.Member.(string)] = int64(z.Score)
			}
			cp.Sorted[k] = m
		}
	}
	return cp, len(cp.Offsets()) > 0, nil
}

// errNotEmpty aborts a restore into a projection that holds offsets.
var errNotEmpty = errors.New("the projection is not empty")

// HasOffsets reports whether the projection holds any applied offset (a new
// or wiped Redis holds none).
func (s *Store) HasOffsets(ctx context.Context) (bool, error) {
	n, err := s.rdb.Exists(ctx, KeyOffsets).Result()
	return n > 0, err
}

// RestoreCheckpoint loads cp into a projection that holds no offsets at
// all (a new or wiped Redis), atomically: if any partition's offset appears
// meanwhile (another consumer started replaying from the log's start), it
// does nothing and reports false, and replaying goes on from there.
func (s *Store) RestoreCheckpoint(ctx context.Context, cp Checkpoint) (bool, error) {
	if cp.Version != CheckpointVersion {
		return false, fmt.Errorf("checkpoint version %d is not supported (this server reads %d)", cp.Version, CheckpointVersion)
	}
	err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, KeyOffsets).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			return errNotEmpty
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, projectionKeyNames()...)
			for k, m := range cp.Hashes {
				args := make([]any, 0, 2*min(len(m), 1000))
				for f, v := range m {
					args = append(args, f, v)
					if len(args) >= 2000 {
						p.HSet(ctx, k, args...)
						args = args[:0]
					}
				}
				if len(args) > 0 {
					p.HSet(ctx, k, args...)
				}
			}
			for k, v := range cp.Strings {
				p.Set(ctx, k, v, 0)
			}
			for k, m := range cp.Sorted {
				zs := make([]redis.Z, 0, min(len(m), 1000))
				for member, score := range m {
					zs = append(zs, redis.Z{Score: float64(score), Member: member})
					if len(zs) >= 1000 {
						p.ZAdd(ctx, k, zs...)
						zs = zs[:0]
					}
				}
				if len(zs) > 0 {
					p.ZAdd(ctx, k, zs...)
				}
			}
			p.Publish(ctx, ChannelUpdates, "1")
			p.Publish(ctx, ChannelAdmin, "import")
			return nil
		})
		return err
	}, KeyOffsets)
	switch {
	case errors.Is(err, errNotEmpty), errors.Is(err, redis.TxFailedErr):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("restore checkpoint: %w", err)
	}
	return true, nil
}

// CheckpointOffset is the offset of partition p of topic in cp, or -1.
func (c Checkpoint) CheckpointOffset(topic string, p int32) int64 {
	v, ok := c.Offsets()[OffsetField(topic, p)]
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/game"
)

// Partitions reads base and marked; zeros when not set yet.
func (s *Store) Partitions(ctx context.Context) (base, marked int32, err error) {
	vals, err := s.rdb.HMGet(ctx, KeyPartitions, "base", "marked").Result()
	if err != nil {
		return 0, 0, fmt.Errorf("read partitions: %w", err)
	}
	return int32(atoi(vals[0])), int32(atoi(vals[1])), nil
}

// SetPartitions records base (once: the first value stays) and marked.
func (s *Store) SetPartitions(ctx context.Context, base, marked int32) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSetNX(ctx, KeyPartitions, "base", base)
		p.HSet(ctx, KeyPartitions, "marked", marked)
		return nil
	})
	if err != nil {
		return fmt.Errorf("record partitions: %w", err)
	}
	return nil
}

// markersLockTTL frees the lock of a writer that died holding it; it
// outlasts the longest wait of an announcement for the instances (see
// ledger.Game.ViewWait).
const markersLockTTL = 30 * time.Second

var unlockScript = newLuaScript("unlock.lua")

// LockMarkers waits (until ctx ends) for the round-marker lock and returns
// its release.
func (s *Store) LockMarkers(ctx context.Context) (unlock func(), err error) {
	token := newID()
	for {
		ok, err := s.rdb.SetNX(ctx, keyMarkersLock, token, markersLockTTL).Result()
		if err != nil {
			return nil, fmt.Errorf("lock round markers: %w", err)
		}
		if ok {
			return func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				defer cancel()
				_ = unlockScript.Run(ctx, s.rdb, unlockScript.Keys(0), token).Err()
			}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: another instance is writing round markers: %w", game.ErrUnavailable, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ImportRound is the round the last import started (0: none).
func (s *Store) ImportRound(ctx context.Context) (int64, error) {
	v, err := s.rdb.Get(ctx, KeyImportRound).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read import round: %w", err)
	}
	return strconv.ParseInt(v, 10, 64)
}

package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/store"
)

// TestApplyChecksEveryKeyTypeFirst: whichever key of the table holds the
// wrong type, a batch is refused before its first write, with the key's
// name in the error.
func TestApplyChecksEveryKeyTypeFirst(t *testing.T) {
	st, r := newStore(t)
	ctx := context.Background()
	rdb := r.Client()
	now := time.Now().UnixMilli()
	names, types := store.ApplyKeyTypes(now)
	for i, k := range names {
		if err := rdb.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		a, err := st.Join(ctx, "alice", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		rdb.Del(ctx, k)
		if types[i] == "string" {
			rdb.HSet(ctx, k, "f", "v")
		} else {
			rdb.Set(ctx, k, "x", 0)
		}
		_, err = st.Apply(ctx, game.Batch{Topic: "game-taps", Partition: 0, From: 0, Next: 3, Start: true, Now: now,
			Taps: []game.PlayerTaps{{UserID: a.ID, Count: 3}}})
		if err == nil {
			t.Errorf("%s holding the wrong type: the batch was applied", k)
			continue
		}
		if k != store.KeyOffsets && (!strings.Contains(err.Error(), k+" is a ") || !strings.Contains(err.Error(), "nothing of the batch was applied")) {
			t.Errorf("%s holding the wrong type: %v", k, err)
		}
		if k != store.KeyOffsets && rdb.Exists(ctx, store.KeyOffsets).Val() != 0 {
			t.Errorf("%s holding the wrong type: the offsets were written", k)
		}
		if k != store.KeyTotalTaps && rdb.Get(ctx, store.KeyTotalTaps).Val() == "3" {
			t.Errorf("%s holding the wrong type: the taps were counted", k)
		}
	}
}

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

// TestApplyReturnsPartitionSchedule: an applied batch says where it left
// the partition's round, the same schedule PartitionSchedule then reads
// (the consumer counts the next batch by it without reading it).
func TestApplyReturnsPartitionSchedule(t *testing.T) {
	st, _ := newStore(t)
	ctx := context.Background()
	a, err := st.Join(ctx, "alice", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	timed := game.RoundSchedule{Number: 1, Mode: game.ModeTimed, CountdownAt: now, StartsAt: now + 3000, EndsAt: now + 63000}
	tap := game.Step{Taps: []game.PlayerTaps{{UserID: a.ID, Count: 2}}}
	for _, c := range []struct {
		name  string
		p     int32
		from  int64
		steps []game.Step
		want  game.RoundSchedule
	}{
		{"open play from the log's start", 0, 0, []game.Step{tap}, game.RoundSchedule{Mode: game.ModeOpen}},
		{"a timed round's marker", 0, 2, []game.Step{tap, factAt(3, game.Fact{Type: game.FactRound, Round: 1, Schedule: &timed}), tap}, timed},
		{"taps in the timed round", 0, 4, []game.Step{tap}, timed},
		{"an open round's marker", 0, 6, []game.Step{factAt(6, game.Fact{Type: game.FactRound, Round: 2})}, game.RoundSchedule{Number: 2, Mode: game.ModeOpen}},
		{"an older marker changes nothing", 0, 8, []game.Step{factAt(8, game.Fact{Type: game.FactRound, Round: 1, Schedule: &timed})}, game.RoundSchedule{Number: 2, Mode: game.ModeOpen}},
		{"another partition before its marker", 1, 0, []game.Step{tap}, game.RoundSchedule{Mode: game.ModeOpen}},
		{"another partition's marker", 1, 2, []game.Step{factAt(2, game.Fact{Type: game.FactRound, Round: 2})}, game.RoundSchedule{Number: 2, Mode: game.ModeOpen}},
	} {
		res := applySteps(t, st, c.p, c.from, c.from+2, c.steps...)
		if res.Status != game.Applied || res.Schedule == nil || *res.Schedule != c.want {
			t.Fatalf("%s: %+v (schedule %+v), want %+v", c.name, res, res.Schedule, c.want)
		}
		stored, err := st.PartitionSchedule(ctx, "game-taps", c.p)
		if err != nil || stored != *res.Schedule {
			t.Fatalf("%s: stored %+v %v, returned %+v", c.name, stored, err, *res.Schedule)
		}
	}
	// A batch not applied says nothing of the schedule.
	if res := applySteps(t, st, 0, 6, 8, tap); res.Status != game.Duplicate || res.Schedule != nil {
		t.Fatalf("duplicate: %+v", res)
	}
}

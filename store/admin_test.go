package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/store"
)

// backends runs f against redis-server and against miniredis (the embedded
// store's engine when redis-server is missing): the admin scripts must work
// on both.
func backends(t *testing.T, f func(t *testing.T, st *store.Store, rdb *redis.Client)) {
	t.Run("redis-server", func(t *testing.T) {
		r := testenv.StartRedis(t)
		c := r.Client()
		f(t, store.New(c), c)
	})
	t.Run("miniredis", func(t *testing.T) {
		m := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: m.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		f(t, store.New(c), c)
	})
}

// applyAt applies taps of partition p at [from, next); a partition's first
// batch starts at 0.
func applyAt(t *testing.T, st *store.Store, p int32, from, next int64, taps ...game.PlayerTaps) game.ApplyResult {
	t.Helper()
	return applySteps(t, st, p, from, next, game.Step{Taps: taps})
}

func applySteps(t *testing.T, st *store.Store, p int32, from, next int64, steps ...game.Step) game.ApplyResult {
	t.Helper()
	res, err := st.Apply(context.Background(), game.Batch{Topic: "game-taps", Partition: p, From: from, Next: next, Start: from == 0, Steps: steps, Now: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func factAt(off int64, f game.Fact) game.Step { return game.Step{Fact: &f, Offset: off} }

func mustState(t *testing.T, st *store.Store) game.State {
	t.Helper()
	snap, err := st.Snapshot(context.Background(), 100, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return snap.GameState
}

func TestResetStartsANewRound(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store, rdb *redis.Client) {
		ctx := context.Background()
		a, _ := st.Join(ctx, "alice", time.Now())
		b, _ := st.Join(ctx, "bob", time.Now())
		// A player written by another program, fields in another order.
		rdb.HSet(ctx, store.KeyUsers, "old", `{"tapCount":12,"team":"red","username":"old","id":"old","joinedAt":1,"sessionId":"s"}`)
		// A player of the old game, with taps but no leaderboard entry: the first reset finds them too.
		rdb.HSet(ctx, store.KeyUsers, "legacy", `{"id":"legacy","username":"legacy","team":"blue","joinedAt":1,"sessionId":"s","tapCount":9}`)
		applyAt(t, st, 0, 0, 10, game.PlayerTaps{UserID: a.ID, Count: 7}, game.PlayerTaps{UserID: b.ID, Count: 3})
		applyAt(t, st, 1, 0, 5, game.PlayerTaps{UserID: "old", Count: 4})
		if gs := mustState(t, st); gs.TotalTaps != 14 {
			t.Fatalf("before reset: %+v", gs)
		}
		sub, cancel := context.WithCancel(ctx)
		defer cancel()
		changes := st.Subscribe(sub)
		<-changes // the signal after subscribing

		res, err := st.Reset(ctx, 1, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if res.Round != 1 || res.Zeroed != 4 {
			t.Fatalf("reset: %+v", res)
		}
		select {
		case <-changes:
		case <-time.After(5 * time.Second):
			t.Fatal("reset published nothing on game:updates")
		}
		gs := mustState(t, st)
		if gs.BlueScore != 0 || gs.RedScore != 0 || gs.TotalTaps != 0 || gs.Round != 1 {
			t.Fatalf("after reset: %+v", gs)
		}
		if gs.ActiveUsers != 3 { // presence stays (alice and bob joined, old tapped)
			t.Fatalf("presence lost: %+v", gs)
		}
		if n, _ := rdb.ZCard(ctx, store.KeyLeaderboard).Result(); n != 0 {
			t.Fatalf("leaderboard has %d entries", n)
		}
		for _, id := range []string{a.ID, b.ID, "old", "legacy"} {
			u, err := st.User(ctx, id)
			if err != nil || u.TapCount != 0 || !u.Team.Valid() {
				t.Fatalf("user %s after reset: %+v %v", id, u, err)
			}
		}
		// A reset that is not ahead changes nothing.
		if res, err := st.Reset(ctx, 1, time.Now()); err != nil || res.Round != 1 || res.Zeroed != 0 {
			t.Fatalf("repeated reset: %+v %v", res, err)
		}
		// Offsets are untouched.
		offs, _ := st.Offsets(ctx, "game-taps", []int32{0, 1, 2})
		if offs[0] != 10 || offs[1] != 5 || len(offs) != 2 {
			t.Fatalf("offsets changed: %v", offs)
		}
		// Taps before partition 0's marker belong to round 0: skipped.
		if r := applyAt(t, st, 0, 10, 15, game.PlayerTaps{UserID: a.ID, Count: 5}); r.Status != game.Applied || r.Applied != 0 || r.OldRound != 5 {
			t.Fatalf("taps before the marker: %+v", r)
		}
		// The marker, then taps of the new round, which count.
		r := applySteps(t, st, 0, 15, 19, factAt(15, game.Fact{Type: game.FactRound, Round: 1}), game.Step{Taps: []game.PlayerTaps{{UserID: a.ID, Count: 3}}})
		if r.Status != game.Applied || r.Applied != 3 {
			t.Fatalf("marker and taps: %+v", r)
		}
		if u, _ := st.User(ctx, a.ID); u.TapCount != 3 {
			t.Fatalf("alice after the new round's taps: %+v", u)
		}
		ov, _ := st.Overview(ctx, "game-taps", time.Now(), time.Minute)
		if ov.RoundStarts[0] != 15 {
			t.Fatalf("round starts %v", ov.RoundStarts)
		}
		// Round 2 reached through partition 1's marker first: partition 0,
		// still before its own marker, counts nothing more.
		if r := applySteps(t, st, 1, 5, 6, factAt(5, game.Fact{Type: game.FactRound, Round: 2})); r.Status != game.Applied {
			t.Fatalf("marker 2: %+v", r)
		}
		if r := applyAt(t, st, 0, 19, 20, game.PlayerTaps{UserID: a.ID, Count: 1}); r.Applied != 0 || r.OldRound != 1 {
			t.Fatalf("taps of partition 0 behind round 2: %+v", r)
		}
		if gs := mustState(t, st); gs.TotalTaps != 0 || gs.Round != 2 {
			t.Fatalf("after round 2: %+v", gs)
		}
	})
}

func TestApplyRefusesABatchTheStoreIsBehind(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store, rdb *redis.Client) {
		ctx := context.Background()
		a, _ := st.Join(ctx, "alice", time.Now())
		applyAt(t, st, 0, 0, 10, game.PlayerTaps{UserID: a.ID, Count: 7})
		// A gap after what the store holds.
		if r := applyAt(t, st, 0, 12, 15, game.PlayerTaps{UserID: a.ID, Count: 1}); r.Status != game.Behind || r.Offset != 10 {
			t.Fatalf("gap: %+v", r)
		}
		// A store that lost everything (FLUSHALL) refuses anything but the log's start.
		rdb.FlushAll(ctx)
		if r := applyAt(t, st, 0, 10, 15, game.PlayerTaps{UserID: a.ID, Count: 1}); r.Status != game.Behind || r.Offset != -1 {
			t.Fatalf("after FLUSHALL: %+v", r)
		}
		if gs := mustState(t, st); gs.TotalTaps != 0 {
			t.Fatalf("a refused batch changed the state: %+v", gs)
		}
	})
}

// logJoin is the join step of a player.
func logJoin(off int64, u game.User) game.Step {
	return factAt(off, game.Fact{Type: game.FactJoin, User: &u})
}

func TestKickRemovesThePlayerAndTheirTaps(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store, rdb *redis.Client) {
		ctx := context.Background()
		a := game.User{ID: "alice1", Username: "alice", Team: game.Blue, JoinedAt: time.Now().UnixMilli(), SessionID: "s1"}
		b := game.User{ID: "bob1", Username: "bob", Team: game.Red, JoinedAt: time.Now().UnixMilli(), SessionID: "s2"}
		r := applySteps(t, st, 0, 0, 4, logJoin(0, a), logJoin(1, b),
			game.Step{Taps: []game.PlayerTaps{{UserID: a.ID, Count: 7}, {UserID: b.ID, Count: 3}}})
		if r.Status != game.Applied || r.Applied != 10 {
			t.Fatalf("joins and taps: %+v", r)
		}
		sub, cancel := context.WithCancel(ctx)
		defer cancel()
		admin := st.SubscribeAdmin(sub)
		<-admin

		applySteps(t, st, 0, 4, 5, factAt(4, game.Fact{Type: game.FactKick, UserID: a.ID, At: 1234}))
		select {
		case <-admin:
		case <-time.After(5 * time.Second):
			t.Fatal("kick published nothing on game:admin")
		}
		gs := mustState(t, st)
		if gs.TotalTaps != 3 || gs.BlueScore != 0 || gs.RedScore != 3 || gs.ActiveUsers != 1 {
			t.Fatalf("after kick: %+v", gs)
		}
		if _, err := st.User(ctx, a.ID); !errors.Is(err, game.ErrUnknownPlayer) {
			t.Fatalf("kicked player still known: %v", err)
		}
		if ok, _ := st.IsKicked(ctx, a.ID); !ok {
			t.Fatal("not in the kicked set")
		}
		if rec, ok, err := st.Kicked(ctx, a.ID); err != nil || !ok || rec.RemovedTaps != 7 || rec.KickedAt != 1234 || rec.User.TapCount != 7 {
			t.Fatalf("kick record %+v %v %v", rec, ok, err)
		}
		// Their taps still waiting in Kafka are skipped (as a kicked player's, not
		// an unknown one's); a repeated kick changes nothing.
		if r := applySteps(t, st, 0, 5, 7, game.Step{Taps: []game.PlayerTaps{{UserID: a.ID, Count: 5}}},
			factAt(6, game.Fact{Type: game.FactKick, UserID: a.ID, At: 9999})); r.Applied != 0 || r.Unknown != 0 || r.Kicked != 5 {
			t.Fatalf("taps after the kick: %+v", r)
		}
		if rec, _, _ := st.Kicked(ctx, a.ID); rec.KickedAt != 1234 {
			t.Fatalf("a repeated kick changed the record: %+v", rec)
		}

		// A kick logged before a reset marker, applied after another
		// partition started the new round: it removes the same taps as when
		// applied before the reset.
		if _, err := st.Reset(ctx, 1, time.Now()); err != nil {
			t.Fatal(err)
		}
		applySteps(t, st, 0, 7, 8, factAt(7, game.Fact{Type: game.FactKick, UserID: b.ID, At: 2000}))
		if rec, ok, _ := st.Kicked(ctx, b.ID); !ok || rec.RemovedTaps != 3 || rec.User.TapCount != 3 {
			t.Fatalf("kick one round behind: %+v", rec)
		}
		if gs := mustState(t, st); gs.TotalTaps != 0 || gs.RedScore != 0 {
			t.Fatalf("a kick behind the round changed the new round's scores: %+v", gs)
		}
	})
}

func TestExportImportRoundTrip(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store, rdb *redis.Client) {
		ctx := context.Background()
		var players []game.User
		var joins []game.Step
		for i := range 6 {
			u := game.User{ID: fmt.Sprintf("p%d", i), Username: fmt.Sprintf("p%d", i), Team: []game.Team{game.Blue, game.Red}[i%2], JoinedAt: int64(i), SessionID: "s"}
			players = append(players, u)
			joins = append(joins, logJoin(int64(i), u))
		}
		applySteps(t, st, 0, 0, 6, joins...)
		applyAt(t, st, 0, 6, 10, game.PlayerTaps{UserID: players[0].ID, Count: 5}, game.PlayerTaps{UserID: players[1].ID, Count: 2})
		applyAt(t, st, 1, 0, 4, game.PlayerTaps{UserID: players[2].ID, Count: 9})
		applySteps(t, st, 0, 10, 11, factAt(10, game.Fact{Type: game.FactKick, UserID: players[5].ID, At: 77}))
		ex, err := st.Export(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(ex)
		back, err := store.ParseExport(raw)
		if err != nil {
			t.Fatalf("an export does not parse: %v\n%s", err, raw)
		}
		if len(back.Players) != 5 || back.TotalTaps != 16 || len(back.Kicked) != 1 || back.Offsets["game-taps/0"] != 11 {
			t.Fatalf("export: %+v", back)
		}

		// The game goes on and changes; then the export is imported as the
		// log carries it: markers on each partition, then its records.
		applyAt(t, st, 0, 11, 15, game.PlayerTaps{UserID: players[3].ID, Count: 50})
		stranger := game.User{ID: "stranger", Username: "stranger", Team: game.Blue, JoinedAt: 1, SessionID: "s"}
		applySteps(t, st, 1, 4, 5, logJoin(4, stranger))
		if _, err := st.Reset(ctx, 1, time.Now()); err != nil {
			t.Fatal(err)
		}
		steps := []game.Step{factAt(15, game.Fact{Type: game.FactImport, Round: 2})}
		for i, u := range back.Players {
			steps = append(steps, factAt(int64(16+i), game.Fact{Type: game.FactPlayer, User: &u}))
		}
		k := back.Kicked[0]
		steps = append(steps, factAt(30, game.Fact{Type: game.FactKicked, User: &k.User, At: k.KickedAt, RemovedTaps: k.RemovedTaps}))
		applySteps(t, st, 0, 15, 31, steps...)
		// Partition 1: a join logged before its import marker is dropped,
		// its taps before the marker are of the old round.
		late := game.User{ID: "late", Username: "late", Team: game.Red, JoinedAt: 1, SessionID: "s"}
		if r := applySteps(t, st, 1, 5, 8, logJoin(5, late), game.Step{Taps: []game.PlayerTaps{{UserID: players[2].ID, Count: 4}}},
			factAt(7, game.Fact{Type: game.FactImport, Round: 2})); r.Applied != 0 || r.OldRound != 4 {
			t.Fatalf("partition 1 up to its marker: %+v", r)
		}
		again, err := st.Export(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(again.Players) != fmt.Sprint(back.Players) || fmt.Sprint(again.Kicked) != fmt.Sprint(back.Kicked) ||
			again.BlueScore != back.BlueScore || again.RedScore != back.RedScore || again.TotalTaps != back.TotalTaps || again.Round != 2 {
			t.Fatalf("import did not restore the export:\n%+v\n%+v", again, back)
		}
		// The leaderboard is rebuilt, the stranger is gone from users and presence.
		snap, _ := st.Snapshot(ctx, 10, time.Now())
		if len(snap.Leaderboard) != 3 || snap.Leaderboard[0].ID != players[2].ID || snap.Leaderboard[0].TapCount != 9 {
			t.Fatalf("leaderboard %+v", snap.Leaderboard)
		}
		for _, id := range []string{stranger.ID, late.ID} {
			if _, err := st.User(ctx, id); !errors.Is(err, game.ErrUnknownPlayer) {
				t.Fatalf("%s survived the import: %v", id, err)
			}
		}
		for _, key := range []string{store.KeyOnlineBlue, store.KeyOnlineRed} {
			if _, err := rdb.ZScore(ctx, key, stranger.ID).Result(); err == nil {
				t.Fatalf("stranger still online in %s", key)
			}
		}
		// Taps after the import count on top of the imported counts.
		if r := applyAt(t, st, 1, 8, 9, game.PlayerTaps{UserID: players[2].ID, Count: 1}); r.Status != game.Applied || r.Applied != 1 {
			t.Fatalf("apply after import: %+v", r)
		}
		if u, _ := st.User(ctx, players[2].ID); u.TapCount != 10 {
			t.Fatalf("count after import and a tap: %+v", u)
		}
	})
}

func TestParseExportRefusesBadFiles(t *testing.T) {
	good := func() map[string]any {
		return map[string]any{
			"format": "tapwars-export", "version": 1, "round": 3, "blueScore": 5, "redScore": 2, "totalTaps": 7,
			"players": []any{
				map[string]any{"id": "a1", "username": "ann", "team": "blue", "joinedAt": 1, "sessionId": "s", "tapCount": 5},
				map[string]any{"id": "b2", "username": "Zoë B.", "team": "red", "joinedAt": 2, "sessionId": "t", "tapCount": 2},
			},
			"kicked": []any{}, "roundStarts": map[string]any{}, "offsets": map[string]any{},
		}
	}
	enc := func(m map[string]any) []byte { b, _ := json.Marshal(m); return b }
	if _, err := store.ParseExport(enc(good())); err != nil {
		t.Fatalf("good file refused: %v", err)
	}
	largest := good()
	largest["round"] = int64(game.MaxCount)
	if _, err := store.ParseExport(enc(largest)); err != nil {
		t.Fatalf("the largest legal round refused: %v", err)
	}
	player := func(m map[string]any, i int) map[string]any { return m["players"].([]any)[i].(map[string]any) }
	cases := []struct {
		name string
		edit func(m map[string]any)
		raw  string
		want string
	}{
		{name: "not json", raw: "{nope", want: "not valid JSON"},
		{name: "empty", raw: "", want: "empty"},
		{name: "two documents", raw: string(enc(good())) + "{}", want: "more than one"},
		{name: "array", raw: "[]", want: "must be a JSON object"},
		{name: "other format", edit: func(m map[string]any) { m["format"] = "something" }, want: "format must be"},
		{name: "version", edit: func(m map[string]any) { m["version"] = 2 }, want: "version 2"},
		{name: "unknown field", edit: func(m map[string]any) { m["bonus"] = 1 }, want: "unknown field"},
		{name: "bad name", edit: func(m map[string]any) { player(m, 0)["username"] = "\u3164" }, want: "username"},
		{name: "look-alike name", edit: func(m map[string]any) { player(m, 0)["username"] = "аdmin" }, want: "mixes alphabets"},
		{name: "count over 2^53", edit: func(m map[string]any) {
			player(m, 0)["tapCount"] = int64(math.MaxInt64 - 1)
			m["blueScore"] = int64(math.MaxInt64 - 1)
		}, want: "from 0 to 1000000000000000"},
		{name: "round over 2^53", edit: func(m map[string]any) { m["round"] = int64(1) << 62 }, want: "round is"},
		{name: "round 2^53", edit: func(m map[string]any) { m["round"] = int64(1) << 53 }, want: "round is 9007199254740992: it must be a whole number from 0 to 1000000000000000"},
		{name: "round 10^15 + 1", edit: func(m map[string]any) { m["round"] = int64(1e15) + 1 }, want: "round is"},
		{name: "offset 2^53", edit: func(m map[string]any) { m["offsets"] = map[string]any{"game-taps/0": int64(1) << 53} }, want: "offsets[game-taps/0] is"},
		{name: "a round's score 2^53", edit: func(m map[string]any) {
			m["rounds"] = []any{map[string]any{"round": 1, "blue": int64(1) << 53, "red": 0, "winner": "blue"}}
		}, want: "rounds[0].blue is"},
		{name: "names that look the same", edit: func(m map[string]any) { player(m, 1)["username"] = "ANN" }, want: `players[1]: username "ANN" is taken by players[0] ("ann")`},
		{name: "bad session id", edit: func(m map[string]any) { player(m, 0)["sessionId"] = "<x>" }, want: "sessionId"},
		{name: "bad offset field", edit: func(m map[string]any) { m["offsets"] = map[string]any{"other/0": 1} }, want: "not a partition"},
		{name: "unknown player field", edit: func(m map[string]any) { player(m, 0)["isAdmin"] = true }, want: "isAdmin"},
		{name: "untrimmed name", edit: func(m map[string]any) { player(m, 0)["username"] = " ann" }, want: "username"},
		{name: "bad team", edit: func(m map[string]any) { player(m, 0)["team"] = "green" }, want: "team must be"},
		{name: "bad id", edit: func(m map[string]any) { player(m, 0)["id"] = "a b" }, want: "id \"a b\""},
		{name: "duplicate id", edit: func(m map[string]any) { player(m, 1)["id"] = "a1"; player(m, 1)["team"] = "blue" }, want: "appears twice"},
		{name: "negative count", edit: func(m map[string]any) {
			player(m, 0)["tapCount"] = -5
			m["blueScore"] = -5
		}, want: "from 0 to"},
		{name: "fractional count", edit: func(m map[string]any) { player(m, 0)["tapCount"] = 1.5 }, want: "whole number"},
		{name: "string count", edit: func(m map[string]any) { player(m, 0)["tapCount"] = "5" }, want: "whole number"},
		{name: "team sum", edit: func(m map[string]any) { m["blueScore"] = 6; m["totalTaps"] = 8 }, want: "blueScore is 6"},
		{name: "red sum", edit: func(m map[string]any) { m["redScore"] = 1; m["totalTaps"] = 6 }, want: "redScore is 1"},
		{name: "total", edit: func(m map[string]any) { m["totalTaps"] = 8 }, want: "totalTaps is 8"},
		{name: "negative round", edit: func(m map[string]any) { m["round"] = -1 }, want: "round is -1"},
		{name: "kicked twice", edit: func(m map[string]any) {
			m["kicked"] = []any{map[string]any{"user": player(m, 0), "kickedAt": 1, "removedTaps": 0}}
		}, want: "both a player and kicked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(tc.raw)
			if tc.edit != nil {
				m := good()
				tc.edit(m)
				raw = enc(m)
			}
			_, err := store.ParseExport(raw)
			if game.ErrorCode(err) != game.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an ImportError containing %q", err, tc.want)
			}
		})
	}
}

func TestOverviewAndTapRate(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store, rdb *redis.Client) {
		ctx := context.Background()
		a, _ := st.Join(ctx, "alice", time.Now())
		now := time.Now().Truncate(time.Second)
		// Applied taps land in the second of the batch, in the same script.
		b := game.Batch{Topic: "game-taps", Partition: 0, From: 0, Next: 3, Start: true, Now: now.Add(-2 * time.Second).UnixMilli(),
			Taps: []game.PlayerTaps{{UserID: a.ID, Count: 6}}}
		if r, err := st.Apply(ctx, b); err != nil || r.Status != game.Applied {
			t.Fatalf("apply: %+v %v", r, err)
		}
		if r, _ := st.Apply(ctx, b); r.Status != game.Duplicate { // not recorded again
			t.Fatalf("duplicate: %+v", r)
		}
		seed := func(at time.Time, n int64) { // older history, as earlier batches left it
			rdb.HIncrBy(ctx, store.KeyRatePrefix+fmt.Sprint(at.Unix()/60), fmt.Sprint(at.Unix()), n)
		}
		seed(now.Add(-14*time.Minute), 4)
		seed(now.Add(-20*time.Minute), 99) // outside the window
		ov, err := st.Overview(ctx, "game-taps", now, 15*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(ov.Rate) != 900 || ov.Rate[899-1] != 6 || ov.Rate[900-14*60] != 4 {
			t.Fatalf("rate: len %d, [-2s]=%d, [-14m]=%d", len(ov.Rate), ov.Rate[898], ov.Rate[900-14*60])
		}
		var sum int64
		for _, n := range ov.Rate {
			sum += n
		}
		if sum != 10 {
			t.Fatalf("rate sums to %d, want 10", sum)
		}
		if ov.TotalTaps != 6 || ov.Players != 1 || ov.Offsets[0] != 3 || ov.BlueOnline+ov.RedOnline != 1 {
			t.Fatalf("overview %+v", ov)
		}
		// Rate keys expire by themselves.
		ttl, _ := rdb.TTL(ctx, store.KeyRatePrefix+fmt.Sprint(now.Add(-2*time.Second).Unix()/60)).Result()
		if ttl <= 0 || ttl > store.RateKeep+time.Minute {
			t.Fatalf("rate key ttl %v", ttl)
		}
	})
}

// BenchmarkReset measures the reset script with players registered, of
// whom active tapped this round (the reset rewrites the active ones).
func BenchmarkReset(b *testing.B) {
	for _, size := range [][2]int{{1_000, 1_000}, {10_000, 10_000}, {100_000, 1_000}, {100_000, 100_000}} {
		players, active := size[0], size[1]
		b.Run(fmt.Sprintf("players=%d/active=%d", players, active), func(b *testing.B) {
			r := testenv.StartRedis(b)
			c := r.Client()
			st := store.New(c)
			ctx := context.Background()
			users := map[string]any{}
			taps := make([]game.PlayerTaps, 0, active)
			for i := range players {
				id := fmt.Sprintf("%032x", i)
				users[id] = fmt.Sprintf(`{"id":"%s","username":"p%d","team":"blue","joinedAt":1,"sessionId":"s","tapCount":0}`, id, i)
				if i < active {
					taps = append(taps, game.PlayerTaps{UserID: id, Count: 3})
				}
			}
			if err := c.HSet(ctx, store.KeyUsers, users).Err(); err != nil {
				b.Fatal(err)
			}
			c.Set(ctx, store.KeyRound, 1, 0) // not the first reset
			var off int64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				round := int64(i + 2)
				mark := game.Fact{Type: game.FactRound, Round: round - 1}
				res, err := st.Apply(ctx, game.Batch{Topic: "game-taps", Partition: 0, From: off, Next: off + 2, Start: true,
					Steps: []game.Step{{Fact: &mark, Offset: off}, {Taps: taps}}, Now: 1})
				if err != nil || res.Status != game.Applied {
					b.Fatalf("apply: %+v %v", res, err)
				}
				off += 2
				b.StartTimer()
				res2, err := st.Reset(ctx, round, time.Now())
				if err != nil || res2.Zeroed != int64(active) {
					b.Fatalf("reset: %+v %v", res2, err)
				}
			}
		})
	}
}

// BenchmarkIsKicked is the cost of asking Redis about the kicked set on
// every tap (the alternative to the handlers' in-memory set).
func BenchmarkIsKicked(b *testing.B) {
	r := testenv.StartRedis(b)
	st := store.New(r.Client())
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := st.IsKicked(ctx, "some-player-id"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

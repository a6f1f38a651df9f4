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

func applyAt(t *testing.T, st *store.Store, p int32, from, next, seen int64, taps ...game.PlayerTaps) game.ApplyResult {
	t.Helper()
	res, err := st.Apply(context.Background(), game.Batch{Topic: "game-taps", Partition: p, From: from, Next: next, Seen: seen, Taps: taps, Now: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

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
		applyAt(t, st, 0, 0, 10, -1, game.PlayerTaps{UserID: a.ID, Count: 7}, game.PlayerTaps{UserID: b.ID, Count: 3})
		applyAt(t, st, 1, 0, 5, -1, game.PlayerTaps{UserID: "old", Count: 4})
		if gs := mustState(t, st); gs.TotalTaps != 14 {
			t.Fatalf("before reset: %+v", gs)
		}
		sub, cancel := context.WithCancel(ctx)
		defer cancel()
		changes := st.Subscribe(sub)
		<-changes // the signal after subscribing

		res, err := st.Reset(ctx, "game-taps", map[int32]int64{0: 12, 1: 5, 2: 0}, time.Now())
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
		// Offsets are untouched; round starts are set.
		offs, _ := st.Offsets(ctx, "game-taps", []int32{0, 1, 2})
		if offs[0] != 10 || offs[1] != 5 || len(offs) != 2 {
			t.Fatalf("offsets changed: %v", offs)
		}
		for p, want := range map[int32]int64{0: 12, 1: 5, 2: 0, 3: -1} {
			if rs, _ := st.RoundStart(ctx, "game-taps", p); rs != want {
				t.Fatalf("round start %d = %d, want %d", p, rs, want)
			}
		}
		// A batch filtered with the old round start is refused; refiltered it counts.
		if r := applyAt(t, st, 0, 10, 15, -1, game.PlayerTaps{UserID: a.ID, Count: 5}); r.Status != game.NewRound || r.RoundStart != 12 {
			t.Fatalf("stale batch: %+v", r)
		}
		if r := applyAt(t, st, 0, 10, 15, 12, game.PlayerTaps{UserID: a.ID, Count: 3}); r.Status != game.Applied {
			t.Fatalf("refiltered batch: %+v", r)
		}
		if u, _ := st.User(ctx, a.ID); u.TapCount != 3 {
			t.Fatalf("alice after the new round's taps: %+v", u)
		}

		// Round starts never move back; the round number goes on.
		res, err = st.Reset(ctx, "game-taps", map[int32]int64{0: 3, 1: 9}, time.Now())
		if err != nil || res.Round != 2 || res.Zeroed != 1 { // only alice tapped in round 1
			t.Fatalf("second reset: %+v %v", res, err)
		}
		for p, want := range map[int32]int64{0: 12, 1: 9} {
			if rs, _ := st.RoundStart(ctx, "game-taps", p); rs != want {
				t.Fatalf("round start %d = %d after a reset with a lower offset, want %d", p, rs, want)
			}
		}
		if gs := mustState(t, st); gs.TotalTaps != 0 || gs.Round != 2 {
			t.Fatalf("after second reset: %+v", gs)
		}
	})
}

func TestKickRemovesThePlayerAndTheirTaps(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store, rdb *redis.Client) {
		ctx := context.Background()
		a, _ := st.Join(ctx, "alice", time.Now())
		b, _ := st.Join(ctx, "bob", time.Now())
		applyAt(t, st, 0, 0, 2, -1, game.PlayerTaps{UserID: a.ID, Count: 7}, game.PlayerTaps{UserID: b.ID, Count: 3})
		sub, cancel := context.WithCancel(ctx)
		defer cancel()
		admin := st.SubscribeAdmin(sub)
		<-admin

		removed, err := st.Kick(ctx, a.ID, time.UnixMilli(1234))
		if err != nil || removed != 7 {
			t.Fatalf("kick: %d %v", removed, err)
		}
		select {
		case <-admin:
		case <-time.After(5 * time.Second):
			t.Fatal("kick published nothing on game:admin")
		}
		gs := mustState(t, st)
		want := map[game.Team]int64{b.Team: 3}
		if gs.TotalTaps != 3 || gs.BlueScore != want[game.Blue] || gs.RedScore != want[game.Red] || gs.ActiveUsers != 1 {
			t.Fatalf("after kick: %+v", gs)
		}
		if _, err := st.User(ctx, a.ID); !errors.Is(err, game.ErrUnknownPlayer) {
			t.Fatalf("kicked player still known: %v", err)
		}
		if ok, _ := st.IsKicked(ctx, a.ID); !ok {
			t.Fatal("not in the kicked set")
		}
		ids, _ := st.KickedIDs(ctx)
		if len(ids) != 1 || ids[0] != a.ID {
			t.Fatalf("kicked ids %v", ids)
		}
		// Their taps still waiting in Kafka are skipped.
		if r := applyAt(t, st, 0, 2, 3, -1, game.PlayerTaps{UserID: a.ID, Count: 5}); r.Applied != 0 || r.Unknown != 5 {
			t.Fatalf("taps after the kick: %+v", r)
		}
		if _, err := st.Kick(ctx, a.ID, time.Now()); !errors.Is(err, store.ErrAlreadyKicked) {
			t.Fatalf("second kick: %v", err)
		}
		if _, err := st.Kick(ctx, "nobody", time.Now()); !errors.Is(err, game.ErrUnknownPlayer) {
			t.Fatalf("kick of nobody: %v", err)
		}
		ex, err := st.Export(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(ex.Kicked) != 1 || ex.Kicked[0].User.Username != "alice" || ex.Kicked[0].KickedAt != 1234 || ex.Kicked[0].RemovedTaps != 7 {
			t.Fatalf("export of the kick: %+v", ex.Kicked)
		}
	})
}

func TestExportImportRoundTrip(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store, rdb *redis.Client) {
		ctx := context.Background()
		var players []game.User
		for i := range 6 {
			u, _ := st.Join(ctx, fmt.Sprintf("p%d", i), time.Now())
			players = append(players, u)
		}
		applyAt(t, st, 0, 0, 4, -1, game.PlayerTaps{UserID: players[0].ID, Count: 5}, game.PlayerTaps{UserID: players[1].ID, Count: 2})
		applyAt(t, st, 1, 0, 4, -1, game.PlayerTaps{UserID: players[2].ID, Count: 9})
		if _, err := st.Kick(ctx, players[5].ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		ex, err := st.Export(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(ex)
		back, err := store.ParseExport(raw)
		if err != nil {
			t.Fatalf("an export does not parse: %v\n%s", err, raw)
		}
		if len(back.Players) != 5 || back.TotalTaps != 16 || len(back.Kicked) != 1 || back.Offsets["game-taps/0"] != 4 {
			t.Fatalf("export: %+v", back)
		}

		// The game goes on and changes; then the export is restored.
		applyAt(t, st, 0, 4, 8, -1, game.PlayerTaps{UserID: players[3].ID, Count: 50})
		stranger, _ := st.Join(ctx, "stranger", time.Now())
		if _, err := st.Reset(ctx, "game-taps", map[int32]int64{0: 8}, time.Now()); err != nil {
			t.Fatal(err)
		}
		round, err := st.Import(ctx, back, "game-taps", map[int32]int64{0: 20, 1: 6}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if round != 2 { // max(current 1 + 1, file's 0)
			t.Fatalf("round after import %d", round)
		}
		again, err := st.Export(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(again.Players) != fmt.Sprint(back.Players) || fmt.Sprint(again.Kicked) != fmt.Sprint(back.Kicked) ||
			again.BlueScore != back.BlueScore || again.RedScore != back.RedScore || again.TotalTaps != back.TotalTaps {
			t.Fatalf("import did not restore the export:\n%+v\n%+v", again, back)
		}
		// Offsets untouched, round starts moved forward only.
		if again.Offsets["game-taps/0"] != 8 || again.RoundStarts["game-taps/0"] != 20 || again.RoundStarts["game-taps/1"] != 6 {
			t.Fatalf("offsets %v round starts %v", again.Offsets, again.RoundStarts)
		}
		// The leaderboard is rebuilt, the stranger is gone from users and presence.
		snap, _ := st.Snapshot(ctx, 10, time.Now())
		if len(snap.Leaderboard) != 3 || snap.Leaderboard[0].ID != players[2].ID || snap.Leaderboard[0].TapCount != 9 {
			t.Fatalf("leaderboard %+v", snap.Leaderboard)
		}
		if _, err := st.User(ctx, stranger.ID); !errors.Is(err, game.ErrUnknownPlayer) {
			t.Fatalf("stranger survived the import: %v", err)
		}
		for _, key := range []string{store.KeyOnlineBlue, store.KeyOnlineRed} {
			if _, err := rdb.ZScore(ctx, key, stranger.ID).Result(); err == nil {
				t.Fatalf("stranger still online in %s", key)
			}
		}
		// Taps after the import count on top of the imported counts.
		if r := applyAt(t, st, 1, 4, 7, 6, game.PlayerTaps{UserID: players[2].ID, Count: 1}); r.Status != game.Applied {
			t.Fatalf("apply after import: %+v", r)
		}
		if u, _ := st.User(ctx, players[2].ID); u.TapCount != 10 {
			t.Fatalf("count after import and a tap: %+v", u)
		}
	})
}

func TestImportMovesPlayersBetweenTeamsInPresence(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store, rdb *redis.Client) {
		ctx := context.Background()
		a, _ := st.Join(ctx, "alice", time.Now())
		ex, _ := st.Export(ctx, time.Now())
		other := game.Red
		if a.Team == game.Red {
			other = game.Blue
		}
		ex.Players[0].Team = other
		if _, err := st.Import(ctx, ex, "game-taps", nil, time.Now()); err != nil {
			t.Fatal(err)
		}
		gs := mustState(t, st)
		if (other == game.Blue && gs.BlueOnline != 1) || (other == game.Red && gs.RedOnline != 1) || gs.ActiveUsers != 1 {
			t.Fatalf("presence after a team change: %+v", gs)
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
		}, want: "from 0 to 9007199254740992"},
		{name: "round over 2^53", edit: func(m map[string]any) { m["round"] = int64(1) << 62 }, want: "round is"},
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
		b := game.Batch{Topic: "game-taps", Partition: 0, From: 0, Next: 3, Seen: -1, Now: now.Add(-2 * time.Second).UnixMilli(),
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
				rs, _ := st.RoundStart(ctx, "game-taps", 0)
				res, err := st.Apply(ctx, game.Batch{Topic: "game-taps", Partition: 0, From: off, Next: off + 1, Seen: rs, Taps: taps, Now: 1})
				if err != nil || res.Status != game.Applied {
					b.Fatalf("apply: %+v %v", res, err)
				}
				off++
				b.StartTimer()
				res2, err := st.Reset(ctx, "game-taps", map[int32]int64{0: off}, time.Now())
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

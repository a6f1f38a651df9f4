package store

// The operator's side of the store: new rounds (reset), backup and restore
// (export/import), kicking players, the taps-per-second history and the
// numbers of the admin page. Every change is one Lua script, so that the
// consumer's apply script never sees half of it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/game"
)

// RateKeep is how long per-second tap counts are kept.
const RateKeep = 20 * time.Minute

// ExportFormat and ExportVersion identify an export file.
const (
	ExportFormat  = "tapwars-export"
	ExportVersion = 1
)

// MaxImportPlayers bounds the players of an import file.
const MaxImportPlayers = 1_000_000

func rateKey(unixSec int64) string { return KeyRatePrefix + strconv.FormatInt(unixSec/60, 10) }

// Overview is what the admin page shows, read in one round trip.
type Overview struct {
	Round       int64           `json:"round"`
	BlueScore   int64           `json:"blueScore"`
	RedScore    int64           `json:"redScore"`
	TotalTaps   int64           `json:"totalTaps"`
	Players     int64           `json:"players"`
	Kicked      int64           `json:"kicked"`
	BlueOnline  int64           `json:"blueOnline"`
	RedOnline   int64           `json:"redOnline"`
	LastUpdated int64           `json:"lastUpdated"`
	Offsets     map[int32]int64 `json:"offsets"`     // next offset to apply, per partition
	RoundStarts map[int32]int64 `json:"roundStarts"` // first offset of this round, per partition
	// Rate holds taps applied per second, oldest first; the last entry is
	// the second before RateEnd.
	Rate    []int64 `json:"rate"`
	RateEnd int64   `json:"rateEnd"` // unix seconds
}

// Overview reads totals, players, presence, offsets, round starts and the
// per-second tap history of the last window (whole seconds before now).
func (s *Store) Overview(ctx context.Context, topic string, now time.Time, window time.Duration) (Overview, error) {
	secs := int64(window / time.Second)
	if secs <= 0 {
		secs = 900
	}
	end := now.Unix() // exclusive: the current second is still filling
	first := end - secs
	stale := strconv.FormatInt(now.Add(-s.window).UnixMilli(), 10)
	var (
		vals            *redis.SliceCmd
		players, kicked *redis.IntCmd
		blueN, redN     *redis.IntCmd
		offsets, starts *redis.MapStringStringCmd
		rates           []*redis.MapStringStringCmd
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		vals = p.MGet(ctx, KeyBlueScore, KeyRedScore, KeyTotalTaps, KeyRound, KeyUpdatedAt)
		players = p.HLen(ctx, KeyUsers)
		kicked = p.HLen(ctx, KeyKicked)
		blueN = p.ZCount(ctx, KeyOnlineBlue, stale, "+inf")
		redN = p.ZCount(ctx, KeyOnlineRed, stale, "+inf")
		offsets = p.HGetAll(ctx, KeyOffsets)
		starts = p.HGetAll(ctx, KeyRoundStarts)
		for m := first / 60; m <= (end-1)/60; m++ {
			rates = append(rates, p.HGetAll(ctx, KeyRatePrefix+strconv.FormatInt(m, 10)))
		}
		return nil
	})
	if err != nil {
		return Overview{}, fmt.Errorf("read admin overview: %w", err)
	}
	v := vals.Val()
	o := Overview{
		BlueScore: atoi(v[0]), RedScore: atoi(v[1]), TotalTaps: atoi(v[2]), Round: atoi(v[3]), LastUpdated: atoi(v[4]),
		Players: players.Val(), Kicked: kicked.Val(), BlueOnline: blueN.Val(), RedOnline: redN.Val(),
		Offsets: partitionMap(topic, offsets.Val()), RoundStarts: partitionMap(topic, starts.Val()),
		Rate: make([]int64, secs), RateEnd: end,
	}
	for _, r := range rates {
		for f, n := range r.Val() {
			sec, err := strconv.ParseInt(f, 10, 64)
			if err != nil || sec < first || sec >= end {
				continue
			}
			o.Rate[sec-first], _ = strconv.ParseInt(n, 10, 64)
		}
	}
	return o, nil
}

// partitionMap turns "topic/partition" fields into partition -> number.
func partitionMap(topic string, m map[string]string) map[int32]int64 {
	out := make(map[int32]int64, len(m))
	for f, v := range m {
		ps, ok := strings.CutPrefix(f, topic+"/")
		if !ok {
			continue
		}
		p, err := strconv.ParseInt(ps, 10, 32)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		out[int32(p)] = n
	}
	return out
}

// resetScript starts round ARGV[1] at once if it is ahead of the current
// one (see lua/new_round.lua), so every page shows zero without waiting for the
// consumer to reach the round's markers in the log; applying the markers
// later changes nothing more. Then every instance is told.
//
// KEYS: see lua/reset.lua's first line. ARGV: round, now, schedule (JSON; empty in open play).
// Returns {round, players whose tapCount was reset (-1: the round had started)}.
var resetScript = newLuaScript("reset.lua", "new_round.lua")

// ResetResult says what a reset did.
type ResetResult struct {
	Round  int64 `json:"round"`  // the new round
	Zeroed int64 `json:"zeroed"` // players whose count went back to 0
}

// Reset starts round at once in the projection: team scores and the total
// go to zero, the leaderboard is emptied and the tapCount of every player
// who tapped this round is set to 0; players, teams and presence stay. The
// round's markers must have been logged on every partition before (see
// stream.Facts.Round): taps before a partition's marker are skipped by the
// consumer, so taps accepted before the reset never count in the new round.
// A round that is not ahead of the current one changes nothing.
func (s *Store) Reset(ctx context.Context, round int64, now time.Time) (ResetResult, error) {
	return s.StartRound(ctx, game.RoundSchedule{Number: round, Mode: game.ModeOpen}, now)
}

// StartRound is Reset for a round of either mode: a timed round's schedule
// becomes the current one with it.
func (s *Store) StartRound(ctx context.Context, sc game.RoundSchedule, now time.Time) (ResetResult, error) {
	sched := ""
	if sc.Timed() {
		raw, err := json.Marshal(sc)
		if err != nil {
			return ResetResult{}, fmt.Errorf("encode schedule: %w", err)
		}
		sched = string(raw)
	}
	res, err := resetScript.Run(ctx, s.rdb, resetScript.Keys(now.UnixMilli()), sc.Number, now.UnixMilli(), sched).Int64Slice()
	if err != nil {
		return ResetResult{}, fmt.Errorf("reset: %w", err)
	}
	return ResetResult{Round: res[0], Zeroed: max(res[1], 0)}, nil
}

// Round is the current round (0 before any reset).
func (s *Store) Round(ctx context.Context) (int64, error) {
	n, err := s.rdb.Get(ctx, KeyRound).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read round: %w", err)
	}
	return n, nil
}

// ErrAlreadyKicked is returned when kicking a player who was kicked before.
var ErrAlreadyKicked = game.Errorf(game.ECONFLICT, "That player was already kicked.")

// ErrNotApplied is returned when a change (a kick, an import) is logged,
// so it is safe and will happen, but the consumer has not applied it yet.
// A logged kick is in force at once: the player's token is refused.
var ErrNotApplied = errors.New("the change is logged; it shows when the consumer applies it")

// PendKick records a kick until the consumer applies it, and tells every
// instance to refuse the player's token; it returns the kick epoch the
// instances switch to once they do (ledger.RoundView).
func (s *Store) PendKick(ctx context.Context, id string, at time.Time) (epoch int64, err error) {
	var incr *redis.IntCmd
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, KeyKickPending, id, at.UnixMilli())
		incr = p.Incr(ctx, KeyKickEpoch)
		p.Publish(ctx, ChannelAdmin, "kick")
		p.Publish(ctx, ChannelRounds, "kick")
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("record kick of %s: %w", id, err)
	}
	return incr.Val(), nil
}

// UnpendKick withdraws a kick that could not be logged: the player may
// play on.
func (s *Store) UnpendKick(ctx context.Context, id string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, KeyKickPending, id)
		p.Publish(ctx, ChannelAdmin, "kick")
		return nil
	})
	if err != nil {
		return fmt.Errorf("withdraw kick of %s: %w", id, err)
	}
	return nil
}

// Kicked returns the kick record of a player, or ok false if they were not
// kicked (or their kick is not applied yet).
func (s *Store) Kicked(ctx context.Context, id string) (rec KickRecord, ok bool, err error) {
	raw, err := s.rdb.HGet(ctx, KeyKicked, id).Bytes()
	if errors.Is(err, redis.Nil) {
		return KickRecord{}, false, nil
	}
	if err != nil {
		return KickRecord{}, false, fmt.Errorf("read kick record %s: %w", id, err)
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return KickRecord{}, false, fmt.Errorf("kick record %s is damaged: %w", id, err)
	}
	return rec, true, nil
}

// Forget removes a player whose join could not be logged (the request
// failed, so nobody holds their token), so the projection keeps only
// players the log knows.
func (s *Store) Forget(ctx context.Context, u game.User) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, KeyUsers, u.ID)
		p.ZRem(ctx, KeyOnlineBlue, u.ID)
		p.ZRem(ctx, KeyOnlineRed, u.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("forget player %s: %w", u.ID, err)
	}
	return nil
}

// KickedIDs returns the ids of every kicked player, including kicks logged
// but not applied yet.
func (s *Store) KickedIDs(ctx context.Context) ([]string, error) {
	var kicked, pending *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		kicked = p.HKeys(ctx, KeyKicked)
		pending = p.HKeys(ctx, KeyKickPending)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read kicked players: %w", err)
	}
	return append(kicked.Val(), pending.Val()...), nil
}

// IsKicked reports whether a player was kicked (one Redis round trip).
func (s *Store) IsKicked(ctx context.Context, id string) (bool, error) {
	ok, err := s.rdb.HExists(ctx, KeyKicked, id).Result()
	if err != nil {
		return false, fmt.Errorf("read kicked player: %w", err)
	}
	return ok, nil
}

// SubscribeAdmin signals whenever any instance kicked a player or imported
// a state, and once after each (re)subscription, since messages may have
// been missed meanwhile. Several signals in a row arrive as one. It ends
// when ctx ends.
func (s *Store) SubscribeAdmin(ctx context.Context) <-chan struct{} {
	return s.subscribe(ctx, ChannelAdmin)
}

// Export is the whole game state as a backup file.
//
// Players carry their tapCount of the current round; blueScore and redScore
// are the sums of their players' counts and totalTaps is blueScore +
// redScore. roundStarts and offsets describe where in the Kafka log the
// state was taken; Import does not restore them (see Import).
type Export struct {
	Format      string           `json:"format"`  // "tapwars-export"
	Version     int              `json:"version"` // 1
	ExportedAt  int64            `json:"exportedAt"`
	Round       int64            `json:"round"`
	BlueScore   int64            `json:"blueScore"`
	RedScore    int64            `json:"redScore"`
	TotalTaps   int64            `json:"totalTaps"`
	Players     []game.User      `json:"players"`
	Kicked      []KickRecord     `json:"kicked"`
	RoundStarts map[string]int64 `json:"roundStarts"` // "game-taps/<partition>" -> first offset of the round
	Offsets     map[string]int64 `json:"offsets"`     // "game-taps/<partition>" -> next offset to apply
	// Rounds is the history of timed rounds, newest first (absent in
	// files of earlier versions). Import adds the rounds the history lacks.
	Rounds []game.RoundResult `json:"rounds,omitempty"`
}

// KickRecord is a kicked player as kept in game:kicked.
type KickRecord struct {
	User        game.User `json:"user"`
	KickedAt    int64     `json:"kickedAt"`
	RemovedTaps int64     `json:"removedTaps"`
}

// Export reads the whole state at one point in time (MULTI/EXEC).
func (s *Store) Export(ctx context.Context, now time.Time) (Export, error) {
	var (
		users, starts, offsets, kicked, results *redis.MapStringStringCmd
		vals                                    *redis.SliceCmd
	)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		results = p.HGetAll(ctx, KeyRoundResults)
		users = p.HGetAll(ctx, KeyUsers)
		vals = p.MGet(ctx, KeyBlueScore, KeyRedScore, KeyTotalTaps, KeyRound)
		starts = p.HGetAll(ctx, KeyRoundStarts)
		offsets = p.HGetAll(ctx, KeyOffsets)
		kicked = p.HGetAll(ctx, KeyKicked)
		return nil
	})
	if err != nil {
		return Export{}, fmt.Errorf("export: %w", err)
	}
	v := vals.Val()
	ex := Export{
		Format: ExportFormat, Version: ExportVersion, ExportedAt: now.UnixMilli(),
		BlueScore: atoi(v[0]), RedScore: atoi(v[1]), TotalTaps: atoi(v[2]), Round: atoi(v[3]),
		Players: make([]game.User, 0, len(users.Val())), Kicked: []KickRecord{},
		RoundStarts: map[string]int64{}, Offsets: map[string]int64{},
	}
	for id, raw := range users.Val() {
		var u game.User
		if err := json.Unmarshal([]byte(raw), &u); err != nil {
			return Export{}, fmt.Errorf("export: player %s is damaged: %w", id, err)
		}
		u.ID = id
		ex.Players = append(ex.Players, u)
	}
	sort.Slice(ex.Players, func(i, j int) bool {
		a, b := ex.Players[i], ex.Players[j]
		if a.JoinedAt != b.JoinedAt {
			return a.JoinedAt < b.JoinedAt
		}
		return a.ID < b.ID
	})
	for n, raw := range results.Val() {
		var r game.RoundResult
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return Export{}, fmt.Errorf("export: result of round %s is damaged: %w", n, err)
		}
		ex.Rounds = append(ex.Rounds, r)
	}
	sort.Slice(ex.Rounds, func(i, j int) bool { return ex.Rounds[i].Round > ex.Rounds[j].Round })
	for id, raw := range kicked.Val() {
		var k KickRecord
		if err := json.Unmarshal([]byte(raw), &k); err != nil {
			return Export{}, fmt.Errorf("export: kick record %s is damaged: %w", id, err)
		}
		k.User.ID = id
		ex.Kicked = append(ex.Kicked, k)
	}
	sort.Slice(ex.Kicked, func(i, j int) bool { return ex.Kicked[i].User.ID < ex.Kicked[j].User.ID })
	for f, n := range starts.Val() {
		ex.RoundStarts[f] = atoi(n)
	}
	for f, n := range offsets.Val() {
		if !strings.Contains(f, "#") { // "<topic>#id" is the topic's id (topic.go)
			ex.Offsets[f] = atoi(n)
		}
	}
	return ex, nil
}

// importErr says why an import file was refused (nothing was changed).
func importErr(format string, a ...any) error {
	return game.Errorf(game.EINVALID, "import refused: "+format, a...)
}

// ParseExport decodes and validates an export file. Unknown fields, a wrong
// format or version, invalid ids, names or teams, negative counts, duplicate
// players, team scores that are not the sums of their players' counts and a
// total that is not blue + red are refused with a game.EINVALID error
// (importErr) naming the first problem.
func ParseExport(data []byte) (Export, error) {
	var ex Export
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ex); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return Export{}, importErr("the file is not valid JSON (at byte %d: %v)", se.Offset, err)
		case errors.As(err, &te) && te.Field == "":
			return Export{}, importErr("the file must be a JSON object (a tapwars export), not %s", te.Value)
		case errors.As(err, &te):
			return Export{}, importErr("field %q must be %s, not %s", te.Field, JSONKind(te.Type.Kind().String()), te.Value)
		case errors.Is(err, io.EOF):
			return Export{}, importErr("the file is empty")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return Export{}, importErr("the file is not valid JSON (it ends too early: cut off?)")
		}
		return Export{}, importErr("the file is not a tapwars export: %v", err)
	}
	if dec.More() {
		return Export{}, importErr("the file holds more than one JSON document")
	}
	if ex.Format != ExportFormat {
		return Export{}, importErr("format must be %q (got %q): is this a tapwars export?", ExportFormat, ex.Format)
	}
	if ex.Version != ExportVersion {
		return Export{}, importErr("version %d is not supported (this server reads version %d)", ex.Version, ExportVersion)
	}
	if err := inRange("round", ex.Round); err != nil {
		return Export{}, err
	}
	for i, r := range ex.Rounds {
		if r.Round < 1 || r.Blue < 0 || r.Red < 0 || r.Players < 0 || r.Winner != game.Winner(r.Blue, r.Red) {
			return Export{}, importErr("rounds[%d]: a round needs a number from 1, scores from 0 and the winner they give", i)
		}
		for name, n := range map[string]int64{"round": r.Round, "blue": r.Blue, "red": r.Red, "players": r.Players, "startsAt": r.StartsAt, "endsAt": r.EndsAt} {
			if err := inRange(fmt.Sprintf("rounds[%d].%s", i, name), n); err != nil {
				return Export{}, err
			}
		}
		if r.TopTapper != nil {
			if err := inRange(fmt.Sprintf("rounds[%d].topTapper.tapCount", i), r.TopTapper.TapCount); err != nil {
				return Export{}, err
			}
		}
	}
	for name, n := range map[string]int64{"blueScore": ex.BlueScore, "redScore": ex.RedScore, "totalTaps": ex.TotalTaps, "exportedAt": ex.ExportedAt} {
		if err := inRange(name, n); err != nil {
			return Export{}, err
		}
	}
	for what, m := range map[string]map[string]int64{"roundStarts": ex.RoundStarts, "offsets": ex.Offsets} {
		for f, n := range m {
			if !validOffsetField(f) {
				return Export{}, importErr("%s: %q is not a partition of the tap log (want \"%s/<partition>\")", what, f, exportTopic)
			}
			if err := inRange(what+"["+f+"]", n); err != nil {
				return Export{}, err
			}
		}
	}
	if len(ex.Players) > MaxImportPlayers {
		return Export{}, importErr("too many players (%d, limit %d)", len(ex.Players), MaxImportPlayers)
	}
	seen := make(map[string]bool, len(ex.Players)+len(ex.Kicked))
	names := make(map[string]int, len(ex.Players)) // name key -> the player who has it
	var sum = map[game.Team]int64{}
	for i, u := range ex.Players {
		where := fmt.Sprintf("players[%d]", i)
		if err := validUser(u, where); err != nil {
			return Export{}, err
		}
		if seen[u.ID] {
			return Export{}, importErr("%s: player id %q appears twice", where, u.ID)
		}
		seen[u.ID] = true
		for _, key := range game.NameKeys(u.Username) {
			if j, ok := names[key]; ok {
				return Export{}, importErr("%s: username %q is taken by players[%d] (%q) or looks the same: names must differ, rename one", where, u.Username, j, ex.Players[j].Username)
			}
		}
		for _, key := range game.NameKeys(u.Username) {
			names[key] = i
		}
		if err := inRange(where+".tapCount", u.TapCount); err != nil {
			return Export{}, err
		}
		sum[u.Team] += u.TapCount
		if sum[u.Team] > game.MaxCount {
			return Export{}, importErr("%s: the %s team's taps add up to more than %d", where, u.Team, int64(game.MaxCount))
		}
	}
	if sum[game.Blue] != ex.BlueScore {
		return Export{}, importErr("blueScore is %d but blue players' tapCounts add up to %d", ex.BlueScore, sum[game.Blue])
	}
	if sum[game.Red] != ex.RedScore {
		return Export{}, importErr("redScore is %d but red players' tapCounts add up to %d", ex.RedScore, sum[game.Red])
	}
	if ex.TotalTaps != ex.BlueScore+ex.RedScore {
		return Export{}, importErr("totalTaps is %d but blueScore + redScore is %d", ex.TotalTaps, ex.BlueScore+ex.RedScore)
	}
	for i, k := range ex.Kicked {
		where := fmt.Sprintf("kicked[%d]", i)
		if err := validUser(k.User, where); err != nil {
			return Export{}, err
		}
		if seen[k.User.ID] {
			return Export{}, importErr("%s: player id %q is both a player and kicked, or kicked twice", where, k.User.ID)
		}
		seen[k.User.ID] = true
		if err := inRange(where+".kickedAt", k.KickedAt); err != nil {
			return Export{}, err
		}
		if err := inRange(where+".removedTaps", k.RemovedTaps); err != nil {
			return Export{}, err
		}
	}
	return ex, nil
}

func validUser(u game.User, where string) error {
	if !game.ValidID(u.ID) {
		return importErr("%s: id %q must be 1 to %d characters of a-z, A-Z, 0-9, '-' or '_'", where, u.ID, game.MaxIDLen)
	}
	name, err := game.NormalizeName(u.Username)
	if err != nil {
		return importErr("%s: username %q is not valid: %s", where, u.Username, game.ErrorMessage(err))
	}
	if name != u.Username {
		return importErr("%s: username %q is not in its normal form (%q)", where, u.Username, name)
	}
	if !u.Team.Valid() {
		return importErr("%s (%s): team must be \"blue\" or \"red\", not %q", where, u.Username, u.Team)
	}
	if err := inRange(where+".joinedAt", u.JoinedAt); err != nil {
		return err
	}
	if u.SessionID != "" && !game.ValidID(u.SessionID) {
		return importErr("%s (%s): sessionId %q must be 1 to %d characters of a-z, A-Z, 0-9, '-' or '_'", where, u.Username, u.SessionID, game.MaxIDLen)
	}
	return nil
}

// inRange checks a number of an import: 0 to game.MaxCount, far enough
// below 2^53 that Redis' doubles (Lua, the leaderboard) hold it and what
// is added to it exactly.
func inRange(field string, n int64) error {
	if n < 0 || n > game.MaxCount {
		return importErr("%s is %d: it must be a whole number from 0 to %d", field, n, int64(game.MaxCount))
	}
	return nil
}

// exportTopic is the topic whose partitions an export names.
const exportTopic = "game-taps"

// validOffsetField reports whether f is "game-taps/<partition>".
func validOffsetField(f string) bool {
	p, ok := strings.CutPrefix(f, exportTopic+"/")
	n, err := strconv.ParseInt(p, 10, 32)
	return ok && err == nil && n >= 0 && strconv.FormatInt(n, 10) == p
}

// JSONKind names a Go kind as a person reading a JSON error knows it.
func JSONKind(k string) string {
	switch k {
	case "bool":
		return "true or false"
	case "int64", "int", "int32":
		return "a whole number"
	case "string":
		return "a string"
	case "slice":
		return "a list"
	case "map", "struct":
		return "an object"
	}
	return k
}

package store

import (
	"embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/game"
)

// Redis keys: every name the game uses is declared in this file. The first
// four are the Next.js game's, kept as they were.
const (
	KeyUsers       = "game:users"           // hash: id -> user JSON (with tapCount)
	KeyBlueScore   = "game:team:blue:score" // string: blue team's taps
	KeyRedScore    = "game:team:red:score"  // string: red team's taps
	KeyTotalTaps   = "game:total:taps"      // string: all taps
	KeyLeaderboard = "game:leaderboard"     // sorted set: id -> taps this round
	KeyOffsets     = "game:offsets"         // hash: "topic/partition" -> next offset to apply
	KeyOnlineBlue  = "game:online:blue"     // sorted set: id -> last seen (unix ms)
	KeyOnlineRed   = "game:online:red"      // sorted set: id -> last seen (unix ms)
	KeyRound       = "game:round"           // string: current round number (0 before any reset)
	KeyRoundStarts = "game:round:starts"    // hash: "topic/partition" -> first offset of the round
	KeyUpdatedAt   = "game:updated"         // string: unix ms of the last change
	KeyNames       = "game:names"           // hash: name key (game.NameKeys) -> id of the player who took it
	ChannelUpdates = "game:updates"         // pub/sub: a batch was applied or the game changed
)

// Keys of the projection's round bookkeeping (see applyScript).
const (
	// KeyRoundParts: "topic/partition" -> the round of the last round or
	// import marker applied from that partition. Taps of a partition whose
	// round is behind game:round belong to an ended round and are skipped.
	KeyRoundParts = "game:round:parts"
	// KeyImportRound is the round that the last import started (joins and
	// kicks logged before it on a partition not yet past its marker are
	// dropped, as the import replaced them).
	KeyImportRound = "game:round:import"
	// KeyLeaderboardPrev is the previous round's leaderboard, so that a kick
	// logged just before a reset removes the same taps in any replay order.
	KeyLeaderboardPrev = "game:leaderboard:prev"
	// KeyRoundSchedule is the current round's schedule (JSON
	// game.RoundSchedule); absent in open play.
	KeyRoundSchedule = "game:round:schedule"
	// KeyRoundPartSchedules: "topic/partition" -> the schedule of the
	// partition's round (absent: open play), which decides which of the
	// partition's taps count (game.RoundSchedule.Counts).
	KeyRoundPartSchedules = "game:round:parts:schedule"
	// KeyRoundResults: round -> its final result (JSON game.RoundResult);
	// the first result logged for a round stays.
	KeyRoundResults = "game:rounds:results"
	// KeyRounds indexes the results: a sorted set of round numbers.
	KeyRounds = "game:rounds"
	// KeyTeams is how the teams are shown (JSON game.Teams): the last
	// teams fact; absent: game.DefaultTeams.
	KeyTeams = "game:teams"
)

// Keys and channels of the admin features.
const (
	KeyKicked = "game:kicked" // hash: player id -> kick record JSON {"user":{...},"kickedAt":ms,"removedTaps":n}
	// KeyRatePrefix + unix minute is a hash: unix second -> taps applied in
	// that second. Each key expires RateKeep after its minute.
	KeyRatePrefix = "game:tps:"
	// ChannelAdmin tells every instance that players were kicked or the
	// state was imported, so they drop cached players and reload the
	// kicked set.
	ChannelAdmin = "game:admin"
)

// KeyKickPending holds kicks logged but not applied yet (id -> kickedAt):
// every instance refuses their tokens at once; applying the kick from the
// log removes the entry.
const KeyKickPending = "game:kicked:pending"

// Keys and channel of the instances' views of the current round (see
// ledger.RoundView): not part of the projection, each instance writes its
// own entries.
const (
	// KeyRoundViews: instance id -> when its registration ends (Redis
	// time, unix ms). A round is announced to the instances registered.
	KeyRoundViews = "game:round:views"
	// KeyRoundSeen: instance id -> "stamp/kicks": the newest view of the
	// round and of the kicks it has switched to, after every tap judged by
	// an older view was answered.
	KeyRoundSeen = "game:round:seen"
	// KeyKickEpoch counts kicks announced (PendKick): an instance that has
	// seen it change reloads the kicked players before it records the
	// switch, so a kick is logged only once no instance lets the player tap.
	KeyKickEpoch = "game:kicked:epoch"
	// ChannelRounds tells every instance that the current round changed
	// (announced, started, withdrawn), so it reads it at once.
	ChannelRounds = "game:round:changed"
)

// KeyAdminSessionPrefix + a session id marks a signed-in admin session as
// live (expiring with it). The cookie alone is not enough: logging out
// deletes the key, which ends the session on every instance at once. A
// Redis that lost its data signs every operator out (they log in again)
// rather than bringing ended sessions back.
const KeyAdminSessionPrefix = "game:admin:session:"

// KeyPartitions is how the tap log's partitions are used (not part of the
// projection: it is about the log, and survives a rebuild):
//
//   - "base": the partition count when tapwars first saw the topic; ids
//     without a pinned partition are hashed over it, so they never move;
//   - "marked": the partitions [0, marked) carry the current round's marker;
//     new players are pinned among them only.
const KeyPartitions = "game:partitions"

// keyMarkersLock serialises the writers of round markers (resets, rounds,
// imports, marking new partitions), so a partition added while a round
// starts gets that round's marker either way.
const keyMarkersLock = "game:markers:lock"

// A keySpec is one Redis key of the game as the Lua scripts and the
// checkpoint see it. The table below is the only place that says which
// local a script calls a key by, its Redis type and whether a checkpoint
// keeps it: scripts' KEYS lists, their named locals, their type checks and
// the checkpoint's key lists are all built from it.
type keySpec struct {
	Name  string // the Redis key (see its constant)
	Local string // the Lua local a script names it by
	Type  string // what Redis TYPE answers for it: "hash", "zset" or "string"
	// Number: a string holding a whole number, checked before a script's
	// first write.
	Number bool
	// Checkpoint: part of the projection that a replay of the log builds,
	// so a checkpoint keeps it (and a drop deletes it).
	Checkpoint bool
	// PerMinute: Name is a prefix; the key is the one of the call's minute
	// (see rateKey).
	PerMinute bool
}

var keys = []keySpec{
	{Name: KeyUsers, Local: "users", Type: "hash", Checkpoint: true},
	{Name: KeyBlueScore, Local: "blue_score", Type: "string", Number: true, Checkpoint: true},
	{Name: KeyRedScore, Local: "red_score", Type: "string", Number: true, Checkpoint: true},
	{Name: KeyTotalTaps, Local: "total_taps", Type: "string", Number: true, Checkpoint: true},
	{Name: KeyLeaderboard, Local: "leaderboard", Type: "zset", Checkpoint: true},
	{Name: KeyOffsets, Local: "offsets", Type: "hash", Checkpoint: true},
	{Name: KeyOnlineBlue, Local: "online_blue", Type: "zset"},
	{Name: KeyOnlineRed, Local: "online_red", Type: "zset"},
	{Name: KeyRoundStarts, Local: "part_starts", Type: "hash", Checkpoint: true},
	{Name: KeyUpdatedAt, Local: "updated_at", Type: "string", Checkpoint: true},
	{Name: KeyRatePrefix, Local: "tap_rate", Type: "hash", PerMinute: true},
	{Name: KeyRound, Local: "game_round", Type: "string", Number: true, Checkpoint: true},
	{Name: KeyRoundParts, Local: "part_rounds", Type: "hash", Checkpoint: true},
	{Name: KeyKicked, Local: "kick_records", Type: "hash", Checkpoint: true},
	{Name: KeyImportRound, Local: "import_round", Type: "string", Checkpoint: true},
	{Name: KeyLeaderboardPrev, Local: "prev_leaderboard", Type: "zset", Checkpoint: true},
	{Name: KeyRoundPartSchedules, Local: "part_schedules", Type: "hash", Checkpoint: true},
	{Name: KeyRoundSchedule, Local: "round_schedule", Type: "string", Checkpoint: true},
	{Name: KeyRoundResults, Local: "round_results", Type: "hash", Checkpoint: true},
	{Name: KeyRounds, Local: "round_index", Type: "zset", Checkpoint: true},
	{Name: KeyTeams, Local: "teams", Type: "string", Checkpoint: true},
	{Name: KeyNames, Local: "names", Type: "hash", Checkpoint: true},
	{Name: KeyKickPending, Local: "kick_pending", Type: "hash"},
	{Name: keyMarkersLock, Local: "markers_lock", Type: "string"},
	{Name: KeyRoundViews, Local: "round_views", Type: "zset"},
	{Name: KeyRoundSeen, Local: "round_seen", Type: "hash"},
	{Name: KeyKickEpoch, Local: "kick_epoch", Type: "string", Number: true},
}

// The checkpoint's key lists, by type.
var checkpointHashes, checkpointStrings, checkpointSorted = checkpointKeys()

func checkpointKeys() (hashes, strs, sorted []string) {
	for _, k := range keys {
		if !k.Checkpoint {
			continue
		}
		switch k.Type {
		case "hash":
			hashes = append(hashes, k.Name)
		case "string":
			strs = append(strs, k.Name)
		case "zset":
			sorted = append(sorted, k.Name)
		}
	}
	return hashes, strs, sorted
}

// projectionKeyNames are every key a replay of the log builds.
func projectionKeyNames() []string {
	return append(append(append([]string{}, checkpointHashes...), checkpointStrings...), checkpointSorted...)
}

func keyByLocal(local string) (keySpec, bool) {
	for _, k := range keys {
		if k.Local == local {
			return k, true
		}
	}
	return keySpec{}, false
}

// Opcodes of applyScript's steps (ARGV after the five fixed arguments).
// Lua names them op_taps, op_join, ... (see luaConstants).
const (
	opTaps   = "T" // n, (id, count)*n: taps, aggregated per player
	opJoin   = "J" // id, user, team, joinedAt, name keys
	opKick   = "K" // id, at
	opRound  = "R" // round, offset, schedule (JSON, '' in open play)
	opResult = "W" // round, result of a timed round
	opImport = "I" // round, offset: import marker
	opPlayer = "P" // id, user, team, tapCount, name keys: player of an import
	opKicked = "X" // id, kick record: kicked player of an import
	opTeams  = "N" // teams' names and colours (JSON)
)

// luaConstants are the named locals every script begins with besides its
// keys: one source for a value both languages use.
var luaConstants = []struct{ local, value string }{
	{"op_taps", luaString(opTaps)},
	{"op_join", luaString(opJoin)},
	{"op_kick", luaString(opKick)},
	{"op_round", luaString(opRound)},
	{"op_result", luaString(opResult)},
	{"op_import", luaString(opImport)},
	{"op_player", luaString(opPlayer)},
	{"op_kicked", luaString(opKicked)},
	{"op_teams", luaString(opTeams)},
	{"status_applied", strconv.Itoa(int(game.Applied))},
	{"status_duplicate", strconv.Itoa(int(game.Duplicate))},
	{"status_overlap", strconv.Itoa(int(game.Overlap))},
	{"status_behind", strconv.Itoa(int(game.Behind))},
	// The chart's per-second counts expire RateKeep after their minute.
	{"rate_keep_seconds", strconv.FormatInt(int64(RateKeep/time.Second), 10)},
	{"channel_updates", luaString(ChannelUpdates)},
	{"channel_admin", luaString(ChannelAdmin)},
	{"channel_rounds", luaString(ChannelRounds)},
}

func luaString(s string) string { return strconv.Quote(s) }

//go:embed lua/*.lua
var luaFiles embed.FS

// A luaScript is a script of lua/ with the keys it names, in KEYS order.
type luaScript struct {
	*redis.Script
	files []string
	keys  []keySpec
	src   string
}

// luaHeader is a script's first line: the locals of the keys it uses.
var luaHeader = regexp.MustCompile(`^-- keys: ([a-z_, ]+)\n`)

// scripts are every luaScript, for the tests.
var scripts []*luaScript

// newLuaScript loads file of lua/, with the libraries it calls (files of
// lua/ that define functions) after its prelude (see buildLua).
func newLuaScript(file string, libs ...string) *luaScript {
	libSrc := make([]string, len(libs))
	for i, lib := range libs {
		libSrc[i] = mustRead(lib)
	}
	src, ks, err := buildLua(mustRead(file), libSrc...)
	if err != nil {
		panic(fmt.Sprintf("lua/%s: %v", file, err))
	}
	s := &luaScript{Script: redis.NewScript(src), files: append([]string{file}, libs...), keys: ks, src: src}
	scripts = append(scripts, s)
	return s
}

// buildLua returns the source of a script and its keys in KEYS order. The
// body's first line names its keys, "-- keys: users, names"; the prelude
// makes them locals, "local users, names = KEYS[1], KEYS[2]", with
// key_types ({key, type} pairs) and number_keys for the checks, and the
// named constants (luaConstants).
func buildLua(body string, libs ...string) (string, []keySpec, error) {
	m := luaHeader.FindStringSubmatch(body)
	if m == nil {
		return "", nil, fmt.Errorf("the first line must name the script's keys (-- keys: users, names)")
	}
	var ks []keySpec
	var locals, refs, types, numbers []string
	for _, l := range strings.Split(m[1], ",") {
		l = strings.TrimSpace(l)
		k, ok := keyByLocal(l)
		if !ok {
			return "", nil, fmt.Errorf("key %q is not in the table of keys (store/keys.go)", l)
		}
		ks = append(ks, k)
		locals = append(locals, l)
		refs = append(refs, fmt.Sprintf("KEYS[%d]", len(ks)))
		types = append(types, fmt.Sprintf("{%s, '%s'}", l, k.Type))
		if k.Number {
			numbers = append(numbers, l)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "local %s = %s\n", strings.Join(locals, ", "), strings.Join(refs, ", "))
	fmt.Fprintf(&b, "local key_types = {%s}\n", strings.Join(types, ", "))
	fmt.Fprintf(&b, "local number_keys = {%s}\n", strings.Join(numbers, ", "))
	for _, c := range luaConstants {
		fmt.Fprintf(&b, "local %s = %s\n", c.local, c.value)
	}
	for _, lib := range libs {
		b.WriteString(lib)
	}
	b.WriteString(body)
	return b.String(), ks, nil
}

func mustRead(file string) string {
	raw, err := luaFiles.ReadFile("lua/" + file)
	if err != nil {
		panic(err)
	}
	return string(raw)
}

// Keys are the script's KEYS for a call at nowMs.
func (s *luaScript) Keys(nowMs int64) []string {
	out := make([]string, len(s.keys))
	for i, k := range s.keys {
		out[i] = k.Name
		if k.PerMinute {
			out[i] = rateKey(nowMs / 1000)
		}
	}
	return out
}

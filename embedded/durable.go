package embedded

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
)

// DefaultRewriteBytes is the log size after which the in-process store
// writes a snapshot and starts a new, empty log.
const DefaultRewriteBytes = 64 << 20

// tickEvery is how often, at most, TTLs are advanced by the clock while any
// key has one (miniredis only expires keys when told to).
const tickEvery = 100 * time.Millisecond

// evalReplayWeight is added to the log size for records that replay by
// running Lua (EVAL inside MULTI), which is ~100× slower per byte than plain
// commands, so that a rewrite keeps the replay time bounded.
const evalReplayWeight = 8 << 10

// durable wraps miniredis with an append-only log and snapshots.
//
// Every command from a client passes through a miniredis pre-hook, which
// takes mu, so commands execute one at a time and in the order they are
// logged. A plain write command is appended to the log (one write(2)) before
// it executes. A Lua script runs on a private peer; the write commands it
// issues through redis.call are captured in order and logged as one
// "effects" record before the script's reply goes to the client — replaying
// them is ~200× faster than running the script again and immune to
// non-determinism inside it. SPOP is logged as the SREM of what it popped.
// MULTI … EXEC is logged as a unit, and only when EXEC succeeded.
type durable struct {
	dir          string
	log          *slog.Logger
	rewriteBytes int64

	m   *miniredis.Miniredis
	srv *server.Server
	in  *introspect

	loading atomic.Bool
	peers   sync.Map // *server.Peer -> *peerState

	mu        sync.Mutex // held while a command executes or the log is switched
	aof       *os.File
	aofGen    uint64
	aofOff    int64 // bytes in the current log file
	aofWeight int64 // replay cost of the current log, in bytes
	dirty     bool  // written since the last fsync
	failed    error // the log could not be written: refuse writes
	closing   bool
	closed    bool
	scripts   map[string]string // sha1 -> body, mirrors miniredis' cache
	hasTTL    bool
	lastTick  time.Time
	rewriting bool
	capture   *capture // non-nil while a top-level script runs
	capBuf    capture
	inNested  bool // dispatching a script's command on nestedPeer
	nested    *peerRunner
	rec       recWriter

	wg       sync.WaitGroup
	stop     chan struct{}
	lockFile *os.File
}

type peerState struct {
	reentrant bool       // our own Dispatch of this peer's command
	queue     [][]string // commands queued after MULTI
	txDB      int
	proxy     *server.Peer
	pbuf      bytes.Buffer
	pw        *bufio.Writer
}

type capture struct {
	w recWriter
	n int
}

const msgLoading = "LOADING Redis is loading the dataset in memory"

func aofName(gen uint64) string { return fmt.Sprintf("aof-%010d.log", gen) }

// listLogs returns the generations of the log files in dir, sorted.
func listLogs(dir string) ([]uint64, error) {
	names, err := filepath.Glob(filepath.Join(dir, "aof-*.log"))
	if err != nil {
		return nil, err
	}
	var gens []uint64
	for _, n := range names {
		var g uint64
		if _, err := fmt.Sscanf(filepath.Base(n), "aof-%d.log", &g); err == nil {
			gens = append(gens, g)
		}
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i] < gens[j] })
	return gens, nil
}

type loadStats struct {
	snapshotKeys int
	records      int
	logBytes     int64
	tornBytes    int64
	replayErrors int
	elapsed      time.Duration
}

func startDurable(dir string, rewriteBytes int64, logger *slog.Logger) (*durable, loadStats, error) {
	var st loadStats
	begin := time.Now()
	if rewriteBytes <= 0 {
		rewriteBytes = DefaultRewriteBytes
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, st, err
	}
	lock, err := lockDir(dir, lockWait)
	if err != nil {
		return nil, st, err
	}
	d := &durable{
		dir:          dir,
		log:          logger,
		rewriteBytes: rewriteBytes,
		scripts:      map[string]string{},
		stop:         make(chan struct{}),
		lockFile:     lock,
	}
	ok := false
	defer func() {
		if !ok {
			if d.m != nil {
				d.m.Close()
			}
			if d.aof != nil {
				d.aof.Close()
			}
			unlockDir(lock)
		}
	}()

	d.m = miniredis.NewMiniRedis()
	if err := d.m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, st, err
	}
	d.srv = d.m.Server()
	if d.in, err = newIntrospect(d.m); err != nil {
		return nil, st, err
	}
	// Clients that connect while we load get LOADING.
	d.loading.Store(true)
	d.srv.SetPreHook(d.hook)

	if err := d.load(&st); err != nil {
		return nil, st, err
	}
	d.loading.Store(false)
	ok = true
	d.wg.Add(1)
	go d.syncer()
	st.elapsed = time.Since(begin)
	return d, st, nil
}

// load restores the snapshot, replays the logs after it and compacts.
func (d *durable) load(st *loadStats) error {
	pr := newPeerRunner(d.srv)
	d.peers.Store(pr.peer, &peerState{reentrant: true})
	defer d.peers.Delete(pr.peer)

	info, haveSnap, err := loadSnapshot(d.dir, d.m, func(args ...string) error { return pr.runErr(args...) })
	if err != nil {
		return err
	}
	gen := uint64(0)
	if haveSnap {
		gen = info.gen
		d.scripts = info.scripts
		d.lastTick = info.lastTick
		st.snapshotKeys = info.keys
	}
	d.m.Lock()
	d.hasTTL = d.in.anyTTL(d.m)
	d.m.Unlock()

	gens, err := listLogs(d.dir)
	if err != nil {
		return err
	}
	curGen := gen
	for i, g := range gens {
		if g < gen {
			// Left over from a compaction that crashed after its snapshot.
			os.Remove(filepath.Join(d.dir, aofName(g)))
			continue
		}
		if err := d.replayFile(pr, g, i == len(gens)-1, st); err != nil {
			return err
		}
		curGen = g
	}
	d.aofGen = curGen

	if st.records > 0 || st.tornBytes > 0 || (!haveSnap && len(gens) > 0) {
		// Write a fresh snapshot and start an empty log, so that the next
		// start has nothing to replay.
		d.mu.Lock()
		job, err := d.rotateLocked()
		d.mu.Unlock()
		if err != nil {
			return err
		}
		if err := d.finishRotate(job); err != nil {
			return err
		}
		return nil
	}
	f, err := os.OpenFile(filepath.Join(d.dir, aofName(curGen)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	d.aof, d.aofOff = f, fi.Size()
	return syncDir(d.dir)
}

// replayFile applies one log file. A torn or corrupt record ends the file;
// the last file is then truncated to its valid prefix.
func (d *durable) replayFile(pr *peerRunner, gen uint64, last bool, st *loadStats) error {
	path := filepath.Join(d.dir, aofName(gen))
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	st.logBytes += int64(len(data))
	curDB := -1
	off := 0
	for off < len(data) {
		rec, next, err := nextRecord(data, off)
		if err != nil {
			break
		}
		d.replayRecord(pr, rec, &curDB, st)
		st.records++
		off = next
	}
	if off < len(data) {
		torn := int64(len(data) - off)
		st.tornBytes += torn
		d.log.Warn("embedded redis: dropping a torn or corrupt log tail",
			"file", path, "valid_bytes", off, "dropped_bytes", torn, "last_file", last)
		if last {
			if err := os.Truncate(path, int64(off)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *durable) replayRecord(pr *peerRunner, rec record, curDB *int, st *loadStats) {
	ts := time.Unix(0, rec.ts)
	d.m.SetTime(ts)
	if rec.kind == recTick {
		d.m.FastForward(time.Duration(rec.tick))
		d.lastTick = ts
		d.refreshTTL()
		return
	}
	if !d.hasTTL {
		d.lastTick = ts
	}
	sel := func(db int) {
		if db != *curDB {
			pr.run([]string{"SELECT", fmt.Sprint(db)})
			*curDB = db
		}
	}
	run := func(args []string) {
		if isErrorReply(pr.run(args)) {
			st.replayErrors++
		}
	}
	switch rec.kind {
	case recCmd, recEffects:
		for _, c := range rec.cmds {
			sel(c.db)
			run(c.args)
			if strings.EqualFold(c.args[0], "SCRIPT") && len(c.args) > 1 {
				switch strings.ToUpper(c.args[1]) {
				case "LOAD":
					if len(c.args) == 3 {
						d.scripts[sha1Hex(c.args[2])] = c.args[2]
					}
				case "FLUSH":
					d.scripts = map[string]string{}
				}
			}
		}
	case recTx:
		sel(rec.db)
		d.m.Seed(int(rec.ts))
		pr.run([]string{"MULTI"})
		for _, c := range rec.cmds {
			pr.run(c.args)
		}
		if !execSucceeded(pr.run([]string{"EXEC"})) {
			st.replayErrors++
		}
		// SELECT inside the transaction moved the peer.
		*curDB = d.in.db(pr.peer.Ctx)
	}
	d.refreshTTL()
}

func (d *durable) refreshTTL() {
	d.m.Lock()
	d.hasTTL = d.in.anyTTL(d.m)
	d.m.Unlock()
}

// rotateJob is a log switch whose snapshot still has to be written.
type rotateJob struct {
	old    *os.File
	newGen uint64
	snap   []byte
	keys   int
	err    error
}

// rotateLocked starts a new log generation and encodes the snapshot that
// goes with it. Call with mu held: no command runs meanwhile, so the
// snapshot is exactly the state the old logs lead to.
func (d *durable) rotateLocked() (rotateJob, error) {
	newGen := d.aofGen + 1
	f, err := os.OpenFile(filepath.Join(d.dir, aofName(newGen)), os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return rotateJob{}, err
	}
	if err := syncDir(d.dir); err != nil {
		f.Close()
		return rotateJob{}, err
	}
	job := rotateJob{old: d.aof, newGen: newGen}
	d.aof, d.aofGen, d.aofOff, d.aofWeight = f, newGen, 0, 0
	job.snap, job.keys, job.err = encodeSnapshot(d.m, d.in, newGen, d.lastTick, d.scripts)
	return job, nil
}

// finishRotate fsyncs and closes the old log, writes the snapshot and
// removes the logs it makes obsolete. Runs without mu.
func (d *durable) finishRotate(job rotateJob) error {
	if job.old != nil {
		if err := job.old.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
			d.log.Warn("embedded redis: fsync of the old log failed", "err", err)
		}
		job.old.Close()
	}
	if job.err != nil {
		return job.err
	}
	if err := writeFileAtomic(d.dir, snapName, job.snap); err != nil {
		return fmt.Errorf("writing snapshot: %w", err)
	}
	gens, err := listLogs(d.dir)
	if err != nil {
		return err
	}
	for _, g := range gens {
		if g < job.newGen {
			if err := os.Remove(filepath.Join(d.dir, aofName(g))); err != nil {
				d.log.Warn("embedded redis: removing an old log", "err", err)
			}
		}
	}
	d.log.Debug("embedded redis: snapshot written", "keys", job.keys, "bytes", len(job.snap), "generation", job.newGen)
	return nil
}

func (d *durable) backgroundRewrite() {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		if d.closing || d.failed != nil {
			d.rewriting = false
			d.mu.Unlock()
			return
		}
		job, err := d.rotateLocked()
		d.mu.Unlock()
		if err == nil {
			err = d.finishRotate(job)
		}
		d.mu.Lock()
		// Clients kept writing while the snapshot was written; go again
		// at once if that already filled the new log.
		again := err == nil && d.aofWeight >= d.rewriteBytes
		if !again {
			d.rewriting = false
		}
		d.mu.Unlock()
		if err != nil {
			d.log.Error("embedded redis: log rewrite failed", "err", err)
		}
		if !again {
			return
		}
	}
}

// syncer fsyncs the log once per second when it was written to.
func (d *durable) syncer() {
	defer d.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		d.mu.Lock()
		f, dirty := d.aof, d.dirty
		d.dirty = false
		d.mu.Unlock()
		if dirty && f != nil {
			if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
				d.log.Warn("embedded redis: fsync of the log failed", "err", err)
			}
		}
	}
}

// writeLog appends the records in d.rec to the log. Call with mu held.
func (d *durable) writeLog(weight int64) error {
	if d.failed != nil {
		return d.failed
	}
	b := d.rec.b
	if len(b) == 0 {
		return nil
	}
	n, err := d.aof.Write(b)
	if err != nil {
		if n > 0 {
			// Do not leave half a record in front of later ones.
			if terr := d.aof.Truncate(d.aofOff); terr != nil {
				err = errors.Join(err, terr)
			}
		}
		d.failed = fmt.Errorf("append-only log: %w", err)
		d.log.Error("embedded redis: cannot write the log; refusing writes from now on", "err", err)
		return d.failed
	}
	d.aofOff += int64(n)
	d.aofWeight += int64(n) + weight
	d.dirty = true
	return nil
}

func (d *durable) misconf() string {
	return "MISCONF the embedded store cannot write its append-only log: " + d.failed.Error()
}

// afterWrite updates the TTL flag and starts a rewrite when the log is big.
// Call with mu held.
func (d *durable) afterWrite() {
	d.refreshTTL()
	if d.aofWeight >= d.rewriteBytes && !d.rewriting && !d.closing && d.failed == nil {
		d.rewriting = true
		d.wg.Add(1)
		go d.backgroundRewrite()
	}
}

// advanceClock expires keys whose TTL has passed, logging how far the clock
// moved so that replay expires exactly the same keys. Call with mu held.
func (d *durable) advanceClock(now time.Time) {
	if !d.hasTTL {
		d.lastTick = now
		return
	}
	el := now.Sub(d.lastTick)
	if el < tickEvery || d.failed != nil {
		return
	}
	d.rec.reset()
	d.rec.begin(recTick, now.UnixNano())
	d.rec.varint(int64(el))
	d.rec.end()
	if d.writeLog(0) != nil {
		return
	}
	d.m.SetTime(now)
	d.m.FastForward(el)
	d.lastTick = now
	d.refreshTTL()
}

func (d *durable) state(c *server.Peer) *peerState {
	if v, ok := d.peers.Load(c); ok {
		return v.(*peerState)
	}
	st := &peerState{}
	d.peers.Store(c, st)
	c.OnDisconnect(func() {
		d.peers.Delete(c)
		if st.proxy != nil {
			d.peers.Delete(st.proxy)
		}
	})
	return st
}

// dispatch runs a command on the client's own peer.
func (d *durable) dispatch(c *server.Peer, st *peerState, full []string) {
	st.reentrant = true
	d.srv.Dispatch(c, full)
	st.reentrant = false
}

// viaProxy runs a command on a private peer that shares the client's
// connection state, and returns the reply instead of sending it, so that we
// can log before the client can see an answer.
func (d *durable) viaProxy(c *server.Peer, st *peerState, full []string) []byte {
	if st.proxy == nil {
		st.pw = bufio.NewWriter(&st.pbuf)
		st.proxy = server.NewPeer(st.pw)
		d.peers.Store(st.proxy, &peerState{reentrant: true})
	}
	st.pbuf.Reset()
	st.proxy.Ctx = c.Ctx
	st.proxy.Resp3 = c.Resp3
	d.srv.Dispatch(st.proxy, full)
	st.pw.Flush()
	if c.Ctx == nil {
		c.Ctx = st.proxy.Ctx
	}
	return st.pbuf.Bytes()
}

func fullCmd(cmd string, args []string) []string {
	full := make([]string, 0, len(args)+1)
	full = append(full, cmd)
	return append(full, args...)
}

// hook is the miniredis pre-hook. Returning true means the command was
// handled (we re-dispatch it ourselves under the lock).
func (d *durable) hook(c *server.Peer, cmd string, args ...string) bool {
	if c.Ctx != nil && d.in.nested(c.Ctx) {
		return d.nestedHook(c, cmd, args)
	}
	st := d.state(c)
	if st.reentrant {
		return false
	}
	if d.loading.Load() {
		c.WriteError(msgLoading)
		return true
	}
	inTx := d.in.inTx(c.Ctx)
	if connOnly[cmd] && !inTx || d.in.subscribed(c.Ctx) {
		// No data involved; in pub/sub mode miniredis refuses the rest.
		return false
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		c.WriteError("ERR the embedded store is shutting down")
		return true
	}
	now := time.Now()
	d.advanceClock(now)
	d.m.SetTime(now)

	switch {
	case cmd == "MULTI":
		d.dispatch(c, st, fullCmd(cmd, args))
		if !inTx && d.in.inTx(c.Ctx) {
			st.queue = st.queue[:0]
			st.txDB = d.in.db(c.Ctx)
		}
		return true
	case cmd == "EXEC" && inTx:
		d.exec(c, st, now, args)
		return true
	case cmd == "DISCARD":
		d.dispatch(c, st, fullCmd(cmd, args))
		if !d.in.inTx(c.Ctx) {
			st.queue = nil
		}
		return true
	case inTx && cmd != "EXEC" && cmd != "WATCH":
		msg := unsupported(cmd, args, true)
		if msg == "" && subscribeCmds[cmd] {
			msg = "ERR " + cmd + " inside MULTI is not supported by the embedded store"
		}
		if msg == "" && !d.srv.IsRegisteredCommand(cmd) {
			// Redis aborts the transaction on an unknown command; miniredis
			// would queue nothing and commit the rest.
			msg = errUnknown(cmd, args)
		}
		if msg != "" {
			// Like a command rejected at queue time: EXEC will abort.
			d.viaProxy(c, st, []string{"MULTI", "dirty"})
			c.WriteError(msg)
			return true
		}
		full := fullCmd(cmd, args)
		if cmd == "EVALSHA" && len(args) > 0 {
			if body, ok := d.scripts[args[0]]; ok {
				full = fullCmd("EVAL", append([]string{body}, args[1:]...))
			}
		}
		st.queue = append(st.queue, full)
		d.dispatch(c, st, fullCmd(cmd, args))
		return true
	}

	if msg := unsupported(cmd, args, false); msg != "" {
		c.WriteError(msg)
		return true
	}
	if cmd == "EXEC" || isReadOnly(cmd, args) || !d.srv.IsRegisteredCommand(cmd) {
		d.dispatch(c, st, fullCmd(cmd, args))
		return true
	}
	if d.failed != nil {
		c.WriteError(d.misconf())
		return true
	}
	switch cmd {
	case "EVAL", "EVALSHA":
		d.eval(c, st, now, cmd, args)
	case "SPOP":
		d.spop(c, st, now, args)
	case "SCRIPT":
		d.script(c, st, now, args)
	default:
		// Log first, then execute: the record is in the kernel before the
		// client can have an answer.
		d.rec.reset()
		d.rec.begin(recCmd, now.UnixNano())
		d.rec.uvarint(uint64(d.in.db(c.Ctx)))
		d.rec.cmd(cmd, args)
		d.rec.end()
		if err := d.writeLog(0); err != nil {
			c.WriteError(d.misconf())
			return true
		}
		d.dispatch(c, st, fullCmd(cmd, args))
		d.afterWrite()
	}
	return true
}

// nestedHook sees the commands a running script issues with redis.call.
// The global lock is held by the script's top-level command.
func (d *durable) nestedHook(c *server.Peer, cmd string, args []string) bool {
	cp := d.capture
	if cp == nil || d.inNested {
		// A script inside MULTI (logged as a whole), or our own SPOP below.
		if msg := unsupported(cmd, args, false); msg != "" && !d.inNested {
			c.WriteError(msg)
			return true
		}
		return false
	}
	if msg := unsupported(cmd, args, false); msg != "" {
		c.WriteError(msg)
		return true
	}
	if isReadOnly(cmd, args) {
		return false
	}
	db := d.in.db(c.Ctx)
	if cmd == "SPOP" {
		if d.nested == nil {
			d.nested = newPeerRunner(d.srv)
		}
		d.nested.peer.Ctx = c.Ctx
		d.nested.peer.Resp3 = c.Resp3
		d.inNested = true
		reply := d.nested.run(fullCmd(cmd, args))
		d.inNested = false
		if members := popReply(reply); len(members) > 0 && len(args) > 0 {
			cp.w.uvarint(uint64(db))
			cp.w.cmd("SREM", append([]string{args[0]}, members...))
			cp.n++
		}
		c.WriteRaw(string(reply))
		return true
	}
	cp.w.uvarint(uint64(db))
	cp.w.cmd(cmd, args)
	cp.n++
	return false
}

// eval runs a script and logs the writes it made (and the script body the
// first time, for EVALSHA after a restart) before the client gets the reply.
func (d *durable) eval(c *server.Peer, st *peerState, now time.Time, cmd string, args []string) {
	var body string
	if cmd == "EVAL" && len(args) > 0 {
		body = args[0]
	}
	cp := &d.capBuf // reused: one script runs at a time
	cp.w.reset()
	cp.n = 0
	d.capture = cp
	reply := d.viaProxy(c, st, fullCmd(cmd, args))
	d.capture = nil

	d.rec.reset()
	newScript := false
	if body != "" && !isErrorReply(reply) {
		sha := sha1Hex(body)
		if _, ok := d.scripts[sha]; !ok {
			newScript = true
			d.rec.begin(recCmd, now.UnixNano())
			d.rec.uvarint(uint64(d.in.db(c.Ctx)))
			d.rec.cmd("SCRIPT", []string{"LOAD", body})
			d.rec.end()
		}
	}
	if cp.n > 0 {
		d.rec.begin(recEffects, now.UnixNano())
		d.rec.uvarint(uint64(cp.n))
		d.rec.b = append(d.rec.b, cp.w.b...)
		d.rec.end()
	}
	if err := d.writeLog(0); err != nil {
		c.WriteError(d.misconf())
		return
	}
	if newScript {
		d.scripts[sha1Hex(body)] = body
	}
	c.WriteRaw(string(reply))
	if cp.n > 0 {
		d.afterWrite()
	}
}

// spop logs SPOP as the SREM of the members it popped.
func (d *durable) spop(c *server.Peer, st *peerState, now time.Time, args []string) {
	reply := d.viaProxy(c, st, fullCmd("SPOP", args))
	d.rec.reset()
	if members := popReply(reply); len(members) > 0 && len(args) > 0 {
		d.rec.begin(recCmd, now.UnixNano())
		d.rec.uvarint(uint64(d.in.db(c.Ctx)))
		d.rec.cmd("SREM", append([]string{args[0]}, members...))
		d.rec.end()
	}
	if err := d.writeLog(0); err != nil {
		c.WriteError(d.misconf())
		return
	}
	c.WriteRaw(string(reply))
	d.afterWrite()
}

// script handles SCRIPT LOAD / FLUSH (EXISTS is read-only).
func (d *durable) script(c *server.Peer, st *peerState, now time.Time, args []string) {
	sub := ""
	if len(args) > 0 {
		sub = strings.ToUpper(args[0])
	}
	if sub == "LOAD" && len(args) == 2 {
		reply := d.viaProxy(c, st, fullCmd("SCRIPT", args))
		sha := sha1Hex(args[1])
		if _, known := d.scripts[sha]; !known && !isErrorReply(reply) {
			d.rec.reset()
			d.rec.begin(recCmd, now.UnixNano())
			d.rec.uvarint(uint64(d.in.db(c.Ctx)))
			d.rec.cmd("SCRIPT", args)
			d.rec.end()
			if err := d.writeLog(0); err != nil {
				c.WriteError(d.misconf())
				return
			}
			d.scripts[sha] = args[1]
		}
		c.WriteRaw(string(reply))
		return
	}
	d.rec.reset()
	d.rec.begin(recCmd, now.UnixNano())
	d.rec.uvarint(uint64(d.in.db(c.Ctx)))
	d.rec.cmd("SCRIPT", args)
	d.rec.end()
	if err := d.writeLog(0); err != nil {
		c.WriteError(d.misconf())
		return
	}
	d.dispatch(c, st, fullCmd("SCRIPT", args))
	if sub == "FLUSH" {
		d.scripts = map[string]string{}
	}
}

// exec runs EXEC and logs the transaction if it committed.
func (d *durable) exec(c *server.Peer, st *peerState, now time.Time, args []string) {
	if d.failed != nil {
		d.viaProxy(c, st, []string{"DISCARD"})
		st.queue = nil
		c.WriteError(d.misconf())
		return
	}
	// Commands that draw random numbers (SPOP, SRANDMEMBER, scripts) pick
	// the same ones on replay.
	d.m.Seed(int(now.UnixNano()))
	reply := d.viaProxy(c, st, fullCmd("EXEC", args))
	queue := st.queue
	if !d.in.inTx(c.Ctx) {
		st.queue = nil
	}
	if len(args) == 0 && execSucceeded(reply) && len(queue) > 0 {
		write := false
		weight := int64(0)
		for _, q := range queue {
			name := strings.ToUpper(q[0])
			if !isReadOnly(name, q[1:]) {
				write = true
			}
			if name == "EVAL" || name == "EVALSHA" {
				weight += evalReplayWeight
			}
		}
		if write {
			d.rec.reset()
			d.rec.begin(recTx, now.UnixNano())
			d.rec.uvarint(uint64(st.txDB))
			d.rec.uvarint(uint64(len(queue)))
			for _, q := range queue {
				d.rec.cmdFull(q)
			}
			d.rec.end()
			if err := d.writeLog(weight); err != nil {
				c.WriteError(d.misconf())
				return
			}
			defer d.afterWrite()
		}
	}
	c.WriteRaw(string(reply))
}

// shutdown stops the server, writes a final snapshot and closes the log.
func (d *durable) shutdown() error {
	d.mu.Lock()
	if d.closed || d.closing {
		d.mu.Unlock()
		return nil
	}
	d.closing = true
	d.mu.Unlock()

	d.m.Close()
	close(d.stop)
	d.wg.Wait()

	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	var errs []error
	if d.failed == nil && d.aofOff > 0 {
		job, err := d.rotateLocked()
		if err == nil {
			err = d.finishRotate(job)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("final snapshot: %w", err))
		}
	}
	if err := d.aof.Sync(); err != nil {
		errs = append(errs, err)
	}
	if err := d.aof.Close(); err != nil {
		errs = append(errs, err)
	}
	unlockDir(d.lockFile)
	return errors.Join(errs...)
}

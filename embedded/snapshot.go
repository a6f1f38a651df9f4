package embedded

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
)

// A snapshot holds every key of every database with its type, value and TTL,
// plus the script cache, in a compact binary format:
//
//	"TWSNAP01"
//	uvarint generation   (the first log generation to replay after it)
//	varint  lastTick     (unix nanos up to which TTLs have been advanced)
//	uvarint #scripts, #scripts × str body
//	entries: type byte, uvarint db, str key, varint ttl nanos (0 = none), value
//	  's' str
//	  'h' uvarint n, n × (str field, str value, varint field ttl nanos)
//	  'l' uvarint n, n × str          (head first)
//	  'S' uvarint n, n × str
//	  'z' uvarint n, n × (str member, float64 bits LE)
//	  'x' uvarint n, n × (str id, uvarint m, m × str)   (stream entries)
//	'.'  end of entries
//	uint32 LE CRC-32C of everything before
//
// It is written to a temporary file, fsync'ed, renamed over the old one and
// the directory fsync'ed, so a crash leaves either the old or the new one.
const snapMagic = "TWSNAP01"

const snapName = "snapshot.bin"

type snapWriter struct{ recWriter }

func (w *snapWriter) f64(f float64) {
	w.b = binary.LittleEndian.AppendUint64(w.b, math.Float64bits(f))
}

// encodeSnapshot serialises the whole store. Call with command execution
// paused (the store's lock held), so that it matches the log exactly.
func encodeSnapshot(m *miniredis.Miniredis, in *introspect, gen uint64, lastTick time.Time, scripts map[string]string) ([]byte, int, error) {
	w := &snapWriter{}
	w.b = append(w.b, snapMagic...)
	w.uvarint(gen)
	w.varint(lastTick.UnixNano())
	bodies := make([]string, 0, len(scripts))
	for _, s := range scripts {
		bodies = append(bodies, s)
	}
	sort.Strings(bodies)
	w.uvarint(uint64(len(bodies)))
	for _, s := range bodies {
		w.str(s)
	}
	m.Lock()
	ids := in.dbIDs(m)
	m.Unlock()
	nkeys := 0
	for _, id := range ids {
		db := m.DB(id)
		for _, k := range db.Keys() {
			t := db.Type(k)
			var typ byte
			switch t {
			case "string":
				typ = 's'
			case "hash":
				typ = 'h'
			case "list":
				typ = 'l'
			case "set":
				typ = 'S'
			case "zset":
				typ = 'z'
			case "stream":
				typ = 'x'
			case "":
				continue
			default:
				return nil, 0, fmt.Errorf("snapshot: key %q in db %d has type %q, which the embedded store cannot persist", k, id, t)
			}
			w.b = append(w.b, typ)
			w.uvarint(uint64(id))
			w.str(k)
			w.varint(int64(db.TTL(k)))
			switch typ {
			case 's':
				v, err := db.Get(k)
				if err != nil {
					return nil, 0, fmt.Errorf("snapshot: %q: %w", k, err)
				}
				w.str(v)
			case 'h':
				fields, err := db.HKeys(k)
				if err != nil {
					return nil, 0, fmt.Errorf("snapshot: %q: %w", k, err)
				}
				w.uvarint(uint64(len(fields)))
				for _, f := range fields {
					w.str(f)
					w.str(db.HGet(k, f))
					w.varint(int64(db.HTTL(k, f)))
				}
			case 'l':
				l, err := db.List(k)
				if err != nil {
					return nil, 0, fmt.Errorf("snapshot: %q: %w", k, err)
				}
				w.uvarint(uint64(len(l)))
				for _, e := range l {
					w.str(e)
				}
			case 'S':
				s, err := db.Members(k)
				if err != nil {
					return nil, 0, fmt.Errorf("snapshot: %q: %w", k, err)
				}
				w.uvarint(uint64(len(s)))
				for _, e := range s {
					w.str(e)
				}
			case 'z':
				z, err := db.SortedSet(k)
				if err != nil {
					return nil, 0, fmt.Errorf("snapshot: %q: %w", k, err)
				}
				members := make([]string, 0, len(z))
				for mem := range z {
					members = append(members, mem)
				}
				sort.Strings(members)
				w.uvarint(uint64(len(members)))
				for _, mem := range members {
					w.str(mem)
					w.f64(z[mem])
				}
			case 'x':
				entries, err := db.Stream(k)
				if err != nil {
					return nil, 0, fmt.Errorf("snapshot: %q: %w", k, err)
				}
				w.uvarint(uint64(len(entries)))
				for _, e := range entries {
					w.str(e.ID)
					w.uvarint(uint64(len(e.Values)))
					for _, v := range e.Values {
						w.str(v)
					}
				}
			}
			nkeys++
		}
	}
	w.b = append(w.b, '.')
	w.b = binary.LittleEndian.AppendUint32(w.b, crc32.Checksum(w.b, castagnoli))
	return w.b, nkeys, nil
}

// writeFileAtomic writes data to dir/name via a temporary file, fsync and
// rename, then fsyncs the directory.
func writeFileAtomic(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // a no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmpName, filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

type snapInfo struct {
	gen      uint64
	lastTick time.Time
	keys     int
	scripts  map[string]string
}

var errBadSnapshot = errors.New("corrupt snapshot")

// loadSnapshot reads dir/snapshot.bin into m (which must be empty). It
// returns ok=false if there is no snapshot.
func loadSnapshot(dir string, m *miniredis.Miniredis, runScript func(args ...string) error) (snapInfo, bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, snapName))
	if errors.Is(err, os.ErrNotExist) {
		return snapInfo{}, false, nil
	}
	if err != nil {
		return snapInfo{}, false, err
	}
	if len(data) < len(snapMagic)+5 || string(data[:len(snapMagic)]) != snapMagic {
		return snapInfo{}, false, fmt.Errorf("%s: %w: bad header", snapName, errBadSnapshot)
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return snapInfo{}, false, fmt.Errorf("%s: %w: checksum mismatch", snapName, errBadSnapshot)
	}
	r := &reader{b: body, off: len(snapMagic)}
	info := snapInfo{scripts: map[string]string{}}
	info.gen = r.uvarint()
	info.lastTick = time.Unix(0, r.varint())
	ns := r.count()
	for i := 0; i < ns && r.err == nil; i++ {
		s := r.str()
		if r.err == nil {
			info.scripts[sha1Hex(s)] = s
			if err := runScript("SCRIPT", "LOAD", s); err != nil {
				return snapInfo{}, false, fmt.Errorf("%s: restoring a script: %w", snapName, err)
			}
		}
	}
	dbs := map[int]*miniredis.RedisDB{}
	for r.err == nil {
		typ := r.byte1()
		if typ == '.' || r.err != nil {
			break
		}
		id := int(r.uvarint())
		key := r.str()
		ttl := time.Duration(r.varint())
		if r.err != nil {
			break
		}
		db := dbs[id]
		if db == nil {
			db = m.DB(id)
			dbs[id] = db
		}
		var err error
		switch typ {
		case 's':
			err = db.Set(key, r.str())
		case 'h':
			n := r.count()
			fv := make([]string, 0, 2*n)
			var fttl map[string]time.Duration
			for i := 0; i < n && r.err == nil; i++ {
				f, v, t := r.str(), r.str(), time.Duration(r.varint())
				fv = append(fv, f, v)
				if t != 0 {
					if fttl == nil {
						fttl = map[string]time.Duration{}
					}
					fttl[f] = t
				}
			}
			if r.err == nil && n > 0 {
				db.HSet(key, fv...)
				for f, t := range fttl {
					db.HExpire(key, f, t)
				}
			}
		case 'l':
			n := r.count()
			l := make([]string, 0, n)
			for i := 0; i < n && r.err == nil; i++ {
				l = append(l, r.str())
			}
			if r.err == nil && n > 0 {
				_, err = db.Push(key, l...)
			}
		case 'S':
			n := r.count()
			s := make([]string, 0, n)
			for i := 0; i < n && r.err == nil; i++ {
				s = append(s, r.str())
			}
			if r.err == nil && n > 0 {
				_, err = db.SetAdd(key, s...)
			}
		case 'z':
			n := r.count()
			for i := 0; i < n && r.err == nil; i++ {
				mem, score := r.str(), r.f64()
				if r.err == nil {
					if _, err = db.ZAdd(key, score, mem); err != nil {
						break
					}
				}
			}
		case 'x':
			n := r.count()
			for i := 0; i < n && r.err == nil; i++ {
				id := r.str()
				nv := r.count()
				vals := make([]string, 0, nv)
				for j := 0; j < nv && r.err == nil; j++ {
					vals = append(vals, r.str())
				}
				if r.err == nil {
					if _, err = db.XAdd(key, id, vals); err != nil {
						break
					}
				}
			}
		default:
			return snapInfo{}, false, fmt.Errorf("%s: %w: unknown type %q", snapName, errBadSnapshot, typ)
		}
		if err != nil {
			return snapInfo{}, false, fmt.Errorf("%s: restoring %q: %w", snapName, key, err)
		}
		if r.err == nil && ttl != 0 && db.Exists(key) {
			db.SetTTL(key, ttl)
		}
		info.keys++
	}
	if r.err != nil {
		return snapInfo{}, false, fmt.Errorf("%s: %w: %v", snapName, errBadSnapshot, r.err)
	}
	return info, true, nil
}

// peerRunner runs commands on a private peer and reports error replies.
type peerRunner struct {
	srv  *server.Server
	peer *server.Peer
	buf  bytes.Buffer
	w    *bufio.Writer
}

func newPeerRunner(srv *server.Server) *peerRunner {
	pr := &peerRunner{srv: srv}
	pr.w = bufio.NewWriter(&pr.buf)
	pr.peer = server.NewPeer(pr.w)
	return pr
}

// run dispatches one command and returns its raw reply.
func (pr *peerRunner) run(args []string) []byte {
	pr.buf.Reset()
	pr.srv.Dispatch(pr.peer, args)
	pr.w.Flush()
	return pr.buf.Bytes()
}

func (pr *peerRunner) runErr(args ...string) error {
	reply := pr.run(args)
	if len(reply) > 0 && reply[0] == '-' {
		return errors.New(string(bytes.TrimRight(reply[1:], "\r\n")))
	}
	return nil
}

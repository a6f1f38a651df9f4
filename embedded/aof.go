package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// The append-only log of the in-process store is a sequence of records:
//
//	uint32 LE  payload length
//	uint32 LE  CRC-32C of the payload
//	payload:   kind byte, varint unix-nano timestamp, then by kind:
//	  recCmd     uvarint db, command
//	  recEffects uvarint count, count × (uvarint db, command)
//	  recTx      uvarint db, uvarint count, count × command
//	  recTick    varint nanoseconds to fast-forward TTLs by
//	command:   uvarint argc, argc × (uvarint len, bytes)
//
// A record is written with one write(2) before its command's reply is
// written to the client. A crash can leave a torn last record: its length
// runs past the end of the file or its checksum does not match; replay
// stops there and the file is truncated to the last whole record.
const (
	recCmd     byte = 'C' // one command, executed as is
	recEffects byte = 'E' // the write commands a Lua script executed, in order
	recTx      byte = 'X' // the commands of a MULTI … EXEC that succeeded
	recTick    byte = 'F' // TTLs advanced by the clock
)

const recHeader = 8

// maxRecord bounds a record's payload; a larger length is treated as a torn
// header rather than allocated.
const maxRecord = 1 << 30

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recWriter builds records in a reusable buffer.
type recWriter struct {
	b     []byte
	start int
}

func (w *recWriter) reset() { w.b = w.b[:0] }

// begin starts a record of the given kind; finish it with end.
func (w *recWriter) begin(kind byte, ts int64) {
	w.start = len(w.b)
	w.b = append(w.b, 0, 0, 0, 0, 0, 0, 0, 0, kind)
	w.b = binary.AppendVarint(w.b, ts)
}

func (w *recWriter) end() {
	payload := w.b[w.start+recHeader:]
	binary.LittleEndian.PutUint32(w.b[w.start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(w.b[w.start+4:], crc32.Checksum(payload, castagnoli))
}

func (w *recWriter) uvarint(x uint64) { w.b = binary.AppendUvarint(w.b, x) }
func (w *recWriter) varint(x int64)   { w.b = binary.AppendVarint(w.b, x) }

func (w *recWriter) str(s string) {
	w.b = binary.AppendUvarint(w.b, uint64(len(s)))
	w.b = append(w.b, s...)
}

// cmd appends a command given as name and arguments.
func (w *recWriter) cmd(name string, args []string) {
	w.uvarint(uint64(len(args) + 1))
	w.str(name)
	for _, a := range args {
		w.str(a)
	}
}

// cmdFull appends a command whose name is its first element.
func (w *recWriter) cmdFull(full []string) {
	w.uvarint(uint64(len(full)))
	for _, a := range full {
		w.str(a)
	}
}

// record is one decoded log record.
type record struct {
	kind byte
	ts   int64
	db   int
	tick int64
	cmds []dbCmd
}

type dbCmd struct {
	db   int
	args []string
}

var errTorn = errors.New("torn or corrupt record")

// reader decodes fields from a byte slice.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	x, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.err = errTorn
		return 0
	}
	r.off += n
	return x
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	x, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.err = errTorn
		return 0
	}
	r.off += n
	return x
}

func (r *reader) byte1() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.err = errTorn
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytesN(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = errTorn
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errTorn
		return ""
	}
	return string(r.bytesN(int(n)))
}

func (r *reader) u64() uint64 {
	b := r.bytesN(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

func (r *reader) f64() float64 { return math.Float64frombits(r.u64()) }

func (r *reader) count() int {
	n := r.uvarint()
	// Every element takes at least one byte: a larger count is corrupt.
	if n > uint64(len(r.b)-r.off) {
		r.err = errTorn
		return 0
	}
	return int(n)
}

func (r *reader) cmd() []string {
	n := r.count()
	if r.err != nil {
		return nil
	}
	if n == 0 {
		r.err = fmt.Errorf("empty command: %w", errTorn)
		return nil
	}
	args := make([]string, n)
	for i := range args {
		args[i] = r.str()
	}
	return args
}

// nextRecord decodes the record at b[off:]. It returns the record and the
// offset after it, or errTorn if the bytes there are not a whole, valid
// record.
func nextRecord(b []byte, off int) (record, int, error) {
	if len(b)-off < recHeader {
		return record{}, off, errTorn
	}
	n := binary.LittleEndian.Uint32(b[off:])
	sum := binary.LittleEndian.Uint32(b[off+4:])
	if n == 0 || n > maxRecord || int(n) > len(b)-off-recHeader {
		return record{}, off, errTorn
	}
	payload := b[off+recHeader : off+recHeader+int(n)]
	if crc32.Checksum(payload, castagnoli) != sum {
		return record{}, off, errTorn
	}
	rd := &reader{b: payload}
	rec := record{kind: rd.byte1(), ts: rd.varint()}
	switch rec.kind {
	case recCmd:
		db := int(rd.uvarint())
		rec.cmds = []dbCmd{{db: db, args: rd.cmd()}}
	case recEffects:
		cnt := rd.count()
		rec.cmds = make([]dbCmd, 0, cnt)
		for i := 0; i < cnt && rd.err == nil; i++ {
			db := int(rd.uvarint())
			rec.cmds = append(rec.cmds, dbCmd{db: db, args: rd.cmd()})
		}
	case recTx:
		rec.db = int(rd.uvarint())
		cnt := rd.count()
		rec.cmds = make([]dbCmd, 0, cnt)
		for i := 0; i < cnt && rd.err == nil; i++ {
			rec.cmds = append(rec.cmds, dbCmd{db: rec.db, args: rd.cmd()})
		}
	case recTick:
		rec.tick = rd.varint()
	default:
		return record{}, off, fmt.Errorf("unknown record kind %q: %w", rec.kind, errTorn)
	}
	if rd.err != nil {
		return record{}, off, rd.err
	}
	if rd.off != len(payload) {
		return record{}, off, fmt.Errorf("trailing bytes in record: %w", errTorn)
	}
	return rec, off + recHeader + int(n), nil
}

package stream

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// CheckpointTopic keeps snapshots of the projection with the offsets they
// cover, where losing Redis cannot take them. It is compacted, and its keys
// are few so that compaction leaves about two checkpoints: a checkpoint is
// chunks keyed "<slot>/<n>" in one of two slots, "a" and "b", then a head
// record keyed "head/<slot>" naming the slot, its number of chunks and the
// checkpoint's id, written last (so compaction keeps the newest head of
// each slot). Each checkpoint writes the slot the newest
// head does not name, so a writer that dies half-way overwrites only the
// older checkpoint's chunks, and the newest complete one stays readable
// whatever compaction removes meanwhile (compaction keeps the newest record
// of each key). Chunks left over from a bigger checkpoint in the slot are
// tombstoned before the head. Every chunk carries the id in a header, so a
// chunk of another checkpoint (two writers at once) is never read as this
// one's. Should the newest checkpoint still be incomplete (two writers at
// once during a rebalance), the reader falls back to the other slot's.
const CheckpointTopic = "game-checkpoints"

// checkpointChunk is the most bytes of one chunk record (Kafka's default
// message limit is 1 MiB).
const checkpointChunk = 512 << 10

// checkpointIDHeader is the header naming a chunk's checkpoint.
const checkpointIDHeader = "checkpoint"

// checkpointHead is the value of a head record.
type checkpointHead struct {
	ID     string `json:"id"`
	Slot   string `json:"slot,omitempty"` // "a" or "b"; "" in heads written before slots (chunks keyed "<id>/<n>")
	Chunks int    `json:"chunks"`
	// Other is the number of chunks of the other slot, so that the next
	// checkpoint, which writes there, knows which to tombstone.
	Other  int    `json:"other,omitempty"`
	At     int64  `json:"at"` // unix ms
	SHA256 string `json:"sha256,omitempty"`
}

// chunkKey is the key of chunk n of the checkpoint h names.
func (h checkpointHead) chunkKey(n int) string {
	if h.Slot == "" {
		return fmt.Sprintf("%s/%d", h.ID, n)
	}
	return fmt.Sprintf("%s/%d", h.Slot, n)
}

// CheckpointInfo describes the newest complete checkpoint.
type CheckpointInfo struct {
	ID     string
	At     time.Time
	Chunks int
}

// CheckpointLog writes and reads checkpoints on CheckpointTopic. It has a
// producer of its own: a checkpoint is megabytes, and the tap producer
// sends one request at a time per broker (idempotence), so taps would wait
// behind it.
type CheckpointLog struct {
	client sarama.Client
	reader sarama.Consumer
	prod   *Producer

	mu sync.Mutex // one Write at a time
	// last is the newest head this writer knows (nil: read it first);
	// tried is the most chunks a write of this process left in each slot,
	// complete or not, so a smaller checkpoint tombstones them all.
	last  *checkpointHead
	tried map[string]int

	newest atomic.Int64 // unix ms of the newest checkpoint written or read here (0: none)
}

// saw records a checkpoint made at at, written or read.
func (cs *CheckpointLog) saw(at time.Time) {
	ms := at.UnixMilli()
	for {
		cur := cs.newest.Load()
		if ms <= cur || cs.newest.CompareAndSwap(cur, ms) {
			return
		}
	}
}

// NewestAt is when the newest checkpoint this log wrote, or read (Latest,
// Newest), was made; zero while it knows none. Each instance has its own:
// its tapwars_checkpoint_age_seconds.
func (cs *CheckpointLog) NewestAt() time.Time {
	if ms := cs.newest.Load(); ms != 0 {
		return time.UnixMilli(ms)
	}
	return time.Time{}
}

// NewCheckpointLog connects to the brokers with a producer of its own (a
// checkpoint never waits in line with taps); EnsureTopics created the
// topic (1 partition, compacted) when it was missing.
func NewCheckpointLog(c Config) (*CheckpointLog, error) {
	cfg, err := saramaConfig(c)
	if err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(c.Brokers, cfg)
	if err != nil {
		return nil, c.Security.explain(c.Brokers, err)
	}
	reader, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	prod, err := NewProducer(c)
	if err != nil {
		_ = reader.Close()
		_ = client.Close()
		return nil, err
	}
	return &CheckpointLog{client: client, reader: reader, prod: prod, tried: map[string]int{}}, nil
}

// Close closes the producer, the reader and the client.
func (cs *CheckpointLog) Close() error {
	err := cs.prod.Close()
	if rerr := cs.reader.Close(); err == nil {
		err = rerr
	}
	if cerr := cs.client.Close(); err == nil && !errors.Is(cerr, sarama.ErrClosedClient) {
		err = cerr
	}
	return err
}

// Write stores one checkpoint (any bytes) and returns once Kafka
// acknowledged all of it.
func (cs *CheckpointLog) Write(ctx context.Context, data []byte, at time.Time) error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.last == nil {
		h, _, err := cs.newestHead(ctx, "", -1)
		if err != nil {
			return fmt.Errorf("write checkpoint: %w", err)
		}
		cs.last = &h // zero when there is none: slot "" is followed by "a"
	}
	prev := *cs.last
	var b [8]byte
	_, _ = rand.Read(b[:])
	sum := sha256.Sum256(data)
	head := checkpointHead{ID: hex.EncodeToString(b[:]), Slot: "a", Other: prev.Chunks, At: at.UnixMilli(), SHA256: hex.EncodeToString(sum[:])}
	if prev.Slot == "a" {
		head.Slot = "b"
	}
	if prev.Slot == "" {
		// No head, or one of the format keyed by id: those chunks are
		// not in a slot (deleting the topic's old records drops them).
		head.Other = 0
	}
	hdr := map[string]string{checkpointIDHeader: head.ID}
	var recs []Record
	for lo := 0; lo < len(data) || lo == 0; lo += checkpointChunk {
		hi := min(lo+checkpointChunk, len(data))
		recs = append(recs, Record{Key: head.chunkKey(head.Chunks), Value: data[lo:hi], Partition: 0, Headers: hdr})
		head.Chunks++
		if hi == len(data) {
			break
		}
	}
	// Chunks of the slot's older, bigger checkpoint go (tombstones), so
	// compaction can remove them.
	stale := max(cs.tried[head.Slot], otherChunks(prev, head.Slot))
	for n := head.Chunks; n < stale; n++ {
		recs = append(recs, Record{Key: head.chunkKey(n), Partition: 0})
	}
	cs.tried[head.Slot] = max(cs.tried[head.Slot], head.Chunks)
	if err := cs.prod.Produce(ctx, CheckpointTopic, recs...); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	hv, _ := json.Marshal(head) // cannot fail
	if err := cs.prod.Produce(ctx, CheckpointTopic, Record{Key: "head/" + head.Slot, Value: hv, Partition: 0}); err != nil {
		cs.last = nil // the head may or may not be written: read it again
		return fmt.Errorf("write checkpoint head: %w", err)
	}
	cs.last = &head
	cs.tried[head.Slot] = head.Chunks
	cs.saw(at)
	return nil
}

// otherChunks is how many chunks the checkpoint before h left in slot.
func otherChunks(h checkpointHead, slot string) int {
	if h.Slot == slot {
		return h.Chunks
	}
	return h.Other
}

// headWindow is the most records a search for the newest head reads at a
// time, going back from the end of the topic (first 1, then doubling: the
// head is normally the last record).
const headWindow = 256

// ErrNoCheckpoint is Latest's answer when the topic holds no checkpoint
// (it is missing or empty, or no head was ever written).
var ErrNoCheckpoint = errors.New("no checkpoint")

// CheckpointError is a checkpoint that exists but cannot be read: the
// topic's metadata or records could not be read, or the checkpoint is
// incomplete or damaged. It is never "no checkpoint": a rebuild that went
// on without it would replay a log whose start retention may have removed.
type CheckpointError struct{ Err error }

func (e *CheckpointError) Error() string { return "checkpoint cannot be read: " + e.Err.Error() }
func (e *CheckpointError) Unwrap() error { return e.Err }

// Reason is the short cause for /readyz.
func (e *CheckpointError) Reason() string {
	return "the newest checkpoint cannot be read (see the log)"
}

// Latest returns the newest complete checkpoint; ErrNoCheckpoint when the
// topic holds none, a *CheckpointError when it cannot be read. When the
// newest is incomplete, the other slot's (older) is read instead.
func (cs *CheckpointLog) Latest(ctx context.Context) ([]byte, CheckpointInfo, error) {
	data, info, err := cs.latest(ctx)
	if err == nil {
		cs.saw(info.At)
	}
	return data, info, err
}

func (cs *CheckpointLog) latest(ctx context.Context) ([]byte, CheckpointInfo, error) {
	head, headAt, err := cs.newestHead(ctx, "", -1)
	if err != nil {
		return nil, CheckpointInfo{}, err
	}
	if headAt < 0 {
		return nil, CheckpointInfo{}, ErrNoCheckpoint
	}
	data, info, err := cs.assemble(ctx, head, headAt)
	if err == nil || head.Slot == "" {
		return data, info, err
	}
	other, otherAt, oerr := cs.newestHead(ctx, head.Slot, headAt)
	if oerr != nil || otherAt < 0 {
		return nil, info, err
	}
	if data, oinfo, oerr := cs.assemble(ctx, other, otherAt); oerr == nil {
		return data, oinfo, nil // the newest complete one
	}
	return nil, info, err
}

// assemble reads the chunks of the checkpoint head (at offset headAt).
func (cs *CheckpointLog) assemble(ctx context.Context, head checkpointHead, headAt int64) ([]byte, CheckpointInfo, error) {
	info := CheckpointInfo{ID: head.ID, At: time.UnixMilli(head.At), Chunks: head.Chunks}
	oldest, err := cs.client.GetOffset(CheckpointTopic, 0, sarama.OffsetOldest)
	if err != nil {
		return nil, info, &CheckpointError{fmt.Errorf("oldest offset of %s: %w", CheckpointTopic, err)}
	}
	// Its chunks come before it, the newest record of their keys; with
	// compaction other records may have gone from between them.
	keys := make(map[string]int, head.Chunks)
	for n := range head.Chunks {
		keys[head.chunkKey(n)] = n
	}
	chunks := make([][]byte, head.Chunks)
	found := 0
	for hi := headAt; hi > oldest && found < head.Chunks; hi -= int64(head.Chunks) + headWindow {
		lo := max(oldest, hi-int64(head.Chunks)-headWindow)
		err := cs.read(ctx, lo, hi, func(m *sarama.ConsumerMessage) {
			n, ok := keys[string(m.Key)]
			if !ok || chunks[n] != nil || m.Value == nil {
				return
			}
			if head.Slot != "" && header(m, checkpointIDHeader) != head.ID {
				return // another checkpoint's chunk (older, or a second writer's)
			}
			chunks[n] = m.Value
			found++
		})
		if err != nil {
			return nil, info, &CheckpointError{err}
		}
	}
	if found < head.Chunks {
		return nil, info, &CheckpointError{fmt.Errorf("checkpoint %s: %d of its %d chunks are missing", head.ID, head.Chunks-found, head.Chunks)}
	}
	var out []byte
	for _, c := range chunks {
		out = append(out, c...)
	}
	if head.SHA256 != "" {
		if sum := sha256.Sum256(out); hex.EncodeToString(sum[:]) != head.SHA256 {
			return nil, info, &CheckpointError{fmt.Errorf("checkpoint %s: its chunks do not match its checksum", head.ID)}
		}
	}
	return out, info, nil
}

// Newest describes the newest checkpoint without reading its chunks;
// ErrNoCheckpoint when there is none.
func (cs *CheckpointLog) Newest(ctx context.Context) (CheckpointInfo, error) {
	head, headAt, err := cs.newestHead(ctx, "", -1)
	if err != nil {
		return CheckpointInfo{}, err
	}
	if headAt < 0 {
		return CheckpointInfo{}, ErrNoCheckpoint
	}
	cs.saw(time.UnixMilli(head.At))
	return CheckpointInfo{ID: head.ID, At: time.UnixMilli(head.At), Chunks: head.Chunks}, nil
}

// newestHead finds the newest head record and its offset (-1: none, the
// topic is missing or empty), not of slot skip ("": any) and before offset
// before (-1: the end). Only a topic the brokers say does not exist counts
// as none: any other failure is a *CheckpointError.
func (cs *CheckpointLog) newestHead(ctx context.Context, skip string, before int64) (head checkpointHead, at int64, err error) {
	if err := cs.client.RefreshMetadata(CheckpointTopic); err != nil {
		if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
			return head, -1, nil
		}
		return head, -1, &CheckpointError{fmt.Errorf("metadata of %s: %w", CheckpointTopic, err)}
	}
	oldest, err := cs.client.GetOffset(CheckpointTopic, 0, sarama.OffsetOldest)
	if err != nil {
		return head, -1, &CheckpointError{fmt.Errorf("oldest offset of %s: %w", CheckpointTopic, err)}
	}
	end, err := cs.client.GetOffset(CheckpointTopic, 0, sarama.OffsetNewest)
	if err != nil {
		return head, -1, &CheckpointError{fmt.Errorf("end offset of %s: %w", CheckpointTopic, err)}
	}
	if before >= 0 {
		end = min(end, before)
	}
	at = -1
	for hi, w := end, int64(1); hi > oldest && at < 0; hi, w = hi-w, min(2*w, headWindow) {
		lo := max(oldest, hi-w)
		err := cs.read(ctx, lo, hi, func(m *sarama.ConsumerMessage) {
			var h checkpointHead
			key := string(m.Key)
			if (key == "head" || strings.HasPrefix(key, "head/")) && json.Unmarshal(m.Value, &h) == nil && h.ID != "" && (skip == "" || h.Slot != skip) {
				head, at = h, m.Offset
			}
		})
		if err != nil {
			return head, -1, &CheckpointError{err}
		}
	}
	return head, at, nil
}

// header is the value of m's header key, or "".
func header(m *sarama.ConsumerMessage, key string) string {
	for _, h := range m.Headers {
		if h != nil && string(h.Key) == key {
			return string(h.Value)
		}
	}
	return ""
}

// read calls f for each record of [lo, hi).
func (cs *CheckpointLog) read(ctx context.Context, lo, hi int64, f func(*sarama.ConsumerMessage)) error {
	pc, err := cs.reader.ConsumePartition(CheckpointTopic, 0, lo)
	if err != nil {
		return fmt.Errorf("read checkpoints from %d: %w", lo, err)
	}
	defer pc.Close()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case m := <-pc.Messages():
			if m.Offset >= hi {
				return nil
			}
			f(m)
			if m.Offset+1 >= hi {
				return nil
			}
		case err := <-pc.Errors():
			return fmt.Errorf("read checkpoints: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			return fmt.Errorf("read checkpoints: no record up to offset %d after 30 s", hi-1)
		}
	}
}

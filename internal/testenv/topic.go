package testenv

import (
	"fmt"
	"iter"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/stream"
)

// Record is one record of game-taps as read back.
type Record struct {
	Partition int32
	Offset    int64
	Key       string
	Value     []byte
}

// TopicRecords reads every record of game-taps with a client of its own, in
// partition and offset order (at most 30 s per partition).
func TopicRecords(t testing.TB, brokers []string) []Record {
	t.Helper()
	var out []Record
	for _, m := range TopicMessages(t, brokers, stream.Topic) {
		out = append(out, Record{Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Value: m.Value})
	}
	return out
}

// TopicMessages reads every record of topic, headers included, with a
// client of its own, in partition and offset order (at most 30 s per
// partition).
func TopicMessages(t testing.TB, brokers []string, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	client, err := sarama.NewClient(brokers, readerConfig(brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		hw, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if hw == 0 {
			continue
		}
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		timeout := time.After(30 * time.Second)
	read:
		for {
			select {
			case m := <-pc.Messages():
				out = append(out, m)
				if m.Offset >= hw-1 {
					break read
				}
			case <-timeout:
				t.Fatalf("partition %d: no record up to offset %d after 30 s", p, hw-1)
			}
		}
		pc.Close()
	}
	return out
}

// ReadTopic reads every record of game-taps: the ids of all tap events,
// and the taps per player that count in the current round, which are
// those after the marker that moved their partition to its last round (the
// consumer's rule in open play; a timed round's taps outside its time are
// refused, so never in the topic).
func ReadTopic(t testing.TB, brokers []string) (ids map[string]bool, taps map[string]int64) {
	t.Helper()
	ids = map[string]bool{}
	byPart := map[int32]map[string]int64{}
	round := map[int32]int64{} // of the last marker per partition
	for _, r := range TopicRecords(t, brokers) {
		if byPart[r.Partition] == nil {
			byPart[r.Partition] = map[string]int64{}
		}
		if ev, err := stream.DecodeEvent(r.Value); err == nil {
			ids[ev.ID] = true
			byPart[r.Partition][ev.UserID] += int64(ev.Taps())
		} else if f, err := stream.DecodeFact(r.Value); err == nil && (f.Type == game.FactRound || f.Type == game.FactImport) && f.Round > round[r.Partition] {
			// a marker of a round the partition is in already (written
			// again when partitions are marked) changes nothing
			byPart[r.Partition], round[r.Partition] = map[string]int64{}, f.Round
		}
	}
	taps = map[string]int64{}
	for _, m := range byPart {
		for id, n := range m {
			taps[id] += n
		}
	}
	return ids, taps
}

// InTopic fails unless every acknowledged event id is in ids (ReadTopic).
func InTopic(t testing.TB, ids map[string]bool, acked iter.Seq[string]) {
	t.Helper()
	for id := range acked {
		if !ids[id] {
			t.Fatalf("acknowledged tap %s is not in the topic", id)
		}
	}
}

// CheckAgainstTopic fails unless every acknowledged event id is in the topic
// and the app counts exactly what the topic holds for the current round: state (polled until it
// matches; more than the topic fails at once) in total and per team, and
// tapsOf for each player. It returns the topic's total.
func CheckAgainstTopic(t testing.TB, brokers []string, acked iter.Seq[string], state func() game.State, players []string, tapsOf func(id string) int64) int64 {
	t.Helper()
	ids, taps := ReadTopic(t, brokers)
	InTopic(t, ids, acked)
	var total int64
	for _, n := range taps {
		total += n
	}
	Eventually(t, 20*time.Second, func() string {
		s := state()
		if s.TotalTaps > total {
			t.Fatalf("counted %d taps, the topic holds %d: counted twice", s.TotalTaps, total)
		}
		if s.TotalTaps != total || s.BlueScore+s.RedScore != total {
			return fmt.Sprintf("state %+v, topic holds %d", s, total)
		}
		return ""
	})
	for _, id := range players {
		if got := tapsOf(id); got != taps[id] {
			t.Fatalf("player %s: %d counted, %d in the topic", id, got, taps[id])
		}
	}
	return total
}

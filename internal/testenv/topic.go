package testenv

import (
	"testing"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/stream"
)

// ReadTopic reads every record of game-taps with its own client: the ids of
// valid tap events and the taps per player that the consumer must count.
func ReadTopic(t testing.TB, brokers []string) (ids map[string]bool, taps map[string]int64) {
	t.Helper()
	client, err := sarama.NewClient(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := client.Partitions(stream.Topic)
	if err != nil {
		t.Fatal(err)
	}
	ids, taps = map[string]bool{}, map[string]int64{}
	for _, p := range parts {
		hw, err := client.GetOffset(stream.Topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if hw == 0 {
			continue
		}
		pc, err := c.ConsumePartition(stream.Topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for m := range pc.Messages() {
			if ev, err := stream.DecodeEvent(m.Value); err == nil {
				ids[ev.ID] = true
				taps[ev.UserID] += int64(ev.Taps())
			}
			if m.Offset >= hw-1 {
				break
			}
		}
		pc.Close()
	}
	return ids, taps
}

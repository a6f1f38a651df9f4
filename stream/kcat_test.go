package stream_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/stream"
)

// kcat (librdkafka), an independent Kafka client, writes tap events the way
// an operator or another service would: they are counted, and a player's
// records land on the same partition as this app's (CRC32 partitioner).
func TestKcatProducedTapsAreCounted(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat not installed (apt-get install kcat; .ci/run does)")
	}
	e := newEnv(t, 3)
	broker := e.k.Addrs()[0]
	var in strings.Builder
	for _, u := range e.players {
		for range 5 {
			fmt.Fprintf(&in, "%s|{\"userId\":%q,\"username\":%q,\"team\":\"blue\",\"count\":3}\n", u.ID, u.ID, u.Username)
		}
		e.acked[u.ID] += 15
	}
	cmd := exec.Command("kcat", "-b", broker, "-t", stream.Topic, "-P", "-K", "|")
	cmd.Stdin = strings.NewReader(in.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	// The same players tap through this app's producer.
	p := e.producer(t)
	for _, u := range e.players {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := p.Send(ctx, game.TapEvent{ID: "app-" + u.ID, UserID: u.ID, Username: u.Username, Team: u.Team, Timestamp: time.Now().UnixMilli()})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		e.acked[u.ID]++
	}
	e.consumer(t, e.st, stream.ConsumerOptions{})
	e.check(t) // team scores follow the server's teams, not the "blue" kcat wrote

	// kcat reads back partition and key of every record.
	out, err := exec.Command("kcat", "-b", broker, "-t", stream.Topic, "-C", "-o", "beginning", "-e", "-q", "-f", "%p %k\n").Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	partition := map[string]string{}
	records := 0
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		p, key, _ := strings.Cut(line, " ")
		records++
		if was, ok := partition[key]; ok && was != p {
			t.Fatalf("player %s on partitions %s and %s: partitioners disagree", key, was, p)
		}
		partition[key] = p
	}
	if records != 18 || len(partition) != 3 {
		t.Fatalf("kcat read %d records of %d players", records, len(partition))
	}
}

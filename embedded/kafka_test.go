package embedded

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func startKafka(t *testing.T, o KafkaOptions) *Kafka {
	t.Helper()
	o.Logger = quietLogger()
	k, err := StartKafka(o)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func produce(t *testing.T, addrs []string, topic string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("player-%d", i%17)), Value: []byte(fmt.Sprintf(`{"i":%d}`, i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// consumeAll reads every record of topic from the start.
func consumeAll(t *testing.T, addrs []string, topic string, want int) map[string]int32 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seen := map[string]int32{}
	for len(seen) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(seen), want, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		fs.EachRecord(func(r *kgo.Record) {
			if _, dup := seen[string(r.Value)]; dup {
				t.Fatalf("duplicate %s", r.Value)
			}
			seen[string(r.Value)] = r.Partition
		})
	}
	return seen
}

func TestKafkaRestart(t *testing.T) {
	dir := t.TempDir()
	k := startKafka(t, KafkaOptions{Dir: dir, Partitions: 3, Topics: []string{"game-taps"}})
	if n := len(k.Cluster().PartitionInfos("game-taps")); n != 3 {
		t.Fatalf("%d partitions", n)
	}
	produce(t, k.Addrs(), "game-taps", 0, 500)
	before := consumeAll(t, k.Addrs(), "game-taps", 500)
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}

	// Same dir, same topics, plus a new one; a different partition count
	// for the existing topic does not change it.
	k = startKafka(t, KafkaOptions{Dir: dir, Partitions: 6, Topics: []string{"game-taps", "game-other"}})
	defer k.Close()
	if n := len(k.Cluster().PartitionInfos("game-taps")); n != 3 {
		t.Fatalf("game-taps has %d partitions after restart, want 3", n)
	}
	if n := len(k.Cluster().PartitionInfos("game-other")); n != 6 {
		t.Fatalf("new topic has %d partitions, want 6", n)
	}
	produce(t, k.Addrs(), "game-taps", 500, 100)
	after := consumeAll(t, k.Addrs(), "game-taps", 600)
	for v, p := range before {
		if after[v] != p {
			t.Fatalf("record %s moved from partition %d to %d", v, p, after[v])
		}
	}
}

func TestKafkaFixedPortAndSyncWrites(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	k := startKafka(t, KafkaOptions{Dir: dir, Partitions: 2, Topics: []string{"t"}, Port: port, SyncWrites: true})
	if got := k.Addrs(); len(got) != 1 || got[0] != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Fatalf("addrs %v", got)
	}
	produce(t, k.Addrs(), "t", 0, 50)
	// A second broker on the same directory is refused while the first runs.
	defer func(w time.Duration) { lockWait = w }(lockWait)
	lockWait = 200 * time.Millisecond
	if _, err := StartKafka(KafkaOptions{Dir: dir, Logger: quietLogger()}); err == nil {
		t.Fatal("two brokers on one directory")
	}
	k.Close()
	k = startKafka(t, KafkaOptions{Dir: dir, Partitions: 2, Topics: []string{"t"}, Port: port})
	defer k.Close()
	consumeAll(t, k.Addrs(), "t", 50)
}

// TestKafkaKill9 kill -9s a broker process after acknowledged produces:
// kfake's data directory keeps them.
func TestKafkaKill9(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "EMBEDDED_TEST_CHILD_DIR="+dir, "EMBEDDED_TEST_CHILD_KIND=kafka")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q %v", line, err)
	}
	addrs := []string{strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))}
	produce(t, addrs, "game-taps", 0, 300)
	cmd.Process.Kill()
	cmd.Wait()
	k := startKafka(t, KafkaOptions{Dir: dir, Partitions: 4, Topics: []string{"game-taps"}})
	defer k.Close()
	if n := len(k.Cluster().PartitionInfos("game-taps")); n != 4 {
		t.Fatalf("%d partitions", n)
	}
	consumeAll(t, k.Addrs(), "game-taps", 300)
}

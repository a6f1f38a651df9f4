package app_test

// Broker failures on a real three-node Apache Kafka cluster (replication
// factor 3, min.insync.replicas 2) under load: what operators and
// Kubernetes do to brokers.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// timedAnswer is one answered tap with when it was answered.
type timedAnswer struct {
	at   time.Time
	code int
	ev   game.TapEvent // on 202
	body string        // otherwise
	hdr  http.Header
}

// recorder taps from workers goroutines until stop and keeps every answer
// with its time, readable while it runs.
type recorder struct {
	mu   sync.Mutex
	out  []timedAnswer
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func record(base string, players []joined, workers int) *recorder {
	rec := &recorder{done: make(chan struct{})}
	client := &http.Client{Timeout: 15 * time.Second}
	for w := range workers {
		rec.wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-rec.done:
					return
				default:
				}
				p := players[(w+n*workers)%len(players)]
				req, _ := http.NewRequest("POST", base+"/api/tap", nil)
				req.Header.Set("Authorization", "Bearer "+p.Token)
				res, err := client.Do(req)
				if err != nil {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				a := timedAnswer{at: time.Now(), code: res.StatusCode, hdr: res.Header}
				if a.code == http.StatusAccepted {
					var tr struct {
						TapEvent game.TapEvent `json:"tapEvent"`
					}
					_ = json.Unmarshal(b, &tr)
					a.ev = tr.TapEvent
				} else {
					a.body = string(b)
					time.Sleep(20 * time.Millisecond)
				}
				rec.mu.Lock()
				rec.out = append(rec.out, a)
				rec.mu.Unlock()
			}
		})
	}
	return rec
}

func (r *recorder) answers() []timedAnswer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.out)
}

func (r *recorder) stop() []timedAnswer {
	r.once.Do(func() { close(r.done) })
	r.wg.Wait()
	return r.answers()
}

// settled waits until taps have been answered 202, and only 202, for
// longer than TAP_TIMEOUT (3 s: a tap refused later was sent before), and
// returns the time of the last refusal after from (from itself when there
// was none).
func (r *recorder) settled(t *testing.T, from time.Time, timeout time.Duration) time.Time {
	t.Helper()
	last := from
	testenv.Eventually(t, timeout, func() string {
		var ok int
		for _, a := range r.answers() {
			switch {
			case a.at.Before(from):
			case a.code != http.StatusAccepted:
				last = a.at
				ok = 0
			default:
				ok++
			}
		}
		if time.Since(last) < 4*time.Second || ok < 20 {
			return fmt.Sprintf("last refusal %v ago, %d taps accepted since", time.Since(last).Round(time.Millisecond), ok)
		}
		return ""
	})
	return last
}

// A three-node cluster under load: kill -9 of the node that leads every
// partition of game-taps, then a rolling restart of all three nodes, then
// two of three nodes down at once. Every tap answered 202 is counted exactly
// once; taps are refused only with 503, Retry-After and a message, only
// while a partition has no leader with enough in-sync replicas (none in
// the rolling restart, all while two nodes are down); recovery times are
// logged; the producer keeps its producer id (no new id per failure).
func TestBrokerFailuresThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	k := testenv.StartApacheKafka(t, testenv.ApacheKafkaOptions{Nodes: 3})
	// Node 0 is the preferred leader of every partition, so its loss stops
	// every write until the controller elects new leaders.
	const parts = 3
	assign := map[int32][]int32{}
	for p := range int32(parts) {
		assign[p] = []int32{1, 2 + p%2, 3 - p%2}
	}
	k.CreateTopic(t, stream.Topic, &sarama.TopicDetail{NumPartitions: -1, ReplicationFactor: -1, ReplicaAssignment: assign})
	r := testenv.StartRedis(t)
	m := startNode(t, r, k, nil, nil)
	base := m.URL()
	var players []joined
	for i := range 8 {
		players = append(players, join(t, base, fmt.Sprintf("bf%d", i)))
	}
	rec := record(base, players, 6)
	defer rec.stop()
	time.Sleep(time.Second)

	// A disruption lasts from its first action until the cluster is whole
	// again and taps are accepted (settled).
	type disruption struct {
		what              string
		from, to, settled time.Time
		graceful          bool // one node stopped gracefully: the in-sync quorum stays
	}
	until := func(d disruption) time.Time {
		if d.settled.After(d.to) {
			return d.settled
		}
		return d.to
	}
	var disruptions []disruption
	allInSync := func(what string) {
		t.Helper()
		testenv.Eventually(t, 120*time.Second, func() string {
			for p := range int32(parts) {
				if isr := k.InSync(t, stream.Topic, p); len(isr) != 3 {
					return fmt.Sprintf("%s: %s/%d in-sync replicas %v", what, stream.Topic, p, isr)
				}
			}
			return ""
		})
	}

	// kill -9 of the leader.
	leader := k.Leader(t, stream.Topic, 0)
	for p := range int32(parts) {
		if l := k.Leader(t, stream.Topic, p); l != leader {
			t.Fatalf("partition %d is led by node %d, want node %d to lead them all", p, l, leader)
		}
	}
	from := time.Now()
	k.Kill(leader)
	recovered := rec.settled(t, from, 90*time.Second)
	t.Logf("kill -9 of node %d, the leader of every partition: taps accepted again after %v (recovery)", leader, recovered.Sub(from).Round(time.Millisecond))
	k.Start(leader)
	allInSync("after the killed node came back")
	disruptions = append(disruptions, disruption{fmt.Sprintf("kill -9 of node %d and its restart", leader), from, time.Now(), rec.settled(t, from, 90*time.Second), false})

	// A rolling restart: each node stops gracefully (leaderships move
	// away first), starts again and catches up before the next.
	for i := range 3 {
		from := time.Now()
		k.Stop(i)
		k.Start(i)
		allInSync(fmt.Sprintf("after node %d restarted", i))
		to := time.Now()
		disruptions = append(disruptions, disruption{fmt.Sprintf("rolling restart of node %d", i), from, to, rec.settled(t, from, 90*time.Second), true})
	}

	// Two of three nodes stop: no partition has min.insync.replicas (2)
	// in sync, and the controller quorum is lost too. Taps are refused,
	// none is acknowledged, until one node is back.
	from = time.Now()
	k.Stop(1)
	k.Stop(2)
	noQuorum := time.Now()
	time.Sleep(5 * time.Second)
	back := time.Now()
	k.Start(1)
	recovered = rec.settled(t, back, 90*time.Second)
	t.Logf("two of three nodes stopped: taps accepted again %v after one came back", recovered.Sub(back).Round(time.Millisecond))
	k.Start(2)
	allInSync("after two nodes came back")
	disruptions = append(disruptions, disruption{"two of three nodes stopped, then restarted", from, time.Now(), rec.settled(t, from, 90*time.Second), false})
	time.Sleep(500 * time.Millisecond)
	answers := rec.stop()
	slices.SortFunc(answers, func(a, b timedAnswer) int { return a.at.Compare(b.at) })

	// Without a quorum of in-sync replicas nothing is acknowledged (a 202
	// answered in the first moments may have been written just before).
	var refusedNoQuorum int
	for _, a := range answers {
		if a.at.After(noQuorum.Add(500*time.Millisecond)) && a.at.Before(back) {
			if a.code == http.StatusAccepted {
				t.Errorf("tap %s answered 202 at %v, while only one of three nodes ran", a.ev.ID, a.at.Format(time.TimeOnly+".000"))
			} else {
				refusedNoQuorum++
			}
		}
	}
	if refusedNoQuorum == 0 {
		t.Errorf("no tap was refused while only one of three nodes ran")
	}

	// Every refusal is a 503 with Retry-After and a message (not sent), or
	// a 504 saying the tap may still count (sent, no answer within
	// TAP_TIMEOUT), inside a disruption.
	codes := map[int]int{}
	for _, a := range answers {
		codes[a.code]++
		if a.code == http.StatusAccepted {
			continue
		}
		unavailable := a.code == http.StatusServiceUnavailable && a.hdr.Get("Retry-After") != "" && strings.Contains(a.body, "unavailable")
		pending := a.code == http.StatusGatewayTimeout && strings.Contains(a.body, "may still count")
		if !json.Valid([]byte(a.body)) || !unavailable && !pending {
			t.Errorf("tap refused with %d %q (Retry-After %q), want 503 saying Kafka is unavailable or 504 saying it may still count", a.code, a.body, a.hdr.Get("Retry-After"))
			continue
		}
		if !slices.ContainsFunc(disruptions, func(d disruption) bool { return !a.at.Before(d.from) && !a.at.After(until(d)) }) {
			t.Errorf("tap refused at %v, outside every disruption: %s", a.at.Format(time.TimeOnly+".000"), a.body)
		}
	}
	for _, d := range disruptions {
		// Per second from the disruption's start: taps accepted/refused.
		var refused int
		var timeline []string
		end := until(d).Add(time.Second)
		for sec := d.from; sec.Before(end); sec = sec.Add(time.Second) {
			var ok, no int
			for _, a := range answers {
				if !a.at.Before(sec) && a.at.Before(sec.Add(time.Second)) {
					if a.code == http.StatusAccepted {
						ok++
					} else {
						no++
					}
				}
			}
			refused += no
			timeline = append(timeline, fmt.Sprintf("%d/%d", ok, no))
		}
		t.Logf("%s (%s to %s): %d taps refused, the last %v after the start; accepted/refused per second: %s",
			d.what, d.from.Format(time.TimeOnly+".000"), d.to.Format(time.TimeOnly+".000"), refused, d.settled.Sub(d.from).Round(time.Millisecond), strings.Join(timeline, " "))
		// A graceful restart of one node leaves two of three in sync: no
		// tap may be refused.
		if d.graceful && refused > 0 {
			t.Errorf("%s: %d taps refused while two of three nodes stayed in sync", d.what, refused)
		}
	}
	t.Logf("answers: %v", codes)
	if codes[http.StatusAccepted] < 500 {
		t.Fatalf("answers %v: too few taps accepted to say anything", codes)
	}
	acked := map[string]string{}
	for _, a := range answers {
		if a.code == http.StatusAccepted && a.ev.ID != "" {
			acked[a.ev.ID] = a.ev.UserID
		}
	}
	checkExact(t, base, k.Addrs(), acked, players)

	// The idempotent producer keeps one producer id through the failures.
	ids := testenv.ProducerIDs(t, k.Addrs(), nil, stream.Topic)
	t.Logf("producer ids in %s (id: batches): %v", stream.Topic, ids)
	if len(ids) > 2 {
		t.Fatalf("%d producer ids wrote %s: a new id per failure, want the producer to keep its id", len(ids), stream.Topic)
	}
}

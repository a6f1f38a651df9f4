package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// Rounds without a countdown start on two instances while both are
// tapped at full speed: every round's final scores are exactly the taps
// answered 202 for it. (Before the instances held their view of the round,
// a tap judged by a round announced a moment before could reach Kafka
// ahead of the round's markers and be skipped as the old round's.)
func TestAnnouncementRaceTwoInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	bases := twoInstances(t)
	players := make([]joined, 16)
	for i := range players {
		players[i] = join(t, bases[i%2], fmt.Sprintf("race%d", i))
	}
	for i := range 3 {
		stop := tapLoad(bases, players, 12)
		time.Sleep(200 * time.Millisecond)
		// Each instance in turn announces: its own view and the other's.
		rs := startRound(t, bases[i%2], `{"seconds": 1, "countdown": 0}`)
		announced := time.Now()
		time.Sleep(time.Until(time.UnixMilli(rs.EndsAt).Add(300 * time.Millisecond)))
		answers := stop()
		checkRoundExact(t, finalRound(t, bases[(i+1)%2], rs.Number, 20*time.Second), announced, answers)
	}
}

// twoInstances runs two instances with the admin API on one redis-server
// and one kfake broker of 4 partitions, and returns their URLs.
func twoInstances(t *testing.T) []string {
	t.Helper()
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 4, stream.Topic)
	env := map[string]string{"ADMIN_TOKEN": admToken, "TAP_TIMEOUT": "1s"}
	return []string{startNode(t, r, k, env, nil).URL(), startNode(t, r, k, env, nil).URL()}
}

// holdNextTap makes the broker hold the next produce request to game-taps
// until release is closed; held is closed when it arrives.
func holdNextTap(k *testenv.Kafka, release <-chan struct{}) (held <-chan struct{}) {
	arrived := make(chan struct{})
	var armed atomic.Bool
	armed.Store(true)
	k.Cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.Cluster.KeepControl()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			if tp.Topic == stream.Topic && armed.CompareAndSwap(true, false) {
				close(arrived)
				k.Cluster.SleepControl(func() { <-release })
				break
			}
		}
		return nil, nil, false
	})
	return arrived
}

// A tap on its way to Kafka on one instance when another announces a
// round holds the round back: the round's markers are logged after the
// tap, which is answered 202, and meanwhile both instances refuse taps with
// "the round is starting".
func TestAnnouncementWaitsForTapInFlightOnAnotherInstance(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	env := map[string]string{"ADMIN_TOKEN": admToken, "TAP_TIMEOUT": "5s"}
	a, b := startNode(t, r, k, env, nil), startNode(t, r, k, env, nil)
	p, q := join(t, b.URL(), "inflight"), join(t, a.URL(), "waiting")
	tapN(t, b.URL(), p, 1)
	tapN(t, a.URL(), q, 1)

	release := make(chan struct{})
	var once sync.Once
	done := func() { once.Do(func() { close(release) }) }
	defer done()
	held := holdNextTap(k, release)
	type answer struct {
		code int
		ev   game.TapEvent
		body string
	}
	tapped := make(chan answer, 1)
	go func() {
		var tr struct {
			TapEvent game.TapEvent `json:"tapEvent"`
		}
		code, _, body := call(t, "POST", b.URL()+"/api/tap", p.Token, "", &tr)
		tapped <- answer{code, tr.TapEvent, body}
	}()
	select {
	case <-held:
	case <-time.After(5 * time.Second):
		t.Fatal("the tap did not reach the broker")
	}
	type started struct {
		rs  game.RoundState
		at  time.Time
		err string
	}
	round := make(chan started, 1)
	go func() {
		code, _, body := admReq(t, nil, "POST", a.URL()+"/admin/rounds", `{"seconds": 3, "countdown": 0}`, overlay(bearer, map[string]string{"Content-Type": "application/json"}))
		var res struct {
			Round game.RoundState `json:"round"`
		}
		if code != http.StatusCreated || json.Unmarshal([]byte(body), &res) != nil {
			round <- started{err: fmt.Sprintf("%d %s", code, body)}
			return
		}
		round <- started{rs: res.Round, at: time.Now()}
	}()
	time.Sleep(600 * time.Millisecond)
	select {
	case s := <-round:
		t.Fatalf("the round started (%+v) while a tap of the open round was on its way", s)
	default:
	}
	for _, c := range []struct {
		base string
		who  joined
	}{{a.URL(), q}, {b.URL(), q}} {
		code, hdr, body := call(t, "POST", c.base+"/api/tap", c.who.Token, "", nil)
		if code != http.StatusConflict || !strings.Contains(body, "starting") || hdr.Get("Retry-After") == "" {
			t.Fatalf("a tap during the announcement: %d %s (Retry-After %q)", code, body, hdr.Get("Retry-After"))
		}
	}
	released := time.Now()
	done()
	ans := <-tapped
	if ans.code != http.StatusAccepted {
		t.Fatalf("the held tap: %d %s", ans.code, ans.body)
	}
	s := <-round
	if s.err != "" {
		t.Fatalf("POST /admin/rounds: %s", s.err)
	}
	t.Logf("the round started %v after the held tap was released", s.at.Sub(released).Round(time.Millisecond))

	// In the log, the tap is ahead of the round's marker on its partition.
	tapAt, markerAt := int64(-1), int64(-1)
	var part int32 = -1
	for _, m := range testenv.TopicMessages(t, k.Addrs(), stream.Topic) {
		if isFactRecord(m) {
			if f, err := stream.DecodeFact(m.Value); err == nil && f.Type == game.FactRound && f.Round == s.rs.Number && m.Partition == part {
				markerAt = m.Offset
			}
			continue
		}
		if ev, err := stream.DecodeEvent(m.Value); err == nil && ev.ID == ans.ev.ID {
			tapAt, part = m.Offset, m.Partition
		}
	}
	if tapAt < 0 || markerAt < 0 || tapAt > markerAt {
		t.Fatalf("on partition %d the tap is at offset %d and round %d's marker at %d", part, tapAt, s.rs.Number, markerAt)
	}
	// The round plays on both instances.
	testenv.Eventually(t, 3*time.Second, func() string {
		if code, _, body := call(t, "POST", b.URL()+"/api/tap", p.Token, "", nil); code != http.StatusAccepted {
			return fmt.Sprintf("a tap in play: %d %s", code, body)
		}
		return ""
	})
	tapN(t, a.URL(), q, 2)
}

// isFactRecord reports whether a record of game-taps is a fact.
func isFactRecord(m *sarama.ConsumerMessage) bool {
	for _, h := range m.Headers {
		if h != nil && string(h.Key) == stream.TypeHeader && len(h.Value) > 0 {
			return true
		}
	}
	return false
}

// A player tapping at full speed on two instances is kicked on one of
// them: every tap of theirs answered 202 was counted before the kick took
// it out (the kick's removedTaps), none after. (Before the kick was
// announced to every instance ahead of its logging, the other instance
// could answer 202 to taps logged after the kick, which the consumer skips.)
func TestKickRaceTwoInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	bases := twoInstances(t)
	for i := range 3 {
		v := join(t, bases[1], fmt.Sprintf("kicked%d", i))
		stop := tapLoad(bases, []joined{v}, 8)
		time.Sleep(300 * time.Millisecond)
		var kr struct {
			RemovedTaps int64 `json:"removedTaps"`
		}
		if code, body := admin(t, "POST", bases[i%2]+"/admin/kick/"+v.User.ID, "", &kr); code != http.StatusOK {
			t.Fatalf("kick: %d %s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
		answers := stop()
		codes := map[int]int{}
		for _, a := range answers {
			codes[a.code]++
		}
		t.Logf("answers %v; the kick removed %d taps", codes, kr.RemovedTaps)
		if int64(codes[http.StatusAccepted]) != kr.RemovedTaps {
			t.Fatalf("%d taps answered 202, but the kick removed %d", codes[http.StatusAccepted], kr.RemovedTaps)
		}
		if codes[http.StatusUnauthorized] == 0 {
			t.Fatal("no tap was refused after the kick")
		}
	}
}

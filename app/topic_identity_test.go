package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/app"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/store"
	"github.com/tapwars/tapwars/stream"
)

// recreateTopic deletes game-taps and creates it again with n partitions,
// as an operator would with kafka-topics.sh.
func recreateTopic(t *testing.T, b testenv.Broker, n int32) {
	t.Helper()
	admin := brokerAdmin(t, b)
	if err := admin.DeleteTopic(stream.Topic); err != nil {
		t.Fatalf("delete %s: %v", stream.Topic, err)
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		err := admin.CreateTopic(stream.Topic, &sarama.TopicDetail{NumPartitions: n, ReplicationFactor: -1}, false)
		if err != nil {
			return err.Error()
		}
		return ""
	})
}

// tapUntilAccepted taps n until an answer is 202 and returns how many taps
// were refused before it: a refused tap may still count when it was on its
// way to Kafka past TAP_TIMEOUT (the topic was away), so the test bounds
// the count by them instead of expecting it exactly.
func tapUntilAccepted(t *testing.T, base string, j joined, n int) (refused int64) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() string {
		code, _, body := call(t, "POST", base+"/api/tap", j.Token, fmt.Sprintf(`{"count":%d}`, n), nil)
		if code != http.StatusAccepted {
			refused += int64(n)
			return body
		}
		return ""
	})
	return refused
}

// Offsets belong to one topic: game-taps deleted and recreated under the
// same Redis, a tap answered 202 counts, in the round being played, and the
// log says what happened.
func TestRecreatedTopicCountsTaps(t *testing.T) {
	testenv.EachKafka(t, testRecreatedTopic)
}

func testRecreatedTopic(t *testing.T, kind string) {
	r, k := testenv.StartRedis(t), testenv.StartBroker(t, kind, 2, stream.Topic)
	var logs syncBuf
	m := admInstance(t, r, k, map[string]string{"LOG_LEVEL": "info"}, func(m *app.Main) { m.LogOutput = &logs })
	base := m.URL()
	a, b := join(t, base, "ann"), join(t, base, "bob")
	tapN(t, base, a, 4)
	tapN(t, base, b, 2)
	waitTotals(t, base, map[*joined]int64{&a: 4, &b: 2})
	if code, body := admin(t, "POST", base+"/admin/reset", "", nil); code != 200 {
		t.Fatalf("reset: %d %s", code, body)
	}
	tapN(t, base, a, 3)
	waitTotals(t, base, map[*joined]int64{&a: 3})

	recreateTopic(t, k, 2)
	c := joined{}
	testenv.Eventually(t, 30*time.Second, func() string { // a join needs the topic too
		code, _, body := call(t, "POST", base+"/api/join", "", `{"username":"cat"}`, &c)
		if code != http.StatusCreated {
			return body
		}
		return ""
	})
	want := map[*joined]int64{&a: 5, &b: 1, &c: 2}
	maybe := map[*joined]int64{}
	for j, n := range want {
		maybe[j] = tapUntilAccepted(t, base, *j, int(n))
	}
	want[&a] += 3 // this round's taps before the topic went
	// Every tap answered 202 counts, in the round being played.
	testenv.Eventually(t, 30*time.Second, func() string {
		for j, n := range want {
			got, _ := r.Client().ZScore(context.Background(), store.KeyLeaderboard, j.User.ID).Result()
			if int64(got) > n+maybe[j] {
				t.Fatalf("%s has %v taps: more than the %d answered 202 and %d refused", j.User.Username, got, n, maybe[j])
			}
			if int64(got) < n {
				return fmt.Sprintf("%s has %v taps, want %d (answered 202)", j.User.Username, got, n)
			}
		}
		return ""
	})
	if !strings.Contains(logs.String(), "game-taps is not the topic Redis's offsets belong to") {
		t.Fatalf("the log does not say the topic changed:\n%s", logs.String())
	}
}

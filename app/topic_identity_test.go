package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/app"
	"github.com/tapwars/tapwars/internal/testenv"
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

// tapAccepted taps n until one answer is 202 (a tap refused while the
// topic is away is not counted, and not retried here once accepted).
func tapAccepted(t *testing.T, base string, j joined, n int) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, func() string {
		code, _, body := call(t, "POST", base+"/api/tap", j.Token, fmt.Sprintf(`{"count":%d}`, n), nil)
		if code != http.StatusAccepted {
			return body
		}
		return ""
	})
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
	tapAccepted(t, base, a, 5)
	tapAccepted(t, base, b, 1)
	c := join(t, base, "cat")
	tapAccepted(t, base, c, 2)
	waitTotals(t, base, map[*joined]int64{&a: 8, &b: 1, &c: 2})
	if !strings.Contains(logs.String(), "game-taps is not the topic Redis's offsets belong to") {
		t.Fatalf("the log does not say the topic changed:\n%s", logs.String())
	}
}

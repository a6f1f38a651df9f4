package app_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// The longest legal name (24 characters, 320 bytes, with characters JSON
// escapes) goes through join, token, taps over HTTP and the socket, the
// game state, export and import, and the player taps on with the same
// token. A longer one is refused at the join with the limit named. A record
// over the consumer's limit that reaches the log anyway is a note at
// /readyz, which stays ready.
func TestLongestNameRoundTrips(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	m := admInstance(t, r, k, map[string]string{"TAP_RATE_LIMIT": "0"}, nil)
	base := m.URL()
	long, ann := join(t, base, testenv.LongestName), join(t, base, "ann")
	if long.User.Username != testenv.LongestName {
		t.Fatalf("joined as %q", long.User.Username)
	}
	tapN(t, base, long, 7)
	s := dialTaps(t, base, "?format=json", bearerHeader(long.Token))
	s.send(`{"count":3,"seq":1}`)
	if f := s.nextJSON(); f.Type != "ack" || f.Count != 3 {
		t.Fatalf("socket tap: %+v", f)
	}
	tapN(t, base, ann, 2)
	waitTotals(t, base, map[*joined]int64{&long: 10, &ann: 2})
	if lb := state(t, base).Leaderboard; len(lb) == 0 || lb[0].Username != testenv.LongestName {
		t.Fatalf("leaderboard: %+v", lb)
	}

	code, _, raw := admReq(t, nil, "GET", base+"/admin/export", "", bearer)
	if code != 200 || !strings.Contains(raw, `"userId"`) && !strings.Contains(raw, `"players"`) {
		t.Fatalf("export: %d %.200s", code, raw)
	}
	tapN(t, base, ann, 5) // undone by the import
	if code, body := admin(t, "POST", base+"/admin/import", raw, nil); code != 200 && code != 202 {
		t.Fatalf("import of the export: %d %s", code, body)
	}
	waitTotals(t, base, map[*joined]int64{&long: 10, &ann: 2})
	tapN(t, base, long, 1) // the same token
	waitTotals(t, base, map[*joined]int64{&long: 11, &ann: 2})

	// One character more is refused with the limit named.
	code, _, body := call(t, "POST", base+"/api/join", "", `{"username":"`+strings.Repeat("😀\u200d", 2269)+`😀"}`, nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "at most 320 bytes") {
		t.Fatalf("a 15.9 KB name: %d %.200s", code, body)
	}

	// Nothing was skipped: /readyz has no note. Then a join record over the
	// consumer's limit, written past tapwars' own check, becomes one.
	var ready map[string]string
	if code, _, body := call(t, "GET", base+"/readyz", "", "", &ready); code != 200 || ready["log"] != "" {
		t.Fatalf("readyz: %d %s", code, body)
	}
	big := game.User{ID: "big", Username: strings.Repeat("x", stream.MaxEventBytes), Team: game.Blue}
	v, err := stream.EncodeFact(game.Fact{Type: game.FactJoin, User: &big})
	if err != nil {
		t.Fatal(err)
	}
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	sp, err := sarama.NewSyncProducer(k.Addrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: stream.Topic, Key: sarama.StringEncoder(big.ID), Value: sarama.ByteEncoder(v),
		Headers: []sarama.RecordHeader{{Key: []byte(stream.TypeHeader), Value: []byte(game.FactJoin)}}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		ready = nil
		code, _, body := call(t, "GET", base+"/readyz", "", "", &ready)
		if code != 200 || !strings.Contains(ready["log"], "1 records tapwars wrote could not be applied") {
			return "readyz: " + body
		}
		return ""
	})
}

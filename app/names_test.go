package app_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/store"
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

	// Nothing was skipped: /readyz's log detail is ok. Then a join record over the
	// consumer's limit, written past tapwars' own check, becomes one.
	var ready map[string]string
	if code, _, body := call(t, "GET", base+"/readyz", "", "", &ready); code != 200 || ready["log"] != "ok" {
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

// Names are unique among the game's current players, compared after PRECIS
// normalisation, case folding and the UTS #39 confusable skeleton: the
// second "alice" gets 409 with a free name to try, on the API and the join
// page; "ALICE" and Greek "ΑΒΕ" for "ABE" are refused the same way; a
// kicked player's name is free again. Two instances taking the same name
// at once accept one. An import keeps the names taken, and a replay of the
// log into an empty Redis rebuilds the same names.
func TestNamesAreUniqueAmongPlayers(t *testing.T) {
	r, k := testenv.StartRedis(t), testenv.StartKafka(t, 2, stream.Topic)
	m1 := admInstance(t, r, k, nil, nil)
	m2 := admInstance(t, r, k, nil, nil)
	base := m1.URL()
	alice := join(t, base, "alice")
	join(t, base, "ABE")
	for _, tc := range []struct{ name, free string }{
		{"alice", "alice 2"}, {"Alice", "Alice 2"}, {"ALICE", "ALICE 2"}, {"ａｌｉｃｅ", "alice 2"}, {" alice ", "alice 2"},
		{"ΑΒΕ", "ΑΒΕ 2"}, {"АВЕ", "АВЕ 2"}, {"abe", "abe 2"},
	} {
		code, _, body := call(t, "POST", m2.URL()+"/api/join", "", fmt.Sprintf(`{"username":%q}`, tc.name), nil)
		want := fmt.Sprintf("%q is free", tc.free)
		if code != http.StatusConflict || !strings.Contains(body, "is taken") || !strings.Contains(body, strings.ReplaceAll(want, `"`, `\"`)) {
			t.Errorf("join %q: %d %s, want 409 suggesting %s", tc.name, code, body, want)
		}
	}
	// The suggestion is free indeed, and then the next one is offered.
	join(t, base, "alice 2")
	if code, _, body := call(t, "POST", base+"/api/join", "", `{"username":"Alice"}`, nil); code != 409 || !strings.Contains(body, `\"Alice 3\" is free`) {
		t.Fatalf("join Alice with alice 2 taken: %d %s", code, body)
	}
	// The join page says so, keeping what was typed.
	form := url.Values{"username": {"ALICE"}}
	res, err := http.Post(base+"/join", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 409 || !strings.Contains(string(page), "is taken") || !strings.Contains(string(page), "&#34;ALICE 3&#34; is free") {
		t.Fatalf("join page with a taken name: %d %.2000s", res.StatusCode, page)
	}
	// Blank names get a generated one, never a taken one.
	for range 5 {
		var j joined
		if code, _, body := call(t, "POST", base+"/api/join", "", `{"username":""}`, &j); code != 201 {
			t.Fatalf("join without a name: %d %s", code, body)
		}
	}

	// Two instances, one name, many joins at once: one player gets it.
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for i := range 20 {
		wg.Go(func() {
			b := []string{m1.URL(), m2.URL()}[i%2]
			code, _, _ := call(t, "POST", b+"/api/join", "", `{"username":"Race"}`, nil)
			codes <- code
		})
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[201] != 1 || got[409] != 19 {
		t.Fatalf("20 joins of one name on two instances: %v, want one 201 and 19 409", got)
	}

	// A kicked player's name is free again.
	if code, body := admin(t, "POST", base+"/admin/kick/"+alice.User.ID, "", nil); code != 200 {
		t.Fatalf("kick: %d %s", code, body)
	}
	join(t, base, "ALICE")

	// Export and import: the names stay taken.
	code, _, raw := admReq(t, nil, "GET", base+"/admin/export", "", bearer)
	if code != 200 {
		t.Fatalf("export: %d", code)
	}
	if code, body := admin(t, "POST", base+"/admin/import", raw, nil); code != 200 && code != 202 {
		t.Fatalf("import: %d %s", code, body)
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		if code, _, body := call(t, "POST", base+"/api/join", "", `{"username":"ΑΒΕ"}`, nil); code != 409 {
			return fmt.Sprintf("ΑΒΕ after the import: %d %s", code, body)
		}
		return ""
	})
	if code, _, body := call(t, "POST", base+"/api/join", "", `{"username":"alice"}`, nil); code != 409 {
		t.Fatalf("alice after the import: %d %s", code, body)
	}

	// The log rebuilds the same names into an empty Redis.
	r2 := testenv.StartRedis(t)
	m3 := admInstance(t, r2, k, map[string]string{"KAFKA_GROUP": "replay"}, nil)
	ctx := context.Background()
	want, err := r.Client().HGetAll(ctx, store.KeyNames).Result()
	if err != nil || len(want) == 0 {
		t.Fatalf("names: %v %v", want, err)
	}
	testenv.Eventually(t, 20*time.Second, func() string {
		got, err := r2.Client().HGetAll(ctx, store.KeyNames).Result()
		if err != nil || !maps.Equal(got, want) {
			return fmt.Sprintf("replayed names %v (%v), want %v", got, err, want)
		}
		return ""
	})
	for _, name := range []string{"Alice", "abe", "race", "alice 2"} {
		if code, _, body := call(t, "POST", m3.URL()+"/api/join", "", fmt.Sprintf(`{"username":%q}`, name), nil); code != 409 {
			t.Errorf("%q on the rebuilt state: %d %s", name, code, body)
		}
	}
}

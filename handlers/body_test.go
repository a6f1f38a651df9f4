package handlers

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tapwars/tapwars/auth"
	"github.com/tapwars/tapwars/game"
)

// A body that does not arrive in time is 408 with a message saying so, not
// "not valid JSON"; the server then closes the connection.
func TestSlowBodyIs408(t *testing.T) {
	e := New(nil, nil, nil, auth.NewSigner([]byte("0123456789abcdef0123456789abcdef")), slog.New(slog.DiscardHandler),
		Options{BodyTimeout: 300 * time.Millisecond})
	srv := httptest.NewServer(e)
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Headers promise 40 bytes; 10 come, then nothing.
	fmt.Fprintf(c, "POST /api/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"usernam")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "did not arrive in time") {
		t.Fatalf("slow body: %d %s", res.StatusCode, body)
	}
}

// The player cache holds at most its size, evicting the least recent.
func TestUserCacheIsBounded(t *testing.T) {
	uc := newUserCache(nil, 3)
	for i := range 10 {
		uc.add(userFor(fmt.Sprint(i)))
	}
	if n := uc.lru.Len(); n != 3 {
		t.Fatalf("cache holds %d players, want 3", n)
	}
	if _, ok := uc.lru.Get("9"); !ok {
		t.Fatal("the most recent player was evicted")
	}
	if _, ok := uc.lru.Get("0"); ok {
		t.Fatal("the oldest player is still held")
	}
}

func userFor(id string) game.User { return game.User{ID: id, Username: "p" + id, Team: game.Blue} }

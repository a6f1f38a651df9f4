package handlers

// The public listener's connection caps. Every TCP connection costs a file
// descriptor and a goroutine however little it does, so idle keep-alive
// connections, half-sent headers and live streams all count, per client
// address and for the instance, below the process's file limit. A
// connection over a cap is answered at once (429 per address, 503 for the
// instance, naming the setting) and closed, so Accept never waits and one
// address's flood never delays anyone else.

import (
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/tapwars/tapwars/metrics"
)

// ListenerLimits are the caps of LimitListener; 0 disables each.
type ListenerLimits struct {
	Total      int // open connections of the instance (MAX_TCP_CONNECTIONS)
	PerAddress int // open connections per client address (MAX_TCP_CONNECTIONS_PER_IP)
	// Proxies are exempt from PerAddress: their connections carry many
	// clients, told apart only later by X-Forwarded-For (the per-address
	// limits on joins and streams apply there); the proxy itself must cap
	// its clients' connections.
	Proxies Proxies
}

// LimitListener returns ln with l's caps applied to the connections it accepts.
func LimitListener(ln net.Listener, l ListenerLimits) net.Listener {
	return &limitListener{Listener: ln, lim: l, byKey: map[string]int{}}
}

type limitListener struct {
	net.Listener
	lim ListenerLimits

	mu    sync.Mutex
	n     int
	byKey map[string]int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := l.key(c.RemoteAddr())
		if status, msg := l.acquire(key); status != 0 {
			refuseConn(c, status, msg)
			continue
		}
		metrics.OpenConnections.Inc()
		return &limitedConn{Conn: c, l: l, key: key}, nil
	}
}

// key is the address a connection counts against ("" = only the total):
// IPv4, or the IPv6 /64, as the per-address limits of requests (clientKey).
func (l *limitListener) key(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || l.lim.PerAddress <= 0 || l.lim.Proxies.contains(ta.IP) {
		return ""
	}
	return addressKey(ta.IP)
}

// acquire takes a slot for key, or returns the status and message of the refusal.
func (l *limitListener) acquire(key string) (int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.Total > 0 && l.n >= l.lim.Total {
		metrics.LimitRefusals.WithLabelValues("tcp_connections_total").Inc()
		return 503, fmt.Sprintf("the server is full (%d open connections, MAX_TCP_CONNECTIONS); please try again in a moment", l.lim.Total)
	}
	if key != "" && l.byKey[key] >= l.lim.PerAddress {
		metrics.LimitRefusals.WithLabelValues("tcp_connections_per_address").Inc()
		return 429, fmt.Sprintf("too many open connections from your address (limit %d, MAX_TCP_CONNECTIONS_PER_IP): close some tabs", l.lim.PerAddress)
	}
	l.n++
	if key != "" {
		l.byKey[key]++
	}
	return 0, ""
}

func (l *limitListener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if key != "" {
		if l.byKey[key]--; l.byKey[key] <= 0 {
			delete(l.byKey, key)
		}
	}
}

// refuseConn answers a connection over a cap with a whole HTTP response and
// closes it. The write lands in the new socket's empty send buffer at once
// (the deadline only guards the odd case); a client whose request was
// already on its way may see a reset instead, as from any full server.
func refuseConn(c net.Conn, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	body := string(b) + "\n"
	reason := "Too Many Requests"
	if status == 503 {
		reason = "Service Unavailable"
	}
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		status, reason, len(body), body)
	_ = c.Close()
}

// limitedConn gives its slot back when closed (once; a hijacked live
// stream's connection too, when the stream ends).
type limitedConn struct {
	net.Conn
	l    *limitListener
	key  string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.release(c.key)
		metrics.OpenConnections.Dec()
	})
	return err
}

package testenv

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// When another process takes a port between its pick and Kafka's bind, the
// cluster starts again on other ports.
func TestApacheKafkaPortTaken(t *testing.T) {
	RequireApacheKafka(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	picks := 0
	pickPorts = func(t testing.TB, n int) []int {
		picks++
		ports := distinctPorts(t, n)
		if picks == 1 {
			ports[0] = taken // node 1's broker port
		}
		return ports
	}
	defer func() { pickPorts = distinctPorts }()
	k := StartApacheKafka(t, ApacheKafkaOptions{})
	if picks != 2 || strings.HasSuffix(k.Addrs()[0], ":"+strconv.Itoa(taken)) {
		t.Fatalf("picked ports %d times, brokers at %v (port %d was taken)", picks, k.Addrs(), taken)
	}
	k.CreateTopics(t, 1, "t1")
}

package app

import (
	"net/url"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/internal/testenv"
)

// The Sentinel form over TLS with ACL users: the Sentinels' credentials
// from the URL's user info, the primary's from the query, TLS with
// REDIS_TLS_CA_PATH's roots for both and each server's certificate checked
// against its own address; the shown URL hides both passwords.
func TestRedisURLSentinelTLSWithACL(t *testing.T) {
	pki := testenv.NewPKI(t)
	raw := "rediss://sent-user:sent-pass-1@sentinel-a:26379/2?master_name=mymaster&addr=sentinel-b:26379&username=app&password=app-pass-2"
	rc, err := newRedisConn(raw, pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.client.Close()
	o := rc.client.(*redis.Client).Options()
	if o.Username != "app" || o.Password != "app-pass-2" || o.DB != 2 || o.TLSConfig == nil || o.TLSConfig.RootCAs == nil || o.TLSConfig.ServerName != "" {
		t.Fatalf("primary options: user %q db %d tls %v", o.Username, o.DB, o.TLSConfig)
	}
	if strings.Join(rc.addrs, ",") != "sentinel-a:26379,sentinel-b:26379" {
		t.Fatalf("sentinels %v", rc.addrs)
	}
	if strings.Contains(rc.shown, "sent-pass-1") || strings.Contains(rc.shown, "app-pass-2") || !strings.Contains(rc.shown, "sent-user:xxxxx@") {
		t.Fatalf("shown URL %s", rc.shown)
	}
}

// One server: rediss:// with an ACL user, the CA applied; redis:// plain.
func TestRedisURLOneServer(t *testing.T) {
	pki := testenv.NewPKI(t)
	rc, err := newRedisConn("rediss://app:app-pass@redis.example:6380/1", pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.client.Close()
	o := rc.client.(*redis.Client).Options()
	if o.Addr != "redis.example:6380" || o.Username != "app" || o.Password != "app-pass" || o.DB != 1 ||
		o.TLSConfig == nil || o.TLSConfig.RootCAs == nil || o.TLSConfig.ServerName != "redis.example" {
		t.Fatalf("options %+v", o)
	}
	if rc.shown != "rediss://app:xxxxx@redis.example:6380/1" {
		t.Fatalf("shown %s", rc.shown)
	}
	for _, bad := range []string{"http://x:1", "redis://x:1?master_name=m&nonsense=1", "redis://x:1?nonsense=1"} {
		if _, err := newRedisConn(bad, ""); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	u, _ := url.Parse("redis://:only-pass@h:1")
	if got := redactURL(u); got != "redis://:xxxxx@h:1" {
		t.Fatalf("redact %s", got)
	}
}

package static

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
)

func get(t *testing.T, target string, header ...string) *http.Response {
	t.Helper()
	return do(t, http.MethodGet, target, header...)
}

func do(t *testing.T, method, target string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var assetNames = []string{"app.css", "app.js", "htmx-2.0.11.min.js", "htmx-ext-sse-2.2.4.js", "htmx-ext-ws-2.0.4.js"}

func TestURL(t *testing.T) {
	re := regexp.MustCompile(`^/static/([a-z0-9.\-]+)\.([0-9a-f]{12})(\.[a-z]+)$`)
	for _, name := range assetNames {
		u := URL(name)
		m := re.FindStringSubmatch(u)
		if m == nil || m[1]+m[3] != name {
			t.Fatalf("URL(%q) = %q", name, u)
		}
		// The version is the start of the SHA-256 of the file on disk.
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if want := hex.EncodeToString(sum[:])[:12]; m[2] != want {
			t.Errorf("URL(%q) version %s, want %s", name, m[2], want)
		}
		if URL(name) != u {
			t.Errorf("URL(%q) not stable", name)
		}
	}
	if u := URL("nope.js"); u != "/static/nope.js" {
		t.Errorf("URL(unknown) = %q", u)
	}
	if u := URL("/app.css"); u != URL("app.css") {
		t.Errorf("leading slash: %q", u)
	}
}

func TestContentTypes(t *testing.T) {
	for name, want := range map[string]string{
		"app.css":                   "text/css; charset=utf-8",
		"app.js":                    "text/javascript; charset=utf-8",
		"htmx-2.0.11.min.js":        "text/javascript; charset=utf-8",
		"htmx-ext-sse-2.2.4.js":     "text/javascript; charset=utf-8",
		"htmx-ext-ws-2.0.4.js":      "text/javascript; charset=utf-8",
		"licenses/htmx.org-LICENSE": "text/plain; charset=utf-8",
	} {
		res := get(t, URL(name))
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", name, res.StatusCode)
		}
		if got := res.Header.Get("Content-Type"); got != want {
			t.Errorf("%s: Content-Type %q, want %q", name, got, want)
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", name, got)
		}
		disk, _ := os.ReadFile(name)
		if b := body(t, res); b != string(disk) {
			t.Errorf("%s: body differs from file (%d vs %d bytes)", name, len(b), len(disk))
		}
	}
}

func TestCacheControl(t *testing.T) {
	const immutable = "public, max-age=31536000, immutable"
	cases := map[string]string{
		URL("app.css"):                                immutable,
		URL("favicon.svg"):                            immutable,
		"/static/app.css":                             "no-cache",
		"/static/app.css?v=old1":                      "no-cache",
		"/static/app.css?v=":                          "no-cache",
		"/static/app.css?v=" + assets["app.css"].hash: immutable,  // the older form
		"/static/app.0123456789ab.css":                "no-cache", // another build's name: this one, revalidated
	}
	for target, want := range cases {
		res := get(t, target)
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", target, res.StatusCode)
		}
		if got := res.Header.Get("Cache-Control"); got != want {
			t.Errorf("%s: Cache-Control %q, want %q", target, got, want)
		}
	}
}

func TestETag(t *testing.T) {
	res := get(t, "/static/app.js")
	etag := res.Header.Get("ETag")
	if !regexp.MustCompile(`^"[0-9a-f]{64}"$`).MatchString(etag) {
		t.Fatalf("ETag %q", etag)
	}
	res = get(t, "/static/app.js", "If-None-Match", etag)
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", res.StatusCode)
	}
	if res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("ETag") != etag {
		t.Errorf("304 headers: %v", res.Header)
	}
	res = get(t, "/static/app.js", "If-None-Match", `"other"`)
	if res.StatusCode != http.StatusOK {
		t.Errorf("stale If-None-Match: status %d, want 200", res.StatusCode)
	}
	res = do(t, http.MethodHead, URL("app.js"))
	if res.StatusCode != http.StatusOK || body(t, res) != "" || res.Header.Get("Content-Length") == "" {
		t.Errorf("HEAD: status %d, headers %v", res.StatusCode, res.Header)
	}
}

func TestNotFound(t *testing.T) {
	for _, target := range []string{
		"/static/", "/static/licenses", "/static/licenses/", "/static/nope.js",
		"/static/static.go", "/static/VENDORED.md", "/static/../static/app.css",
		"/static//app.css", "/app.css", "/other/app.css", "/static/app.css/",
	} {
		if res := get(t, target); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", target, res.StatusCode)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	res := do(t, http.MethodPost, URL("app.css"))
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
}

// The vendored files are the versions VENDORED.md says, not the legacy
// htmx 1.x extensions from htmx.org's dist/ext.
func TestVendoredVersions(t *testing.T) {
	htmx := body(t, get(t, URL("htmx-2.0.11.min.js")))
	if !strings.Contains(htmx, `version:"2.0.11"`) {
		t.Error(`htmx file lacks version:"2.0.11"`)
	}
	sse := body(t, get(t, URL("htmx-ext-sse-2.2.4.js")))
	if !strings.Contains(sse, "htmx.defineExtension('sse'") || !strings.Contains(sse, "htmx:sseOpen") {
		t.Error("sse extension looks wrong")
	}
	ws := body(t, get(t, URL("htmx-ext-ws-2.0.4.js")))
	if !strings.Contains(ws, "htmx.defineExtension('ws'") || !strings.Contains(ws, "htmx:wsOpen") {
		t.Error("ws extension looks wrong")
	}
	// The 1.x extensions call htmx.defineExtension too but use the old
	// "getInternalData(...).webSocket" without a wrapper and "hx-ws"
	// only; the 2.x ws extension has the ws-connect attribute.
	if !strings.Contains(ws, "ws-connect") || !strings.Contains(sse, "sse-connect") {
		t.Error("extensions are not the 2.x ones")
	}

	sums := map[string]string{
		"htmx-2.0.11.min.js":    "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717",
		"htmx-ext-sse-2.2.4.js": "3b5992a541619babefc4c169505af474df5c3039da51e59b96ccf9241ecd61d2",
		"htmx-ext-ws-2.0.4.js":  "dab17ec53b42135cc90ca3657a9be5e2aae6cceb3dbbf1952541aa4650fcb59e",
	}
	vendored, err := os.ReadFile("VENDORED.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range sums {
		b, _ := os.ReadFile(name)
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: sha256 %s, want %s (edited?)", name, got, want)
		}
		if !strings.Contains(string(vendored), want+"  "+name) {
			t.Errorf("VENDORED.md does not list %s with its sha256", name)
		}
	}
	for _, lic := range []string{"licenses/htmx.org-LICENSE", "licenses/htmx-ext-sse-LICENSE", "licenses/htmx-ext-ws-LICENSE"} {
		if res := get(t, "/static/"+lic); res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", lic, res.StatusCode)
		}
	}
}

// Text assets go compressed as the browser accepts (brotli before gzip),
// with Vary and an ETag per encoding; the body decodes to the file.
func TestCompression(t *testing.T) {
	disk, err := os.ReadFile("htmx-2.0.11.min.js")
	if err != nil {
		t.Fatal(err)
	}
	for accept, want := range map[string]string{
		"gzip, deflate, br, zstd": "br", "gzip": "gzip", "br;q=0, gzip": "gzip", "": "", "identity": "", "gzip;q=0": "",
	} {
		res := get(t, URL("htmx-2.0.11.min.js"), "Accept-Encoding", accept)
		raw := body(t, res)
		if got := res.Header.Get("Content-Encoding"); got != want {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", accept, got, want)
		}
		if res.Header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("Accept-Encoding %q: Vary %q", accept, res.Header.Get("Vary"))
		}
		var r io.Reader = strings.NewReader(raw)
		switch want {
		case "br":
			r = brotli.NewReader(r)
		case "gzip":
			if r, err = gzip.NewReader(r); err != nil {
				t.Fatal(err)
			}
		}
		plain, err := io.ReadAll(r)
		if err != nil || string(plain) != string(disk) {
			t.Fatalf("Accept-Encoding %q: body does not decode to the file (%v)", accept, err)
		}
		if want != "" {
			if len(raw) > len(disk)/2 {
				t.Errorf("%s: %d of %d bytes", want, len(raw), len(disk))
			}
			if !strings.HasSuffix(res.Header.Get("ETag"), "-"+want+`"`) {
				t.Errorf("%s: ETag %q", want, res.Header.Get("ETag"))
			}
		}
		t.Logf("Accept-Encoding %q: %d bytes (file %d)", accept, len(raw), len(disk))
	}
}

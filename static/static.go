// Package static embeds the browser assets of tapwars (hand-written app.css
// and app.js, plus the vendored htmx files listed in VENDORED.md) and serves
// them under /static/ with content-hash cache busting.
//
// Pages link assets through URL("app.css"), which yields
// "/static/app.css?v=<hash>". A request carrying the current hash may be
// cached forever (the URL changes whenever the content does); any other
// request is served with "no-cache" so browsers revalidate with the ETag.
package static

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed *.css *.js licenses
var files embed.FS

// Prefix is the URL path under which Handler serves the assets.
const Prefix = "/static/"

// asset is one embedded file with everything needed to serve it.
type asset struct {
	content     []byte
	hash        string // first 12 hex digits of the SHA-256 of content
	etag        string // strong ETag: quoted full SHA-256 hex
	contentType string
}

// assets maps a name relative to the package directory ("app.css",
// "licenses/htmx.org-LICENSE") to its asset. Built once at init; read-only
// afterwards, so it is safe for concurrent use.
var assets = load()

func load() map[string]*asset {
	m := make(map[string]*asset)
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		full := hex.EncodeToString(sum[:])
		m[name] = &asset{
			content:     b,
			hash:        full[:12],
			etag:        `"` + full + `"`,
			contentType: contentType(name),
		}
		return nil
	})
	if err != nil {
		panic("static: reading embedded assets: " + err.Error())
	}
	return m
}

// contentType is explicit rather than mime.TypeByExtension, whose answer
// depends on the host's mime tables.
func contentType(name string) string {
	if strings.HasSuffix(name, "LICENSE") {
		return "text/plain; charset=utf-8"
	}
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".md", ".txt":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// URL returns the cache-busting URL of an embedded asset, e.g.
// URL("app.css") = "/static/app.css?v=0123456789ab". For a name that is not
// embedded it returns the plain "/static/<name>" (which will 404), so a typo
// shows up as a broken asset rather than a crashed page.
func URL(name string) string {
	name = strings.TrimPrefix(name, "/")
	if a, ok := assets[name]; ok {
		return Prefix + name + "?v=" + a.hash
	}
	return Prefix + name
}

// Handler serves the embedded assets at Prefix + name. It answers GET and
// HEAD only, 404 for unknown names and for directories (there are no
// listings), and supports If-None-Match (304) and Range via
// http.ServeContent. Mount it on the full path, e.g. with Echo:
//
//	e.GET("/static/*", echo.WrapHandler(static.Handler()))
//	e.HEAD("/static/*", echo.WrapHandler(static.Handler()))
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	a := assets[name]
	if !ok || a == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", a.etag)
	if r.URL.Query().Get("v") == a.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	// A zero modtime keeps ServeContent from sending Last-Modified; the ETag
	// is the validator.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.content))
}

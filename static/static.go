// Package static embeds the browser assets of tapwars (hand-written app.css
// and app.js, plus the vendored htmx files listed in VENDORED.md) and serves
// them under /static/ with content-hash cache busting.
//
// Pages link assets through URL("app.css"), which yields
// "/static/app.<hash>.css", a content-hashed name: it may be cached for a
// year (immutable), since the name changes whenever the content does. The
// plain name (and the older "?v=<hash>" form) is served with "no-cache", so
// browsers revalidate with the ETag. Text assets are sent compressed
// (brotli or gzip, as the browser accepts), compressed once on first use.
package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/andybalholm/brotli"
)

//go:embed *.css *.js *.svg licenses
var files embed.FS

// Prefix is the URL path under which Handler serves the assets.
const Prefix = "/static/"

// asset is one embedded file with everything needed to serve it.
type asset struct {
	content     []byte
	hash        string // first 12 hex digits of the SHA-256 of content
	etag        string // strong ETag: quoted full SHA-256 hex
	contentType string
	hashed      string // the content-hashed name, "app.0123456789ab.css"

	packOnce sync.Once // br and gz are made on first use
	br, gz   []byte    // compressed content; nil when not worth it
}

// packed returns the content in the encoding the request accepts best
// ("br", "gzip" or "" for identity).
func (a *asset) packed(acceptEncoding string) ([]byte, string) {
	if !compressible(a.contentType) || !(accepts(acceptEncoding, "br") || accepts(acceptEncoding, "gzip")) {
		return a.content, ""
	}
	a.packOnce.Do(a.pack)
	switch {
	case a.br != nil && accepts(acceptEncoding, "br"):
		return a.br, "br"
	case a.gz != nil && accepts(acceptEncoding, "gzip"):
		return a.gz, "gzip"
	}
	return a.content, ""
}

func (a *asset) pack() {
	var b bytes.Buffer
	bw := brotli.NewWriterLevel(&b, brotli.BestCompression)
	if _, err := bw.Write(a.content); err == nil && bw.Close() == nil && b.Len() < len(a.content) {
		a.br = bytes.Clone(b.Bytes())
	}
	b.Reset()
	gw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if _, err := gw.Write(a.content); err == nil && gw.Close() == nil && b.Len() < len(a.content) {
		a.gz = bytes.Clone(b.Bytes())
	}
}

func compressible(contentType string) bool {
	return strings.HasPrefix(contentType, "text/") || strings.HasPrefix(contentType, "image/svg+xml")
}

// accepts reports whether an Accept-Encoding header value takes coding
// (and does not refuse it with q=0).
func accepts(header, coding string) bool {
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), coding) {
			continue
		}
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				return false
			}
		}
		return true
	}
	return false
}

// unhashedName takes a 12-hex-digit hash out of a hashed name ("app.<hash>.css"
// -> "app.css"), or returns "".
func unhashedName(name string) string {
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	i := strings.LastIndexByte(stem, '.')
	if i < 0 || len(stem)-i-1 != 12 {
		return ""
	}
	for _, c := range stem[i+1:] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ""
		}
	}
	return stem[:i] + ext
}

// hashedName puts hash before name's extension: "app.css" ->
// "app.<hash>.css" ("htmx-2.0.11.min.js" -> "htmx-2.0.11.min.<hash>.js").
func hashedName(name, hash string) string {
	ext := path.Ext(name)
	return strings.TrimSuffix(name, ext) + "." + hash + ext
}

// assets maps a name relative to the package directory ("app.css",
// "licenses/htmx.org-LICENSE") to its asset, and byHashed the
// content-hashed names to the same assets. Built once at init; read-only
// afterwards (but for each asset's packOnce), so safe for concurrent use.
var assets = load()

var byHashed = func() map[string]*asset {
	m := make(map[string]*asset, len(assets))
	for _, a := range assets {
		m[a.hashed] = a
	}
	return m
}()

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
			hashed:      hashedName(name, full[:12]),
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
	case ".svg":
		return "image/svg+xml"
	case ".md", ".txt":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// URL returns the content-hashed URL of an embedded asset, e.g.
// URL("app.css") = "/static/app.0123456789ab.css". For a name that is not
// embedded it returns the plain "/static/<name>" (which will 404), so a typo
// shows up as a broken asset rather than a crashed page.
func URL(name string) string {
	name = strings.TrimPrefix(name, "/")
	if a, ok := assets[name]; ok {
		return Prefix + a.hashed
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
	a, immutable := byHashed[name], true
	if a == nil {
		a = assets[name]
		immutable = a != nil && r.URL.Query().Get("v") == a.hash // the older form
	}
	if a == nil {
		// Another version's hashed name (a page from an instance running
		// another build, during a rolling deploy): this version, revalidated.
		a = assets[unhashedName(name)]
	}
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
	if immutable {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	body, coding := a.packed(r.Header.Get("Accept-Encoding"))
	etag := a.etag
	if compressible(a.contentType) {
		h.Add("Vary", "Accept-Encoding")
	}
	if coding != "" {
		h.Set("Content-Encoding", coding)
		etag = strings.TrimSuffix(etag, `"`) + "-" + coding + `"` // one ETag per representation
	}
	h.Set("ETag", etag)
	// A zero modtime keeps ServeContent from sending Last-Modified; the ETag
	// is the validator.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}

package handlers

import (
	"fmt"
	"net"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Proxies are the reverse proxies (TRUSTED_PROXIES) whose forwarding
// headers are believed: X-Forwarded-For names the client for the limits,
// X-Forwarded-Proto says whether the client used TLS (the cookies' Secure
// flag, HSTS). From anyone else these headers are ignored.
type Proxies struct{ nets []*net.IPNet }

// ParseProxies reads addresses and CIDR ranges.
func ParseProxies(list []string) (Proxies, error) {
	var p Proxies
	for _, t := range list {
		_, n, err := net.ParseCIDR(t)
		if err != nil {
			ip := net.ParseIP(t)
			if ip == nil {
				return Proxies{}, fmt.Errorf("trusted proxy %q is neither an address nor a CIDR range", t)
			}
			bits := 32
			if ip.To4() == nil {
				bits = 128
			}
			n = &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}
		}
		p.nets = append(p.nets, n)
	}
	return p, nil
}

// IPExtractor finds the client address: the connection's peer address, or
// with trusted proxies the X-Forwarded-For entry added by the nearest
// untrusted hop.
func (p Proxies) IPExtractor() echo.IPExtractor {
	if len(p.nets) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range p.nets {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// trusts reports whether the request's TCP peer is a trusted proxy.
func (p Proxies) trusts(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return p.contains(net.ParseIP(host))
}

// contains reports whether ip is a trusted proxy's.
func (p Proxies) contains(ip net.IP) bool {
	for _, n := range p.nets {
		if ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

// forwardedHeaders are the headers by which a proxy describes the client's
// request; Echo reads them for c.Scheme() and its Secure middleware.
var forwardedHeaders = []string{
	echo.HeaderXForwardedProto, echo.HeaderXForwardedProtocol, echo.HeaderXForwardedSsl,
	echo.HeaderXUrlScheme, "X-Forwarded-Host", "Forwarded",
}

// dropUntrustedForwarding removes the forwarding headers of requests that
// did not come through a trusted proxy, before anything reads them.
func (p Proxies) dropUntrustedForwarding(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !p.trusts(c.Request()) {
			for _, h := range forwardedHeaders {
				c.Request().Header.Del(h)
			}
		}
		return next(c)
	}
}

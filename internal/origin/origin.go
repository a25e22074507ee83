// Package origin checks web origins as configured for CORS and WebSocket
// checks: the services compare them with the Origin header as strings, so
// an entry must be written exactly as browsers send it.
package origin

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/grpcchatter/grpcchatter/internal/hostname"
)

// Check returns why s is not an origin exactly as a browser sends it in
// the Origin header, or nil if it is: http or https, lower case, a
// host, and a port only if it is not the scheme's default. The service
// compares origins as strings, so an entry in any other form would never
// match and silently allow nothing.
func Check(s string) error {
	scheme, rest, ok := strings.Cut(s, "://")
	switch {
	case !ok:
		return errors.New("no scheme://")
	case scheme != "http" && scheme != "https":
		return errors.New("the scheme must be http or https")
	case strings.HasSuffix(rest, "/"):
		return errors.New("a trailing slash is a path; browsers send none")
	case strings.Contains(rest, "/"):
		return errors.New("an origin has no path")
	case strings.ContainsAny(rest, "?#"):
		return errors.New("an origin has no query or fragment")
	case strings.Contains(rest, "@"):
		return errors.New("an origin has no user name or password")
	case rest != strings.ToLower(rest):
		return errors.New("browsers send it in lower case")
	case strings.Count(rest, ":") > 1 && !strings.HasPrefix(rest, "["):
		return errors.New("an IPv6 address must be in brackets")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	host, port := u.Hostname(), u.Port()
	ip := net.ParseIP(host)
	switch {
	case host == "":
		return errors.New("no host")
	case ip != nil && strings.Contains(host, ":") && host != ip.String():
		return errors.New("browsers send an IPv6 address in its shortest form (RFC 5952)")
	case ip == nil && !hostname.Valid(host):
		return errors.New("not a valid host name")
	}
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return errors.New("empty port")
		}
		return nil
	}
	n, err := strconv.Atoi(port)
	switch {
	case err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port:
		return errors.New("the port must be an integer from 1 to 65535 without leading zeros")
	case scheme == "http" && n == 80, scheme == "https" && n == 443:
		return errors.New("browsers leave out the default port " + port)
	}
	return nil
}

// List is a setting of comma-separated origins, as envconfig decodes it:
// the blanks around and between entries are dropped, so that "a, b,"
// means [a b]. Check each entry.
type List []string

// Decode implements envconfig.Decoder.
func (l *List) Decode(v string) error {
	*l = nil
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

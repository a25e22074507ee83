// Package hostname checks the host part of the addresses the services
// listen on, so that both refuse the same typos at start, naming the key,
// rather than later at listen.
package hostname

import (
	"net"
	"strings"
)

// Valid reports whether h is an IP address or a well-formed DNS host name:
// at most 253 bytes, dot-separated labels of 1 to 63 letters, digits and
// inner hyphens, with an optional final dot. A name whose last label is
// all digits is refused: it is a mistyped IP address, such as 256.0.0.1
// or 10.0.0. The empty string is not valid; a caller for which it means
// "every interface" checks for it first.
func Valid(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(strings.TrimSuffix(h, "."), ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return !allDigits(labels[len(labels)-1])
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

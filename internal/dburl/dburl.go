// Package dburl handles database URLs as both services log them.
package dburl

import (
	"net/url"
	"strings"
)

// Redacted hides the password of a database URL, both the user:pass@
// form and a password query parameter (which libpq and pgx accept, in any
// case of the key); an unparsable URL is hidden entirely, since it might
// still contain one.
func Redacted(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "***"
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "***"
	}
	for k := range q {
		if strings.EqualFold(k, "password") {
			q[k] = []string{"xxxxx"}
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

package logging

import (
	"net/url"
	"regexp"
	"strings"
)

// secretParams are query parameter names whose values are credentials (compared without
// case); names that contain "token", "secret", "password" or "signature" are too.
var secretParams = []string{"key", "api_key", "apikey", "sig", "auth", "code", "credential", "x-goog-credential"}

func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"token", "secret", "password", "signature"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	for _, p := range secretParams {
		if n == p {
			return true
		}
	}
	return false
}

// SanitizeURL returns raw without its credentials, as go-github's sanitizeURL does: the
// userinfo and the values of query parameters that carry secrets (token, access_token, key,
// secret, sig, signature, …) become REDACTED. A string that is not a URL is returned as is.
func SanitizeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return raw
	}
	changed := false
	if u.User != nil {
		u.User = url.User("REDACTED")
		changed = true
	}
	if u.RawQuery != "" {
		q := u.Query()
		for name := range q {
			if secretParam(name) {
				q[name] = []string{"REDACTED"}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	if !changed {
		return raw
	}
	return u.String()
}

var urlInText = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>\\]+`)

// SanitizeText sanitizes every URL in a text (an error message, a log line).
func SanitizeText(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, SanitizeURL)
}

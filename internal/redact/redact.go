// Package redact removes secrets (keys, RPC URLs that carry credentials) from text
// before it is logged, stored or shown.
package redact

import (
	"regexp"
	"sort"
	"strings"
)

// Mask replaces a secret.
const Mask = "[REDACTED]"

// minSecret is the shortest value treated as a secret: shorter ones would mask
// ordinary words.
const minSecret = 6

// userinfoRE finds credentials in URLs (https://user:pass@host).
var userinfoRE = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s:]+:[^/@\s]+@`)

// Redactor masks a fixed set of secrets, and credentials in any URL.
type Redactor struct {
	secrets []string
	r       *strings.Replacer
}

// New returns a redactor of the given secrets. A key is masked with and without its
// 0x prefix.
func New(secrets ...string) *Redactor {
	set := map[string]bool{}
	for _, s := range secrets {
		s = strings.TrimSpace(s)
		if len(s) < minSecret {
			continue
		}
		set[s] = true
		if strings.HasPrefix(s, "0x") && len(s) > minSecret+2 {
			set[s[2:]] = true
		}
	}
	list := make([]string, 0, len(set))
	for s := range set {
		list = append(list, s)
	}
	// Longest first, so that a secret containing another is masked whole.
	sort.Slice(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	pairs := make([]string, 0, 2*len(list))
	for _, s := range list {
		pairs = append(pairs, s, Mask)
	}
	return &Redactor{secrets: list, r: strings.NewReplacer(pairs...)}
}

// String masks secrets in s.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	if len(r.secrets) > 0 {
		s = r.r.Replace(s)
	}
	return userinfoRE.ReplaceAllString(s, "${1}"+Mask+"@")
}

// Bytes masks secrets in b.
func (r *Redactor) Bytes(b []byte) []byte {
	return []byte(r.String(string(b)))
}

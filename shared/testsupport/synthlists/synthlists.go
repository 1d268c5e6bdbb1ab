// Package synthlists generates realistic synthetic blocklists for benchmarks: names made of
// generated words and real top-level domains, drawn with a skew so that popular names appear
// in many sources, about 10% of them subdomains of other names, 0.3% invalid and 1% in upper
// case; severities mostly suspend; a third with comments. Half the sources are FediBlockHole
// CSV (CRLF, True/False), half Mastodon CSV. The output depends only on the arguments.
package synthlists

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

var (
	syllables = strings.Fields("ba be bi bo bu ka ke ki ko ku ma me mi mo mu na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu za ze zi zo zu fox cat dog owl sun moon star tree leaf rock sea sky fire ice wolf bear toot fedi mast odon social verse")
	tlds      = strings.Fields("social com net org xyz online club de jp moe space cafe io st town zone lol fun party uk eu")
	prefixes  = strings.Fields("mastodon social pl misskey m masto akko fedi")
	comments  = []string{"spam", "harassment, hate speech", "racism", "freeze peach", "csam", "iftas:hate-speech;online-harassment", "no moderation, spam", "\"quoted\", trolls"}
)

// MastodonHeader and FBHHeader are the header rows of the two CSV flavours generated.
const (
	MastodonHeader = "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate"
	FBHHeader      = "domain,severity,reject_media,reject_reports,public_comment,obfuscate"
)

// Sources builds n CSV sources of rows rows each (even indexes FediBlockHole CSV, odd
// indexes Mastodon CSV), each in a slice of its exact size, as a fetched body would be.
func Sources(n, rows int, seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	word := func() string {
		var sb strings.Builder
		for k := 2 + r.IntN(3); k > 0; k-- {
			sb.WriteString(syllables[r.IntN(len(syllables))])
		}
		return sb.String()
	}
	pool := make([]string, 4*rows)
	for i := range pool {
		d := word() + "." + tlds[r.IntN(len(tlds))]
		if i > 100 && r.IntN(10) == 0 {
			d = prefixes[r.IntN(len(prefixes))] + "." + pool[r.IntN(i)]
		}
		pool[i] = d
	}
	out := make([][]byte, n)
	for s := range out {
		var buf bytes.Buffer
		mastodon := s%2 == 1
		eol, t, f := "\r\n", "True", "False"
		if mastodon {
			buf.WriteString(MastodonHeader + "\n")
			eol, t, f = "\n", "true", "false"
		} else {
			buf.WriteString(FBHHeader + "\r\n")
		}
		b := func(p int) string {
			if r.IntN(p) == 0 {
				return t
			}
			return f
		}
		seen := make(map[int]bool, rows)
		for len(seen) < rows {
			u := r.Float64()
			i := int(u * u * float64(len(pool)))
			if seen[i] {
				continue
			}
			seen[i] = true
			d := pool[i]
			switch x := r.IntN(1000); {
			case x < 3:
				d = strings.Replace(d, ".", " .", 1) // invalid: inner space
			case x < 13:
				d = strings.ToUpper(d)
			}
			sev := "suspend"
			switch x := r.IntN(100); {
			case x < 8:
				sev = "silence"
			case x < 10:
				sev = "noop"
			}
			c := ""
			if r.IntN(3) == 0 {
				c = comments[r.IntN(len(comments))]
				if strings.ContainsAny(c, ",\"") {
					c = `"` + strings.ReplaceAll(c, `"`, `""`) + `"`
				}
			}
			fmt.Fprintf(&buf, "%s,%s,%s,%s,%s,%s%s", d, sev, b(20), b(20), c, b(4), eol)
		}
		out[s] = bytes.Clone(buf.Bytes())
	}
	return out
}

// WriteFiles writes Sources(n, rows, seed) to dir as source-NN.csv and returns the paths.
func WriteFiles(dir string, n, rows int, seed uint64) ([]string, error) {
	var paths []string
	for i, b := range Sources(n, rows, seed) {
		p := filepath.Join(dir, fmt.Sprintf("source-%02d.csv", i))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// PeakRSS is the process's peak resident set size in bytes since the last ResetPeakRSS
// (VmHWM), or 0 when unknown (not Linux).
func PeakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

// ResetPeakRSS resets the kernel's peak-RSS mark of this process (Linux; no-op elsewhere).
func ResetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

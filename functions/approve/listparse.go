package approve

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"strings"
)

// Formats of domain lists (approve_domain_sources, reject_domain_sources).
const (
	// FormatText is one domain per line; "#" starts a comment ("//" lines too). "@domain",
	// ".domain" and "*.domain" are read as domain. tootctl email-domain-blocks list output
	// (children indented) reads as text too.
	FormatText = "text"
	// FormatCSV is CSV with a domain column at any position: named domain, email_domain or
	// #domain in a header row, or without a header the column whose values are domains.
	FormatCSV = "csv"
	// FormatMastodon is Mastodon's email-domain block export: the JSON array that
	// GET /api/v1/admin/email_domain_blocks answers (Admin::EmailDomainBlock entities). Blocks
	// that only require approval (allow_with_approval) are left out.
	FormatMastodon = "mastodon_email_domain_blocks"
)

// ListFormats are the format values a list source accepts ("" detects).
var ListFormats = []string{FormatText, FormatCSV, FormatMastodon}

// Skip reasons of list entries.
const (
	skipInvalid      = "invalid_domain"
	skipTopLevel     = "top_level_domain" // a bare TLD would decide a whole namespace
	skipApprovalOnly = "requires_approval_only"
	skipDuplicate    = "duplicate"
)

// DomainList is a parsed list: its usable domains (normalised, unique, in file order), how many
// entries it had and why some were left out.
type DomainList struct {
	Format  string
	Domains []string
	Rows    int
	Skipped map[string]int
}

// DetectListFormat guesses a list's format from its bytes (then its URL's extension): a JSON
// array is Mastodon's export, lines with commas are CSV, anything else text.
func DetectListFormat(data []byte, rawURL string) string {
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	if bytes.HasPrefix(trimmed, []byte("[")) {
		return FormatMastodon
	}
	sc := bufio.NewScanner(bytes.NewReader(trimmed))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 0; sc.Scan() && n < 20; {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "//") || (strings.HasPrefix(line, "#") && !strings.Contains(line, ",")) {
			continue
		}
		n++
		if strings.Contains(line, ",") {
			return FormatCSV
		}
	}
	if u, err := url.Parse(rawURL); err == nil {
		switch strings.ToLower(path.Ext(u.Path)) {
		case ".csv":
			return FormatCSV
		case ".json":
			return FormatMastodon
		}
	}
	return FormatText
}

// ParseDomainList reads a list in the given format ("" detects it).
func ParseDomainList(data []byte, format, rawURL string) (*DomainList, error) {
	if format == "" {
		format = DetectListFormat(data, rawURL)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	l := &DomainList{Format: format, Skipped: map[string]int{}}
	seen := map[string]bool{}
	add := func(raw string) {
		l.Rows++
		d, reason := listEntry(raw)
		switch {
		case reason != "":
			l.Skipped[reason]++
		case seen[d]:
			l.Skipped[skipDuplicate]++
		default:
			seen[d] = true
			l.Domains = append(l.Domains, d)
		}
	}
	var err error
	switch format {
	case FormatText:
		err = parseText(data, add)
	case FormatCSV:
		err = parseCSV(data, add)
	case FormatMastodon:
		err = parseMastodonExport(data, add, l)
	default:
		return nil, fmt.Errorf("unknown list format %q", format)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", format, err)
	}
	return l, nil
}

// listEntry normalises one entry, or says why it is left out.
func listEntry(raw string) (string, string) {
	s := strings.TrimSpace(raw)
	s = strings.TrimPrefix(s, "@")
	d, err := NormalizeSuffix(s)
	switch {
	case err != nil:
		return "", skipInvalid
	case !strings.Contains(d, "."):
		return "", skipTopLevel
	}
	return d, ""
}

func parseText(data []byte, add func(string)) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		add(line)
	}
	return sc.Err()
}

// domainHeaders are the header names of a CSV's domain column.
var domainHeaders = []string{"domain", "#domain", "email_domain", "email domain", "domain_name"}

func parseCSV(data []byte, add func(string)) error {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	r.Comment = 0
	var recs [][]string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if blankRecord(rec) || (strings.HasPrefix(strings.TrimSpace(rec[0]), "#") && headerColumn(rec) < 0) {
			continue // a blank line or a comment
		}
		recs = append(recs, rec)
	}
	if len(recs) == 0 {
		return nil
	}
	col := headerColumn(recs[0])
	if col >= 0 {
		recs = recs[1:]
	} else if col = guessColumn(recs); col < 0 {
		return errors.New("no domain column: name it domain in a header row")
	}
	for _, rec := range recs {
		if col < len(rec) {
			add(rec[col])
		} else {
			add("")
		}
	}
	return nil
}

func blankRecord(rec []string) bool {
	return !slices.ContainsFunc(rec, func(v string) bool { return strings.TrimSpace(v) != "" })
}

func headerColumn(rec []string) int {
	for i, h := range rec {
		if slices.Contains(domainHeaders, strings.ToLower(strings.TrimSpace(h))) {
			return i
		}
	}
	return -1
}

// guessColumn picks, in a file without a header, the column whose values are most often
// domains (with a dot) in the first rows; ties go to the leftmost.
func guessColumn(recs [][]string) int {
	best, bestN := -1, 0
	score := map[int]int{}
	for _, rec := range recs[:min(len(recs), 50)] {
		for i, v := range rec {
			if _, reason := listEntry(v); reason == "" {
				score[i]++
			}
		}
	}
	for i := 0; i < 64; i++ {
		if score[i] > bestN {
			best, bestN = i, score[i]
		}
	}
	return best
}

func parseMastodonExport(data []byte, add func(string), l *DomainList) error {
	var blocks []struct {
		Domain            *string `json:"domain"`
		AllowWithApproval bool    `json:"allow_with_approval"`
	}
	if err := json.Unmarshal(data, &blocks); err != nil {
		return fmt.Errorf("not a JSON array of email-domain blocks: %w", err)
	}
	for _, b := range blocks {
		switch {
		case b.Domain == nil:
			l.Rows++
			l.Skipped[skipInvalid]++
		case b.AllowWithApproval:
			l.Rows++
			l.Skipped[skipApprovalOnly]++
		default:
			add(*b.Domain)
		}
	}
	return nil
}

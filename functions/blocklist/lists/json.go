package lists

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// lineCounter maps increasing byte offsets of data to 1-based line numbers.
type lineCounter struct {
	data []byte
	pos  int
	line int
}

// at returns the line of the first byte at or after off that is not whitespace, ',' or ':'
// (a JSON decoder's offset points just past the previous token).
func (lc *lineCounter) at(off int64) int {
	o := int(off)
	for o < len(lc.data) {
		switch lc.data[o] {
		case ' ', '\t', '\r', '\n', ',', ':':
			o++
			continue
		}
		break
	}
	if lc.line == 0 {
		lc.line = 1
	}
	if o < lc.pos {
		return lc.line
	}
	lc.line += bytes.Count(lc.data[lc.pos:o], []byte{'\n'})
	lc.pos = o
	return lc.line
}

// jsonScalar renders a JSON value as the string a CSV cell would hold: strings unquoted,
// null (or absent) as "", true/false/numbers as written. Objects and arrays come back with
// ok=false.
func jsonScalar(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		return s, true
	case '{', '[':
		return "", false
	}
	return string(raw), true
}

// jsonBlock is one object of a Mastodon admin (json) or public (mastodon_api_public) list.
// Other keys (id, created_at, ...) are ignored.
type jsonBlock struct {
	Domain         json.RawMessage `json:"domain"`
	Severity       json.RawMessage `json:"severity"`
	RejectMedia    json.RawMessage `json:"reject_media"`
	RejectReports  json.RawMessage `json:"reject_reports"`
	Obfuscate      json.RawMessage `json:"obfuscate"`
	PublicComment  json.RawMessage `json:"public_comment"`
	PrivateComment json.RawMessage `json:"private_comment"`
	Comment        json.RawMessage `json:"comment"`
	Digest         json.RawMessage `json:"digest"`
}

// parseJSONList reads a JSON array of domain-block objects: Mastodon's admin API (json) or
// public API (mastodon_api_public; "comment" is read as public_comment). Both formats accept
// both shapes. A bare string element is a domain to suspend. A missing "severity" key means
// suspend and a null one noop, as in FBH. The array must be complete: a truncated download
// is an error, not a shorter list.
func (p *parser) parseJSONList(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		if d == '{' && bytes.Contains(data, []byte(`"blocks"`)) {
			return errors.New("a JSON object, not a list: this looks like rapidblock.json")
		}
		return errors.New("expected a JSON array of domain blocks")
	}
	lc := lineCounter{data: data}
	for dec.More() {
		line := lc.at(dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("line %d: %v", line, err)
		}
		p.jsonItem(line, raw)
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("unterminated JSON array: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON array")
	}
	return nil
}

func (p *parser) jsonItem(line int, raw json.RawMessage) {
	raw = bytes.TrimSpace(raw)
	switch raw[0] {
	case '"':
		s, _ := jsonScalar(raw)
		p.row(line, rawRow{domain: s, noSeverity: true})
		return
	case '{':
	default:
		p.list.Rows++
		p.skip(line, string(truncate(raw, 80)), ReasonBadRow, "not a domain-block object")
		return
	}
	var jb jsonBlock
	if err := json.Unmarshal(raw, &jb); err != nil {
		p.list.Rows++
		p.skip(line, string(truncate(raw, 80)), ReasonBadRow, err.Error())
		return
	}
	dom, ok := jsonScalar(jb.Domain)
	if !ok || len(bytes.TrimSpace(jb.Domain)) == 0 || bytes.TrimSpace(jb.Domain)[0] != '"' {
		p.list.Rows++
		p.skip(line, string(truncate(raw, 80)), ReasonBadRow, "no \"domain\" string")
		return
	}
	r := rawRow{domain: dom}
	if jb.Severity == nil {
		r.noSeverity = true
	} else if r.severity, ok = jsonScalar(jb.Severity); !ok {
		r.severity = string(truncate(jb.Severity, 40))
	}
	badBool := "{object}" // not a boolean, so row() reports bad_boolean if the field is imported
	if r.rejectMedia, ok = jsonScalar(jb.RejectMedia); !ok {
		r.rejectMedia = badBool
	}
	if r.rejectReports, ok = jsonScalar(jb.RejectReports); !ok {
		r.rejectReports = badBool
	}
	if r.obfuscate, ok = jsonScalar(jb.Obfuscate); !ok {
		r.obfuscate = badBool
	}
	r.publicComment, _ = jsonScalar(jb.PublicComment)
	if r.publicComment == "" {
		r.publicComment, _ = jsonScalar(jb.Comment)
	}
	r.privateComment, _ = jsonScalar(jb.PrivateComment)
	r.digest, _ = jsonScalar(jb.Digest)
	p.row(line, r)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// rapidBlockEntry is the value of one "blocks" member of a RapidBlock v1 list. tags,
// dateRequested and dateDecided are ignored, as FBH does.
type rapidBlockEntry struct {
	IsBlocked json.RawMessage `json:"isBlocked"`
	Reason    json.RawMessage `json:"reason"`
}

// parseRapidBlockJSON reads RapidBlock v1 JSON: {"@spec": ..., "publishedAt": ...,
// "blocks": {"domain": {"isBlocked": bool, "reason": "...", ...}}}. isBlocked true is a
// suspend, false a noop; reason becomes public_comment when imported. Entries keep the
// order of the file.
func (p *parser) parseRapidBlockJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("expected a RapidBlock JSON object")
	}
	lc := lineCounter{data: data}
	found := false
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := kt.(string)
		if key != "blocks" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		found = true
		t, err := dec.Token()
		if err != nil {
			return err
		}
		if t == nil {
			continue // "blocks": null
		}
		if d, ok := t.(json.Delim); !ok || d != '{' {
			return errors.New(`"blocks" is not an object`)
		}
		for dec.More() {
			line := lc.at(dec.InputOffset())
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			dom, _ := kt.(string)
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return fmt.Errorf("line %d: %v", line, err)
			}
			p.rapidBlockItem(line, dom, raw)
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("unterminated JSON object: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	if !found {
		return errors.New(`no "blocks" object: not a RapidBlock list`)
	}
	return nil
}

func (p *parser) rapidBlockItem(line int, dom string, raw json.RawMessage) {
	var e rapidBlockEntry
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &e) != nil {
		p.list.Rows++
		p.skip(line, dom, ReasonBadRow, "entry is not an object")
		return
	}
	if e.IsBlocked == nil {
		p.list.Rows++
		p.skip(line, dom, ReasonBadRow, "no isBlocked")
		return
	}
	s, ok := jsonScalar(e.IsBlocked)
	blocked, err := ParseBool(s)
	if !ok || err != nil {
		p.list.Rows++
		p.skip(line, dom, ReasonBadBoolean, fmt.Sprintf("isBlocked %s", truncate(e.IsBlocked, 40)))
		return
	}
	r := rawRow{domain: dom, severity: "noop"}
	if blocked {
		r.severity = "suspend"
	}
	r.publicComment, _ = jsonScalar(e.Reason)
	p.row(line, r)
}

// Detect guesses the format of data from its content; nameHint (a file name or URL) only
// breaks ties: "rapidblock" in it makes a one-domain-per-line list rapidblock.csv, and
// "/api/v1/instance/domain_blocks" makes a JSON list mastodon_api_public. It returns ""
// when the content is not a blocklist in any known format (HTML, an unknown JSON object).
//
//   - a JSON array: mastodon_api_public if its first object has "comment" or has "digest"
//     without any admin-only key (id, private_comment, reject_media, ...); json otherwise;
//   - a JSON object with "blocks": rapidblock.json;
//   - a header row "#domain,...": mastodon_csv; any other line with a comma (header or not)
//     among the first 50 non-comment lines: csv;
//   - otherwise one domain per line: text (or rapidblock.csv per the hint). Empty data is text.
func Detect(data []byte, nameHint string) Format {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	hint := strings.ToLower(nameHint)
	switch firstNonSpace(data) {
	case 0:
		return FormatText
	case '<':
		return ""
	case '{':
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) == nil {
			if _, ok := obj["blocks"]; ok {
				return FormatRapidBlockJSON
			}
		}
		return ""
	case '[':
		return detectJSONArray(data, hint)
	}
	comma := false
	seen := 0
	for len(data) > 0 && seen < 50 {
		var ln []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			ln, data = data[:i], data[i+1:]
		} else {
			ln, data = data, nil
		}
		ln = bytes.TrimSpace(ln)
		if len(ln) == 0 {
			continue
		}
		if ln[0] == '#' {
			if seen == 0 && bytes.IndexByte(ln, ',') >= 0 {
				if _, ok := headerColumns(strings.Split(string(ln), ",")); ok {
					return FormatMastodonCSV
				}
			}
			continue
		}
		if seen == 0 && bytes.IndexByte(ln, ',') >= 0 {
			cells := strings.Split(string(ln), ",")
			if _, ok := headerColumns(cells); ok {
				for _, c := range cells {
					if strings.HasPrefix(strings.TrimSpace(strings.Trim(strings.TrimSpace(c), `"`)), "#") {
						return FormatMastodonCSV
					}
				}
				return FormatCSV
			}
		}
		seen++
		if bytes.IndexByte(ln, ',') >= 0 {
			comma = true
		}
	}
	switch {
	case comma:
		return FormatCSV
	case strings.Contains(hint, "rapidblock"):
		return FormatRapidBlockCSV
	}
	return FormatText
}

func detectJSONArray(data []byte, hint string) Format {
	if strings.Contains(hint, "/api/v1/instance/domain_blocks") {
		return FormatMastodonAPIPublic
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return ""
	}
	if !dec.More() {
		return FormatJSON
	}
	var first map[string]json.RawMessage
	if err := dec.Decode(&first); err != nil {
		return FormatJSON
	}
	if _, ok := first["comment"]; ok {
		return FormatMastodonAPIPublic
	}
	if _, ok := first["digest"]; ok {
		admin := false
		for _, k := range []string{"id", "private_comment", "public_comment", "reject_media", "reject_reports", "obfuscate"} {
			if _, ok := first[k]; ok {
				admin = true
			}
		}
		if !admin {
			return FormatMastodonAPIPublic
		}
	}
	return FormatJSON
}

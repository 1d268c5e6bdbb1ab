package lists

import (
	"bytes"
	"strings"
)

// columns maps block fields to CSV column indexes (-1: absent).
type columns struct {
	domain, severity, publicComment, privateComment, rejectMedia, rejectReports, obfuscate, digest int
}

// headerName normalises a header cell: surrounding spaces and quotes, leading '#', case.
func headerName(s string) string {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	s = strings.TrimLeft(s, "#")
	return strings.ToLower(strings.TrimSpace(s))
}

// headerColumns reads rec as a header row. It is one when a cell names the domain column
// ("domain" or "#domain", any case), no cell contains a dot and no cell is a severity or
// boolean value: a data row has a dot in its domain (so a comment reading "domain" does not
// make a header), and a block on a TLD named "domain" has a severity. Columns may come in any order; unknown ones are ignored;
// when a name repeats, the last column wins (as with FBH's csv.DictReader). "comment" (the
// public API's name) is read as public_comment when there is no public_comment column.
func headerColumns(rec []string) (columns, bool) {
	c := columns{-1, -1, -1, -1, -1, -1, -1, -1}
	comment := -1
	for i, cell := range rec {
		if strings.IndexByte(cell, '.') >= 0 {
			return c, false
		}
		name := headerName(cell)
		if _, err := ParseSeverity(name); err == nil && name != "" {
			return c, false
		}
		if _, err := ParseBool(name); err == nil && name != "" {
			return c, false
		}
		switch name {
		case FieldDomain:
			c.domain = i
		case FieldSeverity:
			c.severity = i
		case FieldPublicComment:
			c.publicComment = i
		case "comment":
			comment = i
		case FieldPrivateComment:
			c.privateComment = i
		case FieldRejectMedia:
			c.rejectMedia = i
		case FieldRejectReports:
			c.rejectReports = i
		case FieldObfuscate:
			c.obfuscate = i
		case "digest":
			c.digest = i
		}
	}
	if c.publicComment < 0 {
		c.publicComment = comment
	}
	return c, c.domain >= 0
}

func cell(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return rec[i]
}

// fromHeader builds a row from a record under a header. A short record's missing cells are
// empty, like FBH's DictReader gives None (so a missing severity cell is noop there too).
func (c *columns) fromHeader(rec []string) rawRow {
	return rawRow{
		domain:         cell(rec, c.domain),
		severity:       cell(rec, c.severity),
		noSeverity:     c.severity < 0,
		rejectMedia:    cell(rec, c.rejectMedia),
		rejectReports:  cell(rec, c.rejectReports),
		obfuscate:      cell(rec, c.obfuscate),
		publicComment:  cell(rec, c.publicComment),
		privateComment: cell(rec, c.privateComment),
		digest:         cell(rec, c.digest),
	}
}

// fromPosition builds a row from a headerless record, by position in Mastodon's export
// order: domain, severity, reject_media, reject_reports, public_comment, obfuscate. A
// 5-column record is domain,severity,reject_media,reject_reports,obfuscate (the
// "example.com,suspend,true,true,true" lists seen in the wild, which have no comment). With no
// header there is no FBH behaviour to match, so an empty severity cell means suspend, as a
// missing one does.
func fromPosition(rec []string) rawRow {
	r := rawRow{domain: rec[0], severity: cell(rec, 1), rejectMedia: cell(rec, 2), rejectReports: cell(rec, 3)}
	r.noSeverity = strings.TrimSpace(r.severity) == ""
	switch {
	case len(rec) == 5:
		r.obfuscate = rec[4]
	case len(rec) >= 6:
		r.publicComment = rec[4]
		r.obfuscate = rec[5]
	}
	return r
}

func blankRecord(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// parseCSV reads CSV with or without a header row (see csvScanner for the syntax). Quoted
// fields may span lines; CRLF, LF and mixed endings are all fine; stray quotes are tolerated. Lines whose first cell starts
// with '#' are comments, except a header ("#domain,#severity,..."). A header row repeated
// later (concatenated files) switches to its column layout.
func (p *parser) parseCSV(data string) error {
	sc := csvScanner{s: data}
	var cols *columns
	for {
		rec, line, ok := sc.read()
		if !ok {
			return nil
		}
		if blankRecord(rec) {
			continue
		}
		// A header has no dot in any cell; most rows have one in their first cell.
		if strings.IndexByte(rec[0], '.') < 0 {
			if c, ok := headerColumns(rec); ok {
				cols = &c
				continue
			}
		}
		if strings.HasPrefix(strings.TrimSpace(rec[0]), "#") {
			continue // comment
		}
		if cols == nil {
			p.row(line, fromPosition(rec))
			continue
		}
		p.row(line, cols.fromHeader(rec))
	}
}

// parseText reads one domain per line (text and rapidblock.csv). Blank lines and lines
// starting with '#' are ignored, as is anything after a tab or after whitespace followed by
// '#'. A first line "domain" is a header. Every domain is a suspend (capped by MaxSeverity).
func (p *parser) parseText(data []byte) {
	lineNo := 0
	seenData := false
	for len(data) > 0 {
		var ln []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			ln, data = data[:i], data[i+1:]
		} else {
			ln, data = data, nil
		}
		lineNo++
		ln = bytes.TrimSpace(ln)
		if len(ln) == 0 || ln[0] == '#' {
			continue
		}
		if i := bytes.IndexByte(ln, '\t'); i >= 0 {
			ln = ln[:i]
		}
		if i := bytes.Index(ln, []byte(" #")); i >= 0 {
			ln = bytes.TrimSpace(ln[:i])
		}
		if len(ln) >= 2 && ln[0] == '"' && ln[len(ln)-1] == '"' {
			ln = ln[1 : len(ln)-1]
		}
		s := string(ln)
		if !seenData {
			seenData = true
			if strings.EqualFold(s, FieldDomain) {
				continue
			}
		}
		p.row(lineNo, rawRow{domain: s, noSeverity: true})
	}
}

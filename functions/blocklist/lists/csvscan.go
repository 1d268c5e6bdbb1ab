package lists

import "strings"

// csvScanner reads CSV records exactly as encoding/csv.Reader does with LazyQuotes = true
// and FieldsPerRecord = -1 (FuzzCSVScanner checks this), but over a string and without
// copying: a field is a substring of the input unless it had to be unescaped ("" inside
// quotes, a bare quote) or spans lines. That saves one allocation per row, which is most of
// the parser's garbage on big lists.
//
// Semantics, from encoding/csv: a line ends at "\n" or "\r\n" (a lone '\r' before EOF is
// dropped); empty lines are skipped; a field starting with '"' is quoted and may span lines
// (its line ends read as "\n"); inside quotes, "" is a quote, a quote followed by a comma
// or the end of the line closes the field and any other quote is kept as is; outside
// quotes, quotes are ordinary characters; a quoted field still open at EOF ends there.
type csvScanner struct {
	s      string
	off    int // next unread byte
	line   int // physical lines read so far
	fields []string
	buf    []byte
}

// readLine returns the next physical line without its ending, and whether it had a "\n".
func (c *csvScanner) readLine() (content string, nl, ok bool) {
	if c.off >= len(c.s) {
		return "", false, false
	}
	rest := c.s[c.off:]
	c.line++
	i := strings.IndexByte(rest, '\n')
	if i < 0 {
		c.off = len(c.s)
		return strings.TrimSuffix(rest, "\r"), false, true
	}
	c.off += i + 1
	return strings.TrimSuffix(rest[:i], "\r"), true, true
}

// read returns the next record and the line it starts on; ok is false at the end. The
// fields slice is reused by the next call.
func (c *csvScanner) read() (fields []string, line int, ok bool) {
	var content string
	var nl bool
	for {
		content, nl, ok = c.readLine()
		if !ok {
			return nil, 0, false
		}
		if content != "" {
			break
		}
	}
	line = c.line
	c.fields = c.fields[:0]
	for {
		if content == "" || content[0] != '"' {
			if i := strings.IndexByte(content, ','); i >= 0 {
				c.fields = append(c.fields, content[:i])
				content = content[i+1:]
				continue
			}
			c.fields = append(c.fields, content)
			return c.fields, line, true
		}
		content = content[1:]
		// The usual quoted field: closed on this line, nothing to unescape.
		if i := strings.IndexByte(content, '"'); i >= 0 && (i+1 == len(content) || content[i+1] == ',') {
			c.fields = append(c.fields, content[:i])
			if i+1 == len(content) {
				return c.fields, line, true
			}
			content = content[i+2:]
			continue
		}
		c.buf = c.buf[:0]
		endOfRecord := false
	quoted:
		for {
			i := strings.IndexByte(content, '"')
			switch {
			case i >= 0:
				c.buf = append(c.buf, content[:i]...)
				content = content[i+1:]
				switch {
				case content != "" && content[0] == '"':
					c.buf = append(c.buf, '"')
					content = content[1:]
				case content != "" && content[0] == ',':
					content = content[1:]
					break quoted
				case content == "":
					endOfRecord = true
					break quoted
				default:
					c.buf = append(c.buf, '"') // a bare quote, kept (LazyQuotes)
				}
			case content != "" || nl:
				c.buf = append(c.buf, content...)
				if nl {
					c.buf = append(c.buf, '\n')
				}
				var more bool
				if content, nl, more = c.readLine(); !more {
					endOfRecord = true
					break quoted
				}
			default:
				endOfRecord = true // EOF inside quotes
				break quoted
			}
		}
		c.fields = append(c.fields, string(c.buf))
		if endOfRecord {
			return c.fields, line, true
		}
	}
}

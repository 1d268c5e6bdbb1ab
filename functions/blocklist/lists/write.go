package lists

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
)

// csvField writes s with minimal quoting, as Python's csv.QUOTE_MINIMAL and Ruby's CSV do:
// quoted (with doubled quotes inside) only when it holds a comma, a quote, CR or LF.
func csvField(w *bufio.Writer, s string) {
	if !strings.ContainsAny(s, ",\"\r\n") {
		w.WriteString(s)
		return
	}
	w.WriteByte('"')
	w.WriteString(strings.ReplaceAll(s, `"`, `""`))
	w.WriteByte('"')
}

// MastodonCSVHeader is the header of Mastodon's domain-block export/import (4.1+).
const MastodonCSVHeader = "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate"

// WriteMastodonCSV writes blocks, in the given order, in the CSV format Mastodon's admin UI
// imports and exports: MastodonCSVHeader, LF line endings, lower-case booleans, minimal
// quoting. Private comments are not part of the format.
func WriteMastodonCSV(w io.Writer, blocks []Block) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(MastodonCSVHeader + "\n")
	for _, b := range blocks {
		csvField(bw, b.Domain)
		bw.WriteByte(',')
		bw.WriteString(b.Severity.String())
		bw.WriteByte(',')
		bw.WriteString(strconv.FormatBool(b.RejectMedia))
		bw.WriteByte(',')
		bw.WriteString(strconv.FormatBool(b.RejectReports))
		bw.WriteByte(',')
		csvField(bw, b.PublicComment)
		bw.WriteByte(',')
		bw.WriteString(strconv.FormatBool(b.Obfuscate))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// WriteFediBlockHoleCSV writes blocks as FBH's save_blocklist_to_file does (its -o output
// and intermediate files): a header without '#' naming domain, severity and then
// exportFields in the given order, rows sorted by domain, CRLF line endings, Python
// booleans True/False and minimal quoting. For the same blocks the output is byte for byte
// FBH's. exportFields must be block field names (CheckFields); domain and severity are
// always written first, so naming them again is ignored.
func WriteFediBlockHoleCSV(w io.Writer, blocks []Block, exportFields []string) error {
	cols := []string{FieldDomain, FieldSeverity}
	for _, f := range exportFields {
		if err := CheckFields([]string{f}); err != nil {
			return err
		}
		if !slices.Contains(cols, f) {
			cols = append(cols, f)
		}
	}
	sorted := slices.Clone(blocks)
	slices.SortStableFunc(sorted, func(a, b Block) int { return strings.Compare(a.Domain, b.Domain) })
	pyBool := func(v bool) string {
		if v {
			return "True"
		}
		return "False"
	}
	bw := bufio.NewWriter(w)
	bw.WriteString(strings.Join(cols, ",") + "\r\n")
	for _, b := range sorted {
		for i, c := range cols {
			if i > 0 {
				bw.WriteByte(',')
			}
			switch c {
			case FieldDomain:
				csvField(bw, b.Domain)
			case FieldSeverity:
				bw.WriteString(b.Severity.String())
			case FieldPublicComment:
				csvField(bw, b.PublicComment)
			case FieldPrivateComment:
				csvField(bw, b.PrivateComment)
			case FieldRejectMedia:
				bw.WriteString(pyBool(b.RejectMedia))
			case FieldRejectReports:
				bw.WriteString(pyBool(b.RejectReports))
			case FieldObfuscate:
				bw.WriteString(pyBool(b.Obfuscate))
			}
		}
		bw.WriteString("\r\n")
	}
	return bw.Flush()
}

// JSONBlock is a domain block as Mastodon's admin API serialises it (without id and
// created_at, which only a server can assign). Digest is the SHA-256 of the domain.
type JSONBlock struct {
	Domain         string   `json:"domain"`
	Digest         string   `json:"digest"`
	Severity       Severity `json:"severity"`
	RejectMedia    bool     `json:"reject_media"`
	RejectReports  bool     `json:"reject_reports"`
	PrivateComment string   `json:"private_comment"`
	PublicComment  string   `json:"public_comment"`
	Obfuscate      bool     `json:"obfuscate"`
}

// WriteJSON writes blocks, in the given order, as a JSON array of Mastodon admin
// domain-block objects (format "json"), indented, with a final newline. The output is what
// encoding/json writes for []JSONBlock with two-space indentation and HTML escaping off,
// written one block at a time.
func WriteJSON(w io.Writer, blocks []Block) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if len(blocks) == 0 {
		bw.WriteString("[]\n")
		return bw.Flush()
	}
	var buf []byte
	bw.WriteString("[\n")
	for i, b := range blocks {
		buf = append(buf[:0], "  {\n    \"domain\": "...)
		buf = appendJSONString(buf, b.Domain)
		buf = append(buf, ",\n    \"digest\": \""...)
		sum := sha256.Sum256([]byte(b.Domain)) // domain.Digest, without its allocations
		buf = hex.AppendEncode(buf, sum[:])
		buf = append(buf, "\",\n    \"severity\": \""...)
		buf = append(buf, b.Severity.String()...)
		buf = append(buf, "\",\n    \"reject_media\": "...)
		buf = strconv.AppendBool(buf, b.RejectMedia)
		buf = append(buf, ",\n    \"reject_reports\": "...)
		buf = strconv.AppendBool(buf, b.RejectReports)
		buf = append(buf, ",\n    \"private_comment\": "...)
		buf = appendJSONString(buf, b.PrivateComment)
		buf = append(buf, ",\n    \"public_comment\": "...)
		buf = appendJSONString(buf, b.PublicComment)
		buf = append(buf, ",\n    \"obfuscate\": "...)
		buf = strconv.AppendBool(buf, b.Obfuscate)
		buf = append(buf, "\n  }"...)
		if i < len(blocks)-1 {
			buf = append(buf, ',')
		}
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	bw.WriteString("]\n")
	return bw.Flush()
}

// appendJSONString appends s as a JSON string the way encoding/json does with HTML escaping
// off: plain printable ASCII as is, anything else through encoding/json itself.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			var sb strings.Builder
			enc := json.NewEncoder(&sb)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(s) // a string always encodes
			return append(buf, strings.TrimSuffix(sb.String(), "\n")...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// WriteText writes one domain per line (LF), in the given order: the plain-text format.
func WriteText(w io.Writer, blocks []Block) error {
	bw := bufio.NewWriter(w)
	for _, b := range blocks {
		bw.WriteString(b.Domain)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

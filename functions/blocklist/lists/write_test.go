package lists

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fediops/fediops/shared/domain"
)

var writeBlocks = []Block{
	{Domain: "b.example", Severity: Silence, RejectMedia: true, PublicComment: `spam, "bots"`, PrivateComment: "seen\nin March", Obfuscate: true},
	{Domain: "a.example", Severity: Suspend},
	{Domain: "c.example", Severity: Noop, RejectReports: true, PublicComment: "plain"},
}

func TestWriteMastodonCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMastodonCSV(&buf, writeBlocks); err != nil {
		t.Fatal(err)
	}
	want := "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n" +
		"b.example,silence,true,false,\"spam, \"\"bots\"\"\",true\n" +
		"a.example,suspend,false,false,,false\n" +
		"c.example,noop,false,true,plain,false\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
	l := mustParse(t, buf.String(), "", allFields)
	if l.Format != FormatMastodonCSV || len(l.Blocks) != 3 || find(t, l, "b.example").PublicComment != `spam, "bots"` {
		t.Errorf("re-read: %s %+v", l.Format, l.Blocks)
	}
}

func TestWriteFediBlockHoleCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFediBlockHoleCSV(&buf, writeBlocks, []string{"reject_media", "reject_reports", "public_comment", "private_comment", "obfuscate", "severity"}); err != nil {
		t.Fatal(err)
	}
	want := "domain,severity,reject_media,reject_reports,public_comment,private_comment,obfuscate\r\n" +
		"a.example,suspend,False,False,,,False\r\n" +
		"b.example,silence,True,False,\"spam, \"\"bots\"\"\",\"seen\nin March\",True\r\n" +
		"c.example,noop,False,True,plain,,False\r\n"
	if buf.String() != want {
		t.Errorf("got\n%q\nwant\n%q", buf.String(), want)
	}
	l := mustParse(t, buf.String(), FormatCSV, allFields)
	if got := find(t, l, "b.example").Block; got != writeBlocks[0] {
		t.Errorf("round trip: %+v", got)
	}
	buf.Reset()
	if err := WriteFediBlockHoleCSV(&buf, writeBlocks, nil); err != nil || !strings.HasPrefix(buf.String(), "domain,severity\r\na.example,suspend\r\n") {
		t.Errorf("no export fields: %q %v", buf.String(), err)
	}
	if err := WriteFediBlockHoleCSV(&buf, writeBlocks, []string{"comment"}); err == nil {
		t.Error("unknown export field accepted")
	}
}

func TestWriteJSONAndText(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, writeBlocks[1:2]); err != nil {
		t.Fatal(err)
	}
	want := `[
  {
    "domain": "a.example",
    "digest": "` + domain.Digest("a.example") + `",
    "severity": "suspend",
    "reject_media": false,
    "reject_reports": false,
    "private_comment": "",
    "public_comment": "",
    "obfuscate": false
  }
]
`
	if got := buf.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	buf.Reset()
	if err := WriteJSON(&buf, writeBlocks); err != nil {
		t.Fatal(err)
	}
	l := mustParse(t, buf.String(), "", allFields)
	if l.Format != FormatJSON || len(l.Blocks) != 3 {
		t.Fatalf("re-read: %s %d", l.Format, len(l.Blocks))
	}
	for i, e := range l.Blocks {
		if e.Block != writeBlocks[i] {
			t.Errorf("round trip %d: %+v", i, e.Block)
		}
	}
	buf.Reset()
	if err := WriteJSON(&buf, nil); err != nil || buf.String() != "[]\n" {
		t.Errorf("empty: %q %v", buf.String(), err)
	}
	buf.Reset()
	if err := WriteText(&buf, writeBlocks); err != nil || buf.String() != "b.example\na.example\nc.example\n" {
		t.Errorf("text: %q %v", buf.String(), err)
	}
}

// WriteJSON streams what encoding/json would write for the whole array, byte for byte, for
// any comment: quotes, backslashes, control characters, HTML characters, non-ASCII, U+2028
// and invalid UTF-8.
func TestWriteJSONMatchesEncodingJSON(t *testing.T) {
	comments := []string{"", "plain", `say "hi"`, `back\slash`, "tab\tnew\nline\r", "<b>&amp;</b>", "café ☕", "line\u2028sep\u2029", "bad \xff utf8", "\x00\x01\x1f\x7f", "emoji 🦣"}
	var blocks []Block
	for i, c := range comments {
		blocks = append(blocks, Block{Domain: fmt.Sprintf("d%d.example", i), Severity: []Severity{Noop, Silence, Suspend}[i%3], PublicComment: c, PrivateComment: c + "!", RejectMedia: i%2 == 0, Obfuscate: i%3 == 0})
	}
	for _, n := range []int{0, 1, len(blocks)} {
		var got, want bytes.Buffer
		if err := WriteJSON(&got, blocks[:n]); err != nil {
			t.Fatal(err)
		}
		out := make([]JSONBlock, n)
		for i, b := range blocks[:n] {
			out[i] = JSONBlock{Domain: b.Domain, Digest: domain.Digest(b.Domain), Severity: b.Severity, RejectMedia: b.RejectMedia,
				RejectReports: b.RejectReports, PrivateComment: b.PrivateComment, PublicComment: b.PublicComment, Obfuscate: b.Obfuscate}
		}
		enc := json.NewEncoder(&want)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%d blocks: got\n%s\nwant\n%s", n, got.String(), want.String())
		}
	}
	if err := WriteJSON(failingWriter{}, blocks); err == nil {
		t.Error("a write error was not returned")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

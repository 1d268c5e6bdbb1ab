package lists

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

var allFields = Options{ImportFields: OptionalFields}

func mustParse(t *testing.T, data string, f Format, opts Options) *List {
	t.Helper()
	l, err := Parse("test", []byte(data), f, opts)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	checkInvariants(t, l, data)
	return l
}

// checkInvariants: every row is accounted for once, domains are unique and normalised, and
// there are no more rows than lines.
func checkInvariants(t testing.TB, l *List, data string) {
	t.Helper()
	if got := len(l.Blocks) + len(l.Obfuscated) + len(l.Skipped); got != l.Rows {
		t.Errorf("%s: Rows=%d but blocks+obfuscated+skipped=%d", l.Source, l.Rows, got)
	}
	lines := strings.Count(data, "\n") + 1
	if bound := maxRows(data, l.Format); l.Rows > bound {
		t.Errorf("%s: %d rows, more than the %d the input can hold", l.Source, l.Rows, bound)
	}
	seen := make(map[string]bool)
	for _, e := range l.Blocks {
		if seen[e.Domain] {
			t.Errorf("%s: duplicate domain %q in Blocks", l.Source, e.Domain)
		}
		seen[e.Domain] = true
		if n, err := normalizeDomain(e.Domain); err != nil || n != e.Domain {
			t.Errorf("%s: domain %q is not normalised (%q, %v)", l.Source, e.Domain, n, err)
		}
		if e.Severity < Noop || e.Severity > Suspend {
			t.Errorf("%s: %s has severity %d", l.Source, e.Domain, e.Severity)
		}
		if e.Line < 1 || e.Line > lines {
			t.Errorf("%s: %s has line %d of %d", l.Source, e.Domain, e.Line, lines)
		}
	}
	for _, o := range l.Obfuscated {
		if !strings.Contains(o.Domain, "*") {
			t.Errorf("%s: obfuscated entry %q has no '*'", l.Source, o.Domain)
		}
	}
	for _, s := range l.Skipped {
		if s.Reason == "" || s.Source != l.Source {
			t.Errorf("bad skip record %+v", s)
		}
	}
}

// maxRows bounds the rows an input can hold: its lines for line formats; for JSON, its
// element separators (',') or key separators (':').
func maxRows(data string, f Format) int {
	switch f {
	case FormatJSON, FormatMastodonAPIPublic:
		return strings.Count(data, ",") + 1
	case FormatRapidBlockJSON:
		return strings.Count(data, ":")
	}
	return strings.Count(data, "\n") + 1
}

func domains(l *List) []string {
	var out []string
	for _, e := range l.Blocks {
		out = append(out, e.Domain)
	}
	return out
}

func find(t *testing.T, l *List, d string) Entry {
	t.Helper()
	for _, e := range l.Blocks {
		if e.Domain == d {
			return e
		}
	}
	t.Fatalf("%s not in %v", d, domains(l))
	return Entry{}
}

func reasons(l *List) string {
	var out []string
	for _, s := range l.Skipped {
		out = append(out, fmt.Sprintf("%d:%s:%s", s.Line, s.Value, s.Reason))
	}
	return strings.Join(out, " ")
}

func TestSeverity(t *testing.T) {
	for in, want := range map[string]Severity{
		"noop": Noop, "": Noop, "  ": Noop, "silence": Silence, "Suspend": Suspend, "SUSPEND": Suspend, " suspend\t": Suspend, "NoOp": Noop,
	} {
		got, err := ParseSeverity(in)
		if err != nil || got != want {
			t.Errorf("ParseSeverity(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"suspended", "limit", "block", "1", "none"} {
		if _, err := ParseSeverity(in); err == nil {
			t.Errorf("ParseSeverity(%q): no error", in)
		}
	}
	// FBH test_blockseverity: noop < silence < suspend.
	if !(Noop < Silence && Silence < Suspend && Suspend >= Suspend && Noop <= Silence && Silence != Suspend) {
		t.Error("severity order")
	}
	for _, s := range []Severity{Noop, Silence, Suspend} {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back Severity
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("round trip %v: %s -> %v %v", s, b, back, err)
		}
	}
	if _, err := json.Marshal(SeverityUnset); err == nil {
		t.Error("marshalling an unset severity should fail")
	}
}

func TestParseBool(t *testing.T) {
	for _, s := range []string{"true", "TRUE", "True", "t", "T", "1", "y", "yes", "YES", " true "} {
		if v, err := ParseBool(s); err != nil || !v {
			t.Errorf("ParseBool(%q) = %v, %v", s, v, err)
		}
	}
	for _, s := range []string{"", "false", "FALSE", "False", "f", "0", "n", "no", "No"} {
		if v, err := ParseBool(s); err != nil || v {
			t.Errorf("ParseBool(%q) = %v, %v", s, v, err)
		}
	}
	for _, s := range []string{"2", "maybe", "truee", "on"} {
		if _, err := ParseBool(s); err == nil {
			t.Errorf("ParseBool(%q): no error", s)
		}
	}
}

func TestCSVColumnsAnyOrderAndHeaderStyles(t *testing.T) {
	for name, data := range map[string]string{
		"fbh":              "domain,severity,reject_media,reject_reports,public_comment,obfuscate\nbad.example,silence,TRUE,false,hi there,t\n",
		"mastodon":         "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\nbad.example,silence,true,false,hi there,true\n",
		"seirdy order":     "domain,severity,public_comment,reject_media,reject_reports,obfuscate\nbad.example,silence,hi there,True,False,True\n",
		"quoted header":    `"domain","severity","public_comment","private_comment","reject_media","reject_reports","obfuscate"` + "\n" + `"bad.example","silence","hi there",,TRUE,FALSE,TRUE` + "\n",
		"shuffled + extra": "obfuscate,id,public_comment,reject_reports,severity,domain,reject_media\nyes,17,hi there,0,SILENCE,Bad.Example.,1\n",
		"comment alias":    "#domain,#severity,#comment,#reject_media,#obfuscate\nbad.example,silence,hi there,1,1\n",
		"spaces in header": " # Domain , Severity ,public_comment,reject_media,obfuscate\nbad.example,silence,hi there,1,1\n",
	} {
		for _, f := range []Format{FormatCSV, FormatMastodonCSV, ""} {
			l := mustParse(t, data, f, allFields)
			if len(l.Blocks) != 1 || len(l.Skipped) != 0 {
				t.Errorf("%s/%s: blocks %v skipped %s", name, f, domains(l), reasons(l))
				continue
			}
			want := Block{Domain: "bad.example", Severity: Silence, RejectMedia: true, Obfuscate: true, PublicComment: "hi there"}
			if got := l.Blocks[0].Block; got != want {
				t.Errorf("%s/%s: got %+v, want %+v", name, f, got, want)
			}
		}
	}
}

func TestCSVSeverityDefaults(t *testing.T) {
	// No severity column: suspend (FBH's DomainBlock default).
	l := mustParse(t, "domain,public_comment\na.example,x\n", FormatCSV, allFields)
	if find(t, l, "a.example").Severity != Suspend {
		t.Error("missing severity column should be suspend")
	}
	// An empty severity cell (or a short row): noop, as FBH does.
	l = mustParse(t, "domain,severity,public_comment\na.example,,x\nb.example\n", FormatCSV, allFields)
	if find(t, l, "a.example").Severity != Noop || find(t, l, "b.example").Severity != Noop {
		t.Error("empty severity cell should be noop")
	}
	// Bad severity: skipped with its line.
	l = mustParse(t, "domain,severity\na.example,suspend\nb.example,suspended\nc.example,Silence\n", FormatCSV, allFields)
	if got := reasons(l); got != "3:b.example:bad_severity" {
		t.Errorf("skips %s", got)
	}
	if find(t, l, "c.example").Severity != Silence {
		t.Error("Silence")
	}
}

func TestCSVBooleansOnlyCheckedWhenImported(t *testing.T) {
	data := "domain,severity,reject_media,obfuscate\na.example,suspend,maybe,TRUE\nb.example,suspend,yes,t\n"
	l := mustParse(t, data, FormatCSV, Options{ImportFields: []string{"obfuscate"}})
	if len(l.Blocks) != 2 || l.Blocks[0].RejectMedia || !l.Blocks[0].Obfuscate {
		t.Errorf("got %+v / %s", l.Blocks, reasons(l))
	}
	l = mustParse(t, data, FormatCSV, allFields)
	if got := reasons(l); got != "2:a.example:bad_boolean" {
		t.Errorf("skips %s", got)
	}
	if e := find(t, l, "b.example"); !e.RejectMedia || !e.Obfuscate {
		t.Errorf("b: %+v", e)
	}
}

func TestCSVImportFieldsFilter(t *testing.T) {
	data := "domain,severity,public_comment,private_comment,reject_media,reject_reports,obfuscate\na.example,silence,pub,priv,true,true,true\n"
	l := mustParse(t, data, FormatCSV, Options{})
	if got, want := l.Blocks[0].Block, (Block{Domain: "a.example", Severity: Silence}); got != want {
		t.Errorf("no import fields: %+v", got)
	}
	l = mustParse(t, data, FormatCSV, Options{ImportFields: []string{"private_comment", " Reject_Reports "}})
	if got, want := l.Blocks[0].Block, (Block{Domain: "a.example", Severity: Silence, PrivateComment: "priv", RejectReports: true}); got != want {
		t.Errorf("some import fields: %+v", got)
	}
}

func TestCSVMaxSeverity(t *testing.T) {
	data := "domain,severity\na.example,suspend\nb.example,silence\nc.example,noop\n"
	l := mustParse(t, data, FormatCSV, Options{MaxSeverity: Silence})
	for d, want := range map[string]Severity{"a.example": Silence, "b.example": Silence, "c.example": Noop} {
		if got := find(t, l, d).Severity; got != want {
			t.Errorf("%s: %v want %v", d, got, want)
		}
	}
}

func TestCSVHeaderless(t *testing.T) {
	// One column, a la gardenfence.txt in a .csv.
	l := mustParse(t, "a.example\nB.Example\n\n", FormatCSV, allFields)
	if !slices.Equal(domains(l), []string{"a.example", "b.example"}) || l.Blocks[0].Severity != Suspend {
		t.Errorf("one column: %+v", l.Blocks)
	}
	// domain,Suspend (fyrfli's old list, with its dirt).
	l = mustParse(t, "*.repl.co,Suspend\n*kazar.ma,Suspend\nNoAgenda.social,Suspend\neveningzoo.]club,Suspend\nmastodong[.]lol,Suspend\nxn--p1abe3d.xn--80asehdb,Suspend\nsilenced.example,silence\n", FormatCSV, allFields)
	if got := domains(l); !slices.Equal(got, []string{"repl.co", "noagenda.social", "xn--p1abe3d.xn--80asehdb", "silenced.example"}) {
		t.Errorf("two columns: %v", got)
	}
	if got := reasons(l); got != "2:*kazar.ma:unsupported_wildcard 4:eveningzoo.]club:invalid_domain 5:mastodong[.]lol:invalid_domain" {
		t.Errorf("skips %s", got)
	}
	if find(t, l, "silenced.example").Severity != Silence {
		t.Error("silence")
	}
	// domain,suspend,true,true,true (5 columns: no comment).
	l = mustParse(t, "a.example,suspend,true,true,true\nb.example,silence,false,true,false\n", FormatCSV, allFields)
	if got := l.Blocks[0].Block; got != (Block{Domain: "a.example", Severity: Suspend, RejectMedia: true, RejectReports: true, Obfuscate: true}) {
		t.Errorf("5 columns: %+v", got)
	}
	// Mastodon export order without the header.
	l = mustParse(t, "a.example,silence,false,true,\"spam, lots\",true\n", FormatCSV, allFields)
	if got := l.Blocks[0].Block; got != (Block{Domain: "a.example", Severity: Silence, RejectReports: true, Obfuscate: true, PublicComment: "spam, lots"}) {
		t.Errorf("6 columns: %+v", got)
	}
	// Trailing empty severity with no header: suspend.
	l = mustParse(t, "a.example,\n", FormatCSV, allFields)
	if l.Blocks[0].Severity != Suspend {
		t.Error("headerless empty severity should be suspend")
	}
}

func TestCSVLineEndingsQuotesBOM(t *testing.T) {
	header := "domain,severity,public_comment,obfuscate"
	rows := []string{"a.example,suspend,plain,False", `b.example,silence,"multi` + "\r\nline, \"\"quoted\"\"\ncomment" + `",True`, "c.example,noop,,False"}
	for name, data := range map[string]string{
		"LF":    header + "\n" + strings.Join(rows, "\n") + "\n",
		"CRLF":  header + "\r\n" + strings.Join(rows, "\r\n") + "\r\n",
		"mixed": header + "\n" + strings.Join(rows, "\r\n"),
		"BOM":   "\ufeff" + header + "\r\n" + strings.Join(rows, "\n") + "\n",
	} {
		l := mustParse(t, data, "", allFields)
		if l.Format != FormatCSV || !slices.Equal(domains(l), []string{"a.example", "b.example", "c.example"}) {
			t.Errorf("%s: %s %v %s", name, l.Format, domains(l), reasons(l))
			continue
		}
		b := find(t, l, "b.example")
		if !strings.HasPrefix(b.PublicComment, "multi") || !strings.Contains(b.PublicComment, `line, "quoted"`) || !b.Obfuscate || b.Line != 3 {
			t.Errorf("%s: %+v", name, b)
		}
		if c := find(t, l, "c.example"); c.Line != 6 {
			t.Errorf("%s: c on line %d, want 6", name, c.Line)
		}
	}
}

func TestCSVCommentsAndRepeatedHeader(t *testing.T) {
	data := "# generated by hand\n#domain,#severity\n# a comment\na.example,silence\n\n#domain,#severity,#public_comment\nb.example,suspend,second file\n"
	l := mustParse(t, data, "", allFields)
	if l.Format != FormatMastodonCSV || !slices.Equal(domains(l), []string{"a.example", "b.example"}) || l.Rows != 2 {
		t.Fatalf("%s %v %d", l.Format, domains(l), l.Rows)
	}
	if find(t, l, "b.example").PublicComment != "second file" {
		t.Error("second header not applied")
	}
	// A comment cell reading "domain" is not a header.
	l = mustParse(t, "domain,severity,public_comment\na.example,silence,domain\nb.example,suspend,x\n", FormatCSV, allFields)
	if len(l.Blocks) != 2 || find(t, l, "a.example").PublicComment != "domain" {
		t.Errorf("%+v", l.Blocks)
	}
}

func TestDomainForms(t *testing.T) {
	data := "domain,severity\n" + strings.Join([]string{
		"  Example.COM.  ", // 2: trimmed, lower-cased, trailing dot
		"bücher.example",   // 3: IDN -> punycode
		"*.wild.example",   // 4: wildcard -> parent
		".cf",              // 5: TLD wildcard
		"ap.***.st",        // 6: obfuscated
		"AP.***.ST",        // 7: obfuscated, lower-cased
		"*ignorelist*",     // 8: glob
		"bad domain.com",   // 9: inner space
		"",                 // 10: empty domain
		"a..b",             // 11
		"under_score.example",
		"wild.example", // 13: same as line 4 -> duplicate, last wins
		"ex*mple com",  // 14: obfuscated but invalid
		"*.*.example",  // 15: a glob under a wildcard
	}, ",suspend\n") + ",suspend\n"
	l := mustParse(t, data, FormatCSV, allFields)
	if got, want := domains(l), []string{"example.com", "xn--bcher-kva.example", "cf", "wild.example"}; !slices.Equal(got, want) {
		t.Errorf("domains %v, want %v", got, want)
	}
	var pats []string
	for _, o := range l.Obfuscated {
		pats = append(pats, fmt.Sprintf("%d:%s", o.Line, o.Domain))
	}
	if got := strings.Join(pats, " "); got != "6:ap.***.st 7:ap.***.st" {
		t.Errorf("obfuscated %s", got)
	}
	slices.SortStableFunc(l.Skipped, func(a, b Skipped) int { return a.Line - b.Line })
	want := "4:wild.example:duplicate 8:*ignorelist*:unsupported_wildcard 9:bad domain.com:invalid_domain 10::invalid_domain 11:a..b:invalid_domain 12:under_score.example:invalid_domain 14:ex*mple com:invalid_domain 15:*.*.example:unsupported_wildcard"
	if got := reasons(l); got != want {
		t.Errorf("skips\n got %s\nwant %s", got, want)
	}
	if e := find(t, l, "wild.example"); e.Line != 13 {
		t.Errorf("last row should win, got line %d", e.Line)
	}
}

func TestDuplicateLastRowWins(t *testing.T) {
	l := mustParse(t, "domain,severity,public_comment\na.example,suspend,first\nb.example,silence,\nA.example,silence,second\n", FormatCSV, allFields)
	if got := find(t, l, "a.example"); got.Severity != Silence || got.PublicComment != "second" {
		t.Errorf("%+v", got)
	}
	if reasons(l) != "2:a.example:duplicate" {
		t.Errorf("%s", reasons(l))
	}
}

func TestText(t *testing.T) {
	data := "# FediNuke\r\n## more\r\n\r\n a.example \r\nB.example\t# tabbed comment\r\nc.example # trailing\r\n*.d.example\r\n\"e.example\"\r\nnot a domain\r\nf.example"
	l := mustParse(t, data, "", allFields)
	if l.Format != FormatText {
		t.Errorf("format %s", l.Format)
	}
	if got := domains(l); !slices.Equal(got, []string{"a.example", "b.example", "c.example", "d.example", "e.example", "f.example"}) {
		t.Errorf("%v", got)
	}
	if reasons(l) != "9:not a domain:invalid_domain" {
		t.Errorf("%s", reasons(l))
	}
	for _, e := range l.Blocks {
		if e.Severity != Suspend {
			t.Errorf("%s: %v", e.Domain, e.Severity)
		}
	}
	if find(t, l, "a.example").Line != 4 || find(t, l, "f.example").Line != 10 {
		t.Error("line numbers")
	}
	l = mustParse(t, "domain\na.example\n", FormatText, allFields)
	if !slices.Equal(domains(l), []string{"a.example"}) {
		t.Errorf("header line: %v", domains(l))
	}
	l = mustParse(t, "a.example\nb.example\n", FormatText, Options{MaxSeverity: Silence})
	if l.Blocks[0].Severity != Silence {
		t.Error("max severity")
	}
}

// FBH tests/test_parser_rapidblockcsv.py: 4 CRLF domains, all suspend. LF works too here.
func TestRapidBlockCSV(t *testing.T) {
	for _, eol := range []string{"\r\n", "\n"} {
		data := strings.Join([]string{"bad.domain", "worse.domain", "evil.domain", "another.bad.domain"}, eol) + eol
		l := mustParse(t, data, FormatRapidBlockCSV, Options{})
		if len(l.Blocks) != 4 {
			t.Fatalf("%q: %v", eol, domains(l))
		}
		for _, e := range l.Blocks {
			if e.Severity != Suspend {
				t.Errorf("%s: %v", e.Domain, e.Severity)
			}
		}
	}
	if Detect([]byte("a.example\r\nb.example\r\n"), "https://rapidblock.org/blocklist.csv") != FormatRapidBlockCSV {
		t.Error("detect rapidblock.csv by hint")
	}
}

func TestJSONAdminAndPublic(t *testing.T) {
	admin := `[
  {"id":"1","domain":"Silenced.Example","created_at":"2023-01-01T00:00:00Z","severity":"silence","reject_media":true,"reject_reports":false,"private_comment":null,"public_comment":"spam","obfuscate":false,"digest":"x"},
  {"id":"2","domain":"noseverity.example","reject_media":"TRUE"},
  {"id":"3","domain":"nullseverity.example","severity":null},
  {"id":"4","domain":"bad.example","severity":"Suspended"},
  {"id":"5","domain":"badbool.example","severity":"suspend","obfuscate":[1]},
  {"id":"6","severity":"suspend"},
  42,
  "bare.example"
]`
	l := mustParse(t, admin, "", allFields)
	if l.Format != FormatJSON {
		t.Errorf("format %s", l.Format)
	}
	if got := domains(l); !slices.Equal(got, []string{"silenced.example", "noseverity.example", "nullseverity.example", "bare.example"}) {
		t.Errorf("%v", got)
	}
	if got := reasons(l); got != "5:bad.example:bad_severity 6:badbool.example:bad_boolean 7:{\"id\":\"6\",\"severity\":\"suspend\"}:bad_row 8:42:bad_row" {
		t.Errorf("skips %s", got)
	}
	if got := find(t, l, "silenced.example").Block; got != (Block{Domain: "silenced.example", Severity: Silence, RejectMedia: true, PublicComment: "spam"}) {
		t.Errorf("%+v", got)
	}
	if got := find(t, l, "noseverity.example"); got.Severity != Suspend || !got.RejectMedia {
		t.Errorf("missing severity key: %+v", got)
	}
	if find(t, l, "nullseverity.example").Severity != Noop {
		t.Error("null severity is noop")
	}

	digest := "a379a6f6eeafb9a55e378c118034e2751e682fab9f2d30ab13d2125586ce1947" // example.com
	public := `[{"domain":"exa*ple.com","digest":"` + strings.ToUpper(digest) + `","severity":"suspend","comment":"Spam"},
{"domain":"silenced.example","digest":"00","severity":"silence","comment":""}]`
	l = mustParse(t, public, "", allFields)
	if l.Format != FormatMastodonAPIPublic || len(l.Obfuscated) != 1 || len(l.Blocks) != 1 {
		t.Fatalf("%s %+v %+v", l.Format, l.Obfuscated, l.Blocks)
	}
	if o := l.Obfuscated[0]; o.Digest != digest || o.PublicComment != "Spam" || o.Severity != Suspend || o.Line != 1 {
		t.Errorf("%+v", o)
	}
	if l.Blocks[0].Line != 2 {
		t.Errorf("line %d", l.Blocks[0].Line)
	}
}

func TestRapidBlockJSON(t *testing.T) {
	data := `{"@spec":"https://rapidblock.org/spec/v1/","publishedAt":"2022-12-29T18:40:02Z","blocks":{
"a.example":{"isBlocked":true,"reason":"spam","tags":["spam"]},
"b.example":{"isBlocked":false,"reason":"appeal"},
"c.example":{"reason":"no flag"},
"d.example":{"isBlocked":"maybe"},
"e.example":[],
"bad domain":{"isBlocked":true}
}}`
	l := mustParse(t, data, "", Options{})
	if l.Format != FormatRapidBlockJSON {
		t.Errorf("format %s", l.Format)
	}
	if got := l.Blocks; len(got) != 2 || got[0].Block != (Block{Domain: "a.example", Severity: Suspend}) || got[1].Block != (Block{Domain: "b.example", Severity: Noop}) {
		t.Errorf("%+v", got)
	}
	if got := reasons(l); got != "4:c.example:bad_row 5:d.example:bad_boolean 6:e.example:bad_row 7:bad domain:invalid_domain" {
		t.Errorf("%s", got)
	}
	l = mustParse(t, data, FormatRapidBlockJSON, Options{ImportFields: []string{"public_comment"}})
	if l.Blocks[0].PublicComment != "spam" {
		t.Error("reason should become public_comment when imported")
	}
}

func TestParseErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		data string
		f    Format
	}{
		"html":             {"<!DOCTYPE html><html>Not found</html>", ""},
		"html as csv":      {"  <html>", FormatCSV},
		"nul":              {"a.example\x00", FormatText},
		"json as csv":      {`[{"domain":"a.example"}]`, FormatCSV},
		"json as text":     {`{"blocks":{}}`, FormatText},
		"broken json":      {`[{"domain":"a.example"`, FormatJSON},
		"truncated json":   {`[{"domain":"a.example"},`, FormatJSON},
		"trailing json":    {`[{"domain":"a.example"}] x`, FormatJSON},
		"object as json":   {`{"blocks":{}}`, FormatJSON},
		"array as rb":      {`[]`, FormatRapidBlockJSON},
		"rb without block": {`{"@spec":"x"}`, FormatRapidBlockJSON},
		"rb truncated":     {`{"blocks":{"a.example":{"isBlocked":true}`, FormatRapidBlockJSON},
		"unknown object":   {`{"foo":1}`, ""},
		"unknown format":   {"a.example", "yaml"},
	} {
		l, err := Parse("src", []byte(tc.data), tc.f, Options{})
		if err == nil || !errors.Is(err, ErrUnreadable) {
			t.Errorf("%s: got %+v, %v; want ErrUnreadable", name, l, err)
		}
	}
	// Empty input is an empty list, not an error.
	for _, f := range append([]Format{""}, Formats...) {
		if f == FormatJSON || f == FormatMastodonAPIPublic || f == FormatRapidBlockJSON {
			continue
		}
		l, err := Parse("src", nil, f, Options{})
		if err != nil || l.Rows != 0 {
			t.Errorf("empty %s: %+v %v", f, l, err)
		}
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		data, hint string
		want       Format
	}{
		{"domain,severity\na.example,suspend\n", "", FormatCSV},
		{"\ufeff\"domain\",\"severity\"\n", "", FormatCSV},
		{"#domain,#severity,#reject_media\n", "", FormatMastodonCSV},
		{"# comment\n#domain,#severity\n", "", FormatMastodonCSV},
		{"a.example,suspend\n", "", FormatCSV},
		{"# list\na.example\nb.example\n", "list.csv", FormatText},
		{"a.example\r\nb.example\r\n", "x/rapidblock/blocklist.csv", FormatRapidBlockCSV},
		{"", "", FormatText},
		{`[{"id":"1","domain":"a","severity":"silence","reject_media":false}]`, "", FormatJSON},
		{`[{"domain":"a","digest":"00","severity":"silence","comment":"x"}]`, "", FormatMastodonAPIPublic},
		{`[{"domain":"a","digest":"00","severity":"silence"}]`, "", FormatMastodonAPIPublic},
		{`[{"domain":"a","severity":"silence"}]`, "https://x.example/api/v1/instance/domain_blocks", FormatMastodonAPIPublic},
		{`[]`, "", FormatJSON},
		{` {"@spec":"x","blocks":{}}`, "", FormatRapidBlockJSON},
		{`{"foo":1}`, "", ""},
		{"<html>", "", ""},
	} {
		if got := Detect([]byte(tc.data), tc.hint); got != tc.want {
			t.Errorf("Detect(%q, %q) = %q, want %q", tc.data, tc.hint, got, tc.want)
		}
	}
}

// FBH tests/test_parser_csv.py and test_parser_csv_mastodon.py.
func TestFBHParserCSVCases(t *testing.T) {
	// test_single_line: FBH reads a headerless line as the header and returns 0 blocks;
	// fediops reads headerless files, so the line is a block (deliberate superset).
	l := mustParse(t, "example.org", FormatCSV, Options{})
	if len(l.Blocks) != 1 {
		t.Errorf("single line: %v", domains(l))
	}
	// test_header_only.
	for _, h := range []string{"domain,severity,public_comment", "#domain,#severity,#public_comment"} {
		if l := mustParse(t, h, FormatCSV, Options{}); l.Rows != 0 {
			t.Errorf("header only %q: %d rows", h, l.Rows)
		}
	}
	// test_2_blocks and test_4_blocks (with severities, comments dropped when not imported).
	data := "domain,severity,public_comment\nexample.org,silence,\"test 1\"\nexample2.org,suspend,\"test 2\"\nexample3.org,noop,\"test 3\"\nexample4.org,suspend,\"test 4\"\n"
	l = mustParse(t, data, FormatCSV, Options{})
	want := map[string]Severity{"example.org": Silence, "example2.org": Suspend, "example3.org": Noop, "example4.org": Suspend}
	if len(l.Blocks) != 4 {
		t.Fatalf("%v", domains(l))
	}
	for _, e := range l.Blocks {
		if e.Severity != want[e.Domain] || e.PublicComment != "" {
			t.Errorf("%+v", e)
		}
	}
}

// Names Mastodon 4.3 accepts as domain blocks (app/validators/domain_validator.rb: labels of
// 1..63 characters of a-z, 0-9 and '-'; libidn leaves ASCII labels alone) are kept, in every
// format, in the form Mastodon stores: no hyphen rules, no punycode check of "xn--" labels,
// and IDNA2003's "ß" → "ss".
func TestDomainFormsMastodonAccepts(t *testing.T) {
	names := []string{"-lead.example", "trail-.example", "ab--cd.example", "xn--zz.example", "XN--P1ABE3D-XN--80ASEHDB", "straße.example"}
	want := []string{"-lead.example", "trail-.example", "ab--cd.example", "xn--zz.example", "xn--p1abe3d-xn--80asehdb", "strasse.example"}
	var jsonRows []string
	for _, n := range names {
		jsonRows = append(jsonRows, fmt.Sprintf(`{"domain":%q,"severity":"suspend"}`, n))
	}
	inputs := map[Format]string{
		FormatCSV:            "domain,severity\n" + strings.Join(names, ",suspend\n") + ",suspend\n",
		FormatMastodonCSV:    "#domain,#severity\n" + strings.Join(names, ",suspend\n") + ",suspend\n",
		FormatJSON:           "[" + strings.Join(jsonRows, ",") + "]",
		FormatText:           strings.Join(names, "\n") + "\n",
		FormatRapidBlockCSV:  strings.Join(names, "\n") + "\n",
		FormatRapidBlockJSON: `{"blocks":{"` + strings.Join(names, `":{"isBlocked":true},"`) + `":{"isBlocked":true}}}`,
	}
	for f, data := range inputs {
		t.Run(string(f), func(t *testing.T) {
			l := mustParse(t, data, f, Options{})
			got := domains(l)
			slices.Sort(got)
			w := slices.Clone(want)
			slices.Sort(w)
			if !slices.Equal(got, w) || len(l.Skipped) != 0 {
				t.Errorf("domains %v, skipped %s; want %v", got, reasons(l), w)
			}
		})
	}
	// An obfuscated name is checked with the same rules.
	l := mustParse(t, "domain,severity\n-l**d.example,suspend\n", FormatCSV, Options{})
	if len(l.Obfuscated) != 1 || l.Obfuscated[0].Domain != "-l**d.example" {
		t.Errorf("obfuscated %+v, skipped %s", l.Obfuscated, reasons(l))
	}
}

func TestFastPathMatchesNormalize(t *testing.T) {
	for _, s := range []string{"a", "a.b", "ab--cd.example", "xn--bcher-kva.example", "-a.example", "a-.example", "a.b-c.d",
		"1.2.3.4", "0", "a.", "a..b", ".a", strings.Repeat("a", 63) + ".example", strings.Repeat("a", 64) + ".example",
		strings.Repeat("abcdefghi.", 25) + "abc", strings.Repeat("abcdefghi.", 25) + "abcd", "abc-d.e", "ab-cd", "a-b-c"} {
		checkFastPath(t, s)
	}
}

func checkFastPath(t testing.TB, s string) {
	t.Helper()
	if !isCanonicalASCII(s) {
		return
	}
	if got, err := normalizeDomain(s); err != nil || got != s {
		t.Errorf("fast path %q: %q %v", s, got, err)
	}
	if got, err := normalizeSlow(s); err != nil || got != s {
		t.Errorf("fast path accepts %q but domain.Normalize gives %q, %v", s, got, err)
	}
}

func TestCanaries(t *testing.T) {
	for d, want := range map[string]bool{
		"dni.invalid": true, "invalid": true, "a.b.invalid": true, "invalid.example": false,
		"canary.tier0.example.com": true, "canary.example.org": true, "canary.fedinuke.example.net": true,
		"000this.is.generated.from.overlap.across.trusted.sources.example.com": true,
		"000delete.this.line.if.you.have.read.the.documentation.on.seirdy.one": true,
		"seirdy.one": false, "canary.social": false, "example.com": false, "example.org": false,
		"public-comment.example.org": false, "canary.com": false, "notexample.com": false, "000.social": false,
	} {
		if got := IsCanary(d) != ""; got != want {
			t.Errorf("IsCanary(%q) = %v, want %v", d, got, want)
		}
	}
}

func TestStricterThan(t *testing.T) {
	b := func(s Severity, rm, rr bool) Block { return Block{Severity: s, RejectMedia: rm, RejectReports: rr} }
	for _, tc := range []struct {
		child, parent Block
		want          bool
	}{
		{b(Suspend, false, false), b(Suspend, true, true), true},
		{b(Silence, true, true), b(Suspend, false, false), false},
		{b(Noop, true, true), b(Suspend, false, false), false},
		{b(Noop, true, true), b(Silence, false, false), false},
		{b(Silence, false, false), b(Silence, false, false), true},
		{b(Silence, false, false), b(Silence, true, false), false},
		{b(Silence, true, false), b(Silence, true, false), true},
		{b(Silence, false, true), b(Noop, false, false), true},
		{b(Noop, false, false), b(Noop, false, false), true},
		{b(Noop, false, false), b(Noop, false, true), false},
	} {
		if got := tc.child.StricterThan(tc.parent); got != tc.want {
			t.Errorf("%+v StricterThan %+v = %v", tc.child, tc.parent, got)
		}
	}
}

func TestObfuscationHelpers(t *testing.T) {
	// Expected values computed with Mastodon's rule (ratio = len/4, mask r < i < len-r).
	for d, want := range map[string]string{
		"example.com":           "exa****.*om",
		"ema.example.net":       "ema.*******.net",
		"mastodon.social":       "mast****.***ial",
		"a.b":                   "a.*",
		"abc":                   "a**",
		"xn--bcher-kva.example": "xn--bc*******.**ample",
		"kiwifarms.net":         "kiwi*****.net",
	} {
		got := PublicDomain(d)
		if got != want {
			t.Errorf("PublicDomain(%q) = %q, want %q", d, got, want)
		}
		if !MatchesObfuscated(got, d) {
			t.Errorf("%q does not match its own mask %q", d, got)
		}
	}
	for _, tc := range []struct {
		p, d string
		want bool
	}{
		{"ap.***.st", "ap.foo.st", true},
		{"ap.***.st", "ap.f.o.st", false}, // '*' never stands for a dot
		{"ap.***.st", "ap.fooo.st", false},
		{"ap.***.st", "ab.foo.st", false},
		{"kissl*lis.com", "kisslolis.com", true},
	} {
		if got := MatchesObfuscated(tc.p, tc.d); got != tc.want {
			t.Errorf("MatchesObfuscated(%q, %q) = %v", tc.p, tc.d, got)
		}
	}
}

func TestFromDomains(t *testing.T) {
	l := FromDomains("cli", []string{"Good.Example", "bad domain", "*.wild.example"})
	if !slices.Equal(domains(l), []string{"good.example", "wild.example"}) || reasons(l) != "2:bad domain:invalid_domain" {
		t.Errorf("%v %s", domains(l), reasons(l))
	}
}

func TestCheckFields(t *testing.T) {
	if err := CheckFields([]string{"domain", "severity", "public_comment", "obfuscate"}); err != nil {
		t.Error(err)
	}
	if err := CheckFields([]string{"reject_media", "comments"}); err == nil {
		t.Error("unknown field accepted")
	}
	if _, err := ParseFormat("Mastodon_CSV"); err != nil {
		t.Error(err)
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("xml accepted")
	}
}

func TestFromRows(t *testing.T) {
	l := FromRows("fires", "fires", []Row{
		{Line: 1, Domain: "Spam.Example.", Severity: Suspend, RejectMedia: true, PublicComment: "Spam"},
		{Line: 2, Domain: "not a domain", Severity: Silence},
		{Line: 3, Domain: "actor", Skip: "fires_actor", Detail: "https://x.example/users/a"},
		{Line: 4, Domain: "quiet.example", Severity: Suspend, RejectReports: true},
		{Line: 5, Domain: "spam.example", Severity: Silence, PublicComment: "Spam, Bots"},
	}, Options{ImportFields: []string{FieldPublicComment, FieldRejectReports}, MaxSeverity: Silence})
	if l.Rows != 5 || len(l.Blocks) != 2 || len(l.Skipped) != 3 || l.Format != "fires" {
		t.Fatalf("list = %+v", l)
	}
	if b := l.Blocks[0]; b.Domain != "quiet.example" || b.Severity != Silence || !b.RejectReports || b.RejectMedia {
		t.Errorf("capped, flags by import_fields: %+v", b)
	}
	if b := l.Blocks[1]; b.Domain != "spam.example" || b.PublicComment != "Spam, Bots" || b.Line != 5 {
		t.Errorf("last row wins: %+v", b)
	}
	if got := l.SkippedByReason(); got[ReasonInvalidDomain] != 1 || got["fires_actor"] != 1 || got[ReasonDuplicate] != 1 {
		t.Errorf("skipped = %v", got)
	}
}

// ParseOwned reads exactly what Parse reads, without copying the data.
func TestParseOwned(t *testing.T) {
	for _, data := range []string{
		"\xef\xbb\xbf#domain,#severity,#public_comment\nA.example,suspend,\"spam, bots\"\nb.example,silence,\n",
		"domain,severity\r\nc.example,noop\r\n",
		"bad.example\n# comment\n",
		"",
	} {
		want, errWant := Parse("s", []byte(data), "", allFields)
		got, err := ParseOwned("s", []byte(data), "", allFields)
		if (err == nil) != (errWant == nil) || (err == nil && fmt.Sprint(got) != fmt.Sprint(want)) {
			t.Errorf("%q: ParseOwned = %+v, %v; Parse = %+v, %v", data, got, err, want, errWant)
		}
	}
}

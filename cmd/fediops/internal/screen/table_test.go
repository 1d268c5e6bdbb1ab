package screen

import (
	"bytes"
	"strings"
	"testing"

	"github.com/jedib0t/go-pretty/v6/text"
)

func sample() Table {
	return Table{
		Header: []string{"CHECK", "STATUS", "COUNT", "HINT"},
		Rows: [][]string{
			{"cloudsql.backups_enabled", "PASS", "3", "-"},
			{"gcs.retention", "FAIL", "12", "set a retention policy of at least 30 days on the bucket so that a deleted object can be recovered; see docs/runbook.md"},
			{"東京.example", "WARN", "7", "ドメインのブロックは管理者の判断で維持されます (wide characters take two columns each)"},
		},
		Right:  []int{2},
		Indent: "  ",
	}
}

func TestTableFitsWidth(t *testing.T) {
	for _, width := range []int{30, 40, 60, 80, 120, 200} {
		var b bytes.Buffer
		if err := sample().Write(&b, width); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if w := text.StringWidthWithoutEscSequences(line); w > width {
				t.Errorf("width %d: line of %d columns: %q", width, w, line)
			}
			if line != "" && !strings.HasPrefix(line, "  ") {
				t.Errorf("indent lost: %q", line)
			}
		}
		// Wrapped, not cut: every word of every cell is still there.
		for _, r := range sample().Rows {
			for _, cell := range r {
				for _, word := range strings.Fields(cell) {
					if word != "-" && len(word) < 8 && !strings.Contains(out, word) {
						t.Errorf("width %d: %q lost:\n%s", width, word, out)
					}
				}
			}
		}
	}
}

// TestRecordsWhenNarrow: columns too narrow to read become one block per row.
func TestRecordsWhenNarrow(t *testing.T) {
	var b bytes.Buffer
	tb := sample()
	tb.Lead = 2
	if err := tb.Write(&b, 60); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"  cloudsql.backups_enabled  PASS\n", "      COUNT  3\n", "      HINT   set a retention policy", "\n\n  gcs.retention  FAIL\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("records lack %q:\n%s", want, out)
		}
	}
	var wide bytes.Buffer
	if err := tb.Write(&wide, 200); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(wide.String(), "\n"); lines != 4 {
		t.Errorf("a table that fits is written as records:\n%s", wide.String())
	}
}

func TestTableWhole(t *testing.T) {
	var b bytes.Buffer
	tb := sample()
	tb.Rows = append(tb.Rows, []string{"evil\x1b[2Jname", "OK\nNEXT", "1", "x"})
	if err := tb.Write(&b, 0); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 1+len(tb.Rows) {
		t.Fatalf("a cell was wrapped without a width:\n%s", b.String())
	}
	for i, r := range tb.Rows[:3] {
		if !strings.Contains(lines[i+1], r[3]) || !strings.Contains(lines[i+1], r[0]) {
			t.Errorf("line %q lacks its cells", lines[i+1])
		}
	}
	if strings.Contains(b.String(), "\x1b") || !strings.Contains(lines[4], "evil [2Jname") {
		t.Errorf("control characters reached the terminal: %q", lines[4])
	}
	if !strings.HasPrefix(lines[0], "  CHECK") || strings.HasSuffix(lines[0], " ") {
		t.Errorf("header %q", lines[0])
	}
	// COUNT is aligned right: "3" ends where "12" ends.
	if strings.Index(lines[1], " 3 ")+1 != strings.Index(lines[2], "12 ")+1 {
		t.Errorf("counts not aligned right:\n%s\n%s", lines[1], lines[2])
	}
}

func TestFitKeepsNarrowColumns(t *testing.T) {
	tb := Table{Header: []string{"A", "B", "C"}, Rows: [][]string{{"short", strings.Repeat("x", 100), strings.Repeat("y ", 50)}}}
	limits, records := tb.fit(80)
	if limits[0] != 0 || limits[1]+limits[2] != 80-5-4 || records {
		t.Errorf("limits = %v, records %v", limits, records)
	}
	if l, _ := tb.fit(500); l != nil {
		t.Error("a table that fits was limited")
	}
	if l, _ := tb.fit(0); l != nil {
		t.Error("no width, yet limited")
	}
}

// Package screen is what the CLI shows on a terminal: tables that fit its width, and a status
// line that log lines do not garble. Widths are measured and text is wrapped by go-pretty
// (grapheme clusters, East Asian wide characters); terminal sizes come from golang.org/x/term.
package screen

import (
	"io"
	"slices"
	"strings"
	"unicode"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/jedib0t/go-pretty/v6/text"
	"golang.org/x/term"

	"github.com/fediops/fediops/shared/logging"
)

// DefaultWidth is the width assumed for a terminal whose size cannot be read.
const DefaultWidth = 80

// Width is the number of columns output to w may use: the terminal's width (DefaultWidth
// when it cannot be read), or 0 — no limit — when w is not a terminal.
func Width(w io.Writer) int {
	if !logging.IsTerminal(w) {
		return 0
	}
	f := w.(interface{ Fd() uintptr })
	if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
		return cols
	}
	return DefaultWidth
}

// gap is the space between two columns.
const gap = "  "

// minColumn is the narrowest a column is wrapped to. A table whose columns would be
// narrower than this on the terminal is printed as records instead (one block per row).
const minColumn = 20

// Table is a plain table: a header line and rows, columns separated by two spaces.
type Table struct {
	Header []string
	Rows   [][]string
	// Right lists the columns (from 0) aligned to the right: counts.
	Right []int
	// Indent starts every line.
	Indent string
	// Lead is how many columns head each record when the terminal is too narrow for the
	// columns side by side and the rows are printed as records (at least 1).
	Lead int
}

// Write writes the table to w. With width > 0, cells are wrapped (at spaces where they can
// be) so that the lines fit in width columns; with 0, every cell is written whole on one
// line. Control characters in cells become spaces: they would move the cursor.
func (t Table) Write(w io.Writer, width int) error {
	limits, records := t.fit(width)
	if records {
		return t.writeRecords(w, width)
	}
	tw := table.NewWriter()
	style := table.StyleDefault
	style.Options = table.Options{}
	style.Box.PaddingLeft, style.Box.PaddingRight = "", gap
	style.Format.Header = text.FormatDefault
	style.Format.HeaderAlign = text.AlignLeft
	tw.SetStyle(style)
	tw.AppendHeader(row(t.Header))
	for _, r := range t.Rows {
		tw.AppendRow(row(r))
	}
	var cfgs []table.ColumnConfig
	for i := range t.Header {
		c := table.ColumnConfig{Number: i + 1, Align: text.AlignLeft}
		if slices.Contains(t.Right, i) {
			c.Align = text.AlignRight
		}
		if limits != nil && limits[i] > 0 {
			c.WidthMax, c.WidthMaxEnforcer = limits[i], text.WrapSoft
		}
		cfgs = append(cfgs, c)
	}
	tw.SetColumnConfigs(cfgs)
	var b strings.Builder
	for _, line := range strings.Split(tw.Render(), "\n") {
		b.WriteString(strings.TrimRightFunc(t.Indent+line, unicode.IsSpace))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeRecords writes each row as a block that fits in width: its lead cells on the first
// line, then one "HEADER  value" line per other cell that says something (not "" or "-"),
// wrapped.
func (t Table) writeRecords(w io.Writer, width int) error {
	lead := min(max(t.Lead, 1), len(t.Header))
	label := 0
	for _, h := range t.Header[lead:] {
		label = max(label, text.StringWidthWithoutEscSequences(h))
	}
	indent := t.Indent + "    "
	valueWidth := max(width-text.StringWidthWithoutEscSequences(indent)-label-len(gap), 8)
	var b strings.Builder
	for i, r := range t.Rows {
		if i > 0 {
			b.WriteByte('\n')
		}
		var head []string
		for _, c := range r[:min(lead, len(r))] {
			head = append(head, clean(c))
		}
		title := text.WrapSoft(strings.Join(head, gap), max(width-text.StringWidthWithoutEscSequences(t.Indent), 8))
		for _, line := range strings.Split(title, "\n") {
			b.WriteString(strings.TrimRightFunc(t.Indent+line, unicode.IsSpace) + "\n")
		}
		for j := lead; j < min(len(r), len(t.Header)); j++ {
			v := clean(r[j])
			if v := strings.TrimSpace(v); v == "" || v == "-" {
				continue // nothing to say
			}
			for k, line := range strings.Split(text.WrapSoft(v, valueWidth), "\n") {
				name := ""
				if k == 0 {
					name = t.Header[j]
				}
				b.WriteString(strings.TrimRightFunc(indent+text.Pad(name, label, ' ')+gap+line, unicode.IsSpace) + "\n")
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// maxWord caps how wide a column must be to keep its words whole.
const maxWord = 32

// fit returns the widest each column may be for the table to fit in width (0: no limit), or
// nil when it fits as it is. Narrow columns keep their width; the others share what is left
// evenly. records is set when that would leave a column too narrow to read: narrower than
// minColumn, or than its longest word (up to maxWord).
func (t Table) fit(width int) (limits []int, records bool) {
	if width <= 0 || len(t.Header) == 0 {
		return nil, false
	}
	n := len(t.Header)
	natural, need := make([]int, n), make([]int, n)
	for _, r := range append([][]string{t.Header}, t.Rows...) {
		for i := range min(n, len(r)) {
			c := clean(r[i])
			natural[i] = max(natural[i], text.StringWidthWithoutEscSequences(c))
			for _, word := range strings.Fields(c) {
				need[i] = max(need[i], min(text.StringWidthWithoutEscSequences(word), maxWord))
			}
		}
	}
	avail := width - text.StringWidthWithoutEscSequences(t.Indent) - len(gap)*(n-1)
	total := 0
	for _, w := range natural {
		total += w
	}
	if total <= avail {
		return nil, false
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return natural[a] - natural[b] })
	limits = make([]int, n)
	left := avail
	for k, i := range order {
		share := left / (n - k)
		if natural[i] <= share {
			left -= natural[i]
			continue
		}
		// This column and the wider ones share what is left.
		rest := order[k:]
		for j, c := range rest {
			limits[c] = max(1, left/len(rest))
			if j < left%len(rest) {
				limits[c]++
			}
			records = records || limits[c] < min(natural[c], max(minColumn, need[c]))
		}
		break
	}
	return limits, records
}

func row(cells []string) table.Row {
	r := make(table.Row, len(cells))
	for i, c := range cells {
		r[i] = clean(c)
	}
	return r
}

// clean keeps a cell on one line and its control characters off the terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

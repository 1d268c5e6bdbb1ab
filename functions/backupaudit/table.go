package backupaudit

import (
	"fmt"
	"strings"
)

// Table returns the report as a table for people: a header (check, target, status, observed,
// expected, hint) and one row per check, each cell on one line. Laying it out (the
// terminal's width) is the caller's business.
func Table(r Report) (header []string, rows [][]string) {
	header = []string{"CHECK", "TARGET", "STATUS", "OBSERVED", "EXPECTED", "HINT"}
	for _, c := range r.Checks {
		hint := c.Hint
		if hint == "" {
			hint = "-"
		}
		rows = append(rows, []string{cell(c.ID), cell(c.Target), strings.ToUpper(cell(string(c.Status))),
			cell(c.Observed), cell(c.Expected), cell(hint)})
	}
	return header, rows
}

// SummaryLine is the report's verdict and counts: "FAIL: 16 pass, 4 warn, 13 fail".
func SummaryLine(r Report) string {
	return fmt.Sprintf("%s: %d pass, %d warn, %d fail", strings.ToUpper(string(r.Status())), r.Summary.Pass, r.Summary.Warn, r.Summary.Fail)
}

// cell keeps a value on one table line.
func cell(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r', '\v', '\f':
			return ' '
		}
		return r
	}, s)
}

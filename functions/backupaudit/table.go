package backupaudit

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the report as an aligned, readable table (check, target, status,
// observed, expected, hint) followed by the summary line.
func WriteTable(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tTARGET\tSTATUS\tOBSERVED\tEXPECTED\tHINT")
	for _, c := range r.Checks {
		hint := c.Hint
		if hint == "" {
			hint = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n",
			cell(c.ID), cell(c.Target), strings.ToUpper(cell(string(c.Status))),
			cell(c.Observed), cell(c.Expected), cell(hint))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write backup audit table: %w", err)
	}
	if _, err := fmt.Fprintf(w, "\n%s: %d pass, %d warn, %d fail\n",
		strings.ToUpper(string(r.Status())), r.Summary.Pass, r.Summary.Warn, r.Summary.Fail); err != nil {
		return fmt.Errorf("write backup audit table: %w", err)
	}
	return nil
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

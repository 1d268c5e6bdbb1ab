package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Problem is one thing wrong with a configuration file: the file, the dotted key path
// (e.g. "instance[1].url" or "blocklist.mergeplan") and what is wrong with it.
type Problem struct {
	File string
	Key  string
	Msg  string
}

func (p Problem) String() string {
	if p.Key == "" {
		return fmt.Sprintf("%s: %s", p.File, p.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", p.File, p.Key, p.Msg)
}

// Error lists every problem found in a configuration, so that an admin can fix them all at once.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, 0, len(e.Problems)+1)
	lines = append(lines, fmt.Sprintf("invalid configuration (%d problem(s)):", len(e.Problems)))
	for _, p := range e.Problems {
		lines = append(lines, "  "+p.String())
	}
	return strings.Join(lines, "\n")
}

// Report collects problems under a key prefix. Section validators receive one: they call
// Add("mergeplan", "must be max or min") and the problem is recorded as "blocklist.mergeplan".
type Report struct {
	file     string
	prefix   string
	problems *[]Problem
}

// NewReport returns an empty report for a file.
func NewReport(file string) Report { return Report{file: file, problems: new([]Problem)} }

// Add records a problem with key (relative to the report's prefix).
func (r Report) Add(key, format string, args ...any) {
	k := key
	if r.prefix != "" && key != "" {
		k = r.prefix + "." + key
	} else if key == "" {
		k = r.prefix
	}
	*r.problems = append(*r.problems, Problem{File: r.file, Key: k, Msg: fmt.Sprintf(format, args...)})
}

// Sub returns a report for a nested key, e.g. r.Sub("blocklist_url_sources[2]").
func (r Report) Sub(key string) Report {
	k := key
	if r.prefix != "" {
		k = r.prefix + "." + key
	}
	return Report{file: r.file, prefix: k, problems: r.problems}
}

// Merge adds the problems of err (a *Error) to r; any other error becomes one problem.
func (r Report) Merge(err error) {
	if err == nil {
		return
	}
	var ce *Error
	if errors.As(err, &ce) {
		*r.problems = append(*r.problems, ce.Problems...)
		return
	}
	*r.problems = append(*r.problems, Problem{File: r.file, Key: r.prefix, Msg: err.Error()})
}

// Err returns the problems as an *Error, or nil if there are none.
func (r Report) Err() error {
	if len(*r.problems) == 0 {
		return nil
	}
	return &Error{Problems: slices.Clone(*r.problems)}
}

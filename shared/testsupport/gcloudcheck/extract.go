package gcloudcheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/text"
	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// Env gives the sample values that stand for what an admin's shell would hold.
type Env struct {
	// Vars are shell variables ($PROJECT, $REGION ...). A variable not here is an error.
	Vars map[string]string
	// Outputs are what command substitutions print, keyed by the command as written
	// ("terraform -chdir=infra output -raw cloudbuild_substitutions"). One not here is an
	// error.
	Outputs map[string]string
}

// placeholder matches <name> and <scheduler region>: words an admin replaces.
var placeholder = regexp.MustCompile(`<([a-z][a-z0-9 _-]*)>`)

// fillPlaceholders turns <scheduler region> into SCHEDULER_REGION, so that shell code reads
// it as a word rather than a redirection.
func fillPlaceholders(s string) string {
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		name := strings.Trim(m, "<>")
		return strings.ToUpper(strings.NewReplacer(" ", "_", "-", "_").Replace(name))
	})
}

// FromShell returns every gcloud command of a shell script (in pipelines, lists, command
// substitutions), its words expanded as the shell would with env. firstLine is the line of
// the script's first line in source (0: source already says where).
func FromShell(source string, firstLine int, script string, kind Kind, env Env) ([]Line, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(fillPlaceholders(script)), "")
	if err != nil {
		var perr syntax.ParseError
		if errors.As(err, &perr) && firstLine > 0 {
			return nil, fmt.Errorf("%s:%d: not shell code: %s", source, firstLine+int(perr.Pos.Line())-1, perr.Text)
		}
		return nil, fmt.Errorf("%s: not shell code: %w", source, err)
	}
	var pairs []string
	for k, v := range env.Vars {
		pairs = append(pairs, k+"="+v)
	}
	var substErr error
	cfg := &expand.Config{
		Env:     expand.ListEnviron(pairs...),
		NoUnset: true,
		CmdSubst: func(w io.Writer, cs *syntax.CmdSubst) error {
			var b strings.Builder
			for _, st := range cs.Stmts {
				if err := syntax.NewPrinter().Print(&b, st); err != nil {
					return err
				}
			}
			out, ok := env.Outputs[b.String()]
			if !ok {
				substErr = fmt.Errorf("no sample output for $(%s): add it to Env.Outputs", b.String())
				return substErr
			}
			_, err := io.WriteString(w, out)
			return err
		},
	}
	var lines []Line
	var walkErr error
	syntax.Walk(f, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok || len(call.Args) == 0 || walkErr != nil {
			return walkErr == nil
		}
		if name := call.Args[0].Lit(); name != "gcloud" {
			return true
		}
		where := source
		if firstLine > 0 {
			where = fmt.Sprintf("%s:%d", source, firstLine+int(call.Pos().Line())-1)
		}
		args, err := expand.Fields(cfg, call.Args[1:]...)
		if err != nil {
			if substErr != nil {
				err = substErr
			}
			walkErr = fmt.Errorf("%s: %w", where, err)
			return false
		}
		lines = append(lines, Line{Source: where, Args: args, Kind: kind})
		return true
	})
	return lines, walkErr
}

// FromProse returns the gcloud commands written in a sentence, such as a hint
// ("see why: gcloud sql instances describe db --project=p; then ...") or a description
// ("(gcloud functions deploy --trigger-topic)."). A command runs from "gcloud " to the end of
// the text or, outside quotes and parentheses, to "; ", "&&", "|", ", ", ": ", " (", an
// unmatched ")" or a backquote; a final "." is punctuation.
func FromProse(source, prose string, kind Kind, env Env) ([]Line, error) {
	prose = fillPlaceholders(prose)
	var lines []Line
	for i := 0; ; {
		j := strings.Index(prose[i:], "gcloud ")
		if j < 0 {
			return lines, nil
		}
		start := i + j
		i = start + len("gcloud ")
		if start > 0 && !strings.ContainsRune(" (`'\"\t\n", rune(prose[start-1])) {
			continue // part of a longer word
		}
		cmd := strings.TrimSuffix(strings.TrimSpace(prose[start:commandEnd(prose, start)]), ".")
		found, err := FromShell(source, 0, cmd, kind, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", source, cmd, err)
		}
		lines = append(lines, found...)
	}
}

// commandEnd returns where the command starting at start ends in prose.
func commandEnd(prose string, start int) int {
	var quote byte
	depth := 0
	for k := start; k < len(prose); k++ {
		c := prose[k]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '(':
			if k > 0 && prose[k-1] == ' ' && depth == 0 {
				return k
			}
			depth++
		case c == ')':
			if depth == 0 {
				return k
			}
			depth--
		case depth > 0:
		case c == '`', c == '|', c == '\n':
			return k
		case c == ';', c == '&' && strings.HasPrefix(prose[k:], "&&"):
			return k
		case (c == ',' || c == ':') && k+1 < len(prose) && prose[k+1] == ' ':
			return k
		}
	}
	return len(prose)
}

// commandPath matches the words of a command path: "functions", "backup-restore".
var commandPath = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// fromCodeSpan checks inline code that starts with "gcloud ": a Command when it has
// arguments, a Mention when it only names a command ("`gcloud functions deploy`").
func fromCodeSpan(source string, line int, code string, env Env) ([]Line, error) {
	words := strings.Fields(code)
	kind := Mention
	for _, w := range words[1:] {
		if !commandPath.MatchString(w) {
			kind = Command
		}
	}
	return FromShell(source, line, code, kind, env)
}

// FromMarkdown returns the gcloud commands of a Markdown document: in fenced and indented
// code blocks that mention gcloud (other than those of a language that is not shell, such
// as toml), as shell code; in inline code starting with "gcloud ", as a Command, or a Mention when it only names
// a command.
func FromMarkdown(name string, src []byte, env Env) ([]Line, error) {
	doc := goldmark.New().Parser().Parse(text.NewReader(src))
	lineOf := func(offset int) int { return bytes.Count(src[:offset], []byte("\n")) + 1 }
	var lines []Line
	err := ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch b := n.(type) {
		case *ast.FencedCodeBlock, *ast.CodeBlock:
			if fb, ok := b.(*ast.FencedCodeBlock); ok {
				switch string(fb.Language(src)) {
				case "", "sh", "bash", "shell", "console":
				default:
					return ast.WalkSkipChildren, nil
				}
			}
			segs := n.Lines()
			if segs.Len() == 0 {
				return ast.WalkSkipChildren, nil
			}
			var code bytes.Buffer
			for i := 0; i < segs.Len(); i++ {
				s := segs.At(i)
				code.Write(s.Value(src))
			}
			if !strings.Contains(code.String(), "gcloud") {
				return ast.WalkSkipChildren, nil // nothing to check (and maybe not shell)
			}
			found, err := FromShell(name, lineOf(segs.At(0).Start), code.String(), Command, env)
			if err != nil {
				return ast.WalkStop, err
			}
			lines = append(lines, found...)
			return ast.WalkSkipChildren, nil
		case *ast.CodeSpan:
			var code bytes.Buffer
			for c := b.FirstChild(); c != nil; c = c.NextSibling() {
				if t, ok := c.(*ast.Text); ok {
					code.Write(t.Segment.Value(src))
				}
			}
			// A line ending in a code span is a space (CommonMark).
			span := strings.ReplaceAll(code.String(), "\n", " ")
			if !strings.HasPrefix(span, "gcloud ") {
				return ast.WalkSkipChildren, nil
			}
			line := 0
			if t, ok := b.FirstChild().(*ast.Text); ok {
				line = lineOf(t.Segment.Start)
			}
			found, err := fromCodeSpan(name, line, span, env)
			if err != nil {
				return ast.WalkStop, err
			}
			lines = append(lines, found...)
			return ast.WalkSkipChildren, nil
		}
		return ast.WalkContinue, nil
	})
	return lines, err
}

// FromHashComments returns the gcloud commands in the "#" comments of a Terraform, YAML or
// shell file. An indented comment block ("#   gcloud ...", continuation lines included) that
// mentions gcloud is an example to run, read as shell code (Command); gcloud named in the
// comment's prose is a Mention.
func FromHashComments(name string, src []byte, env Env) ([]Line, error) {
	var lines []Line
	var code, prose []string
	codeStart, proseStart := 0, 0
	shell := func() error {
		defer func() { code = nil }()
		if !strings.Contains(strings.Join(code, "\n"), "gcloud") {
			return nil // an indented table or another tool's example
		}
		found, err := FromShell(name, codeStart, strings.Join(code, "\n"), Command, env)
		if err != nil {
			return err
		}
		lines = append(lines, found...)
		return nil
	}
	flush := func() error {
		if err := shell(); err != nil {
			return err
		}
		if len(prose) > 0 {
			found, err := FromProse(fmt.Sprintf("%s:%d", name, proseStart), strings.Join(prose, " "), Mention, env)
			if err != nil {
				return err
			}
			lines = append(lines, found...)
		}
		code, prose = nil, nil
		return nil
	}
	for i, raw := range strings.Split(string(src), "\n") {
		trimmed := strings.TrimSpace(raw)
		text, isComment := strings.CutPrefix(trimmed, "#")
		switch {
		case !isComment:
			if err := flush(); err != nil {
				return nil, err
			}
		case strings.HasPrefix(text, "   ") || len(code) > 0 && strings.HasSuffix(code[len(code)-1], "\\"):
			if len(prose) > 0 {
				found, err := FromProse(fmt.Sprintf("%s:%d", name, proseStart), strings.Join(prose, " "), Mention, env)
				if err != nil {
					return nil, err
				}
				lines = append(lines, found...)
				prose = nil
			}
			if len(code) == 0 {
				codeStart = i + 1
			}
			code = append(code, text)
		default:
			if err := shell(); err != nil {
				return nil, err
			}
			if len(prose) == 0 {
				proseStart = i + 1
			}
			prose = append(prose, strings.TrimSpace(text))
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return lines, nil
}

// Command fediops is the operator CLI: it runs the same jobs as the Cloud Functions, locally,
// and starts the functions on a local Functions Framework server.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fediops/fediops/cmd/fediops/internal/screen"
	"github.com/fediops/fediops/functions/approve"
	"github.com/fediops/fediops/functions/backupaudit"
	"github.com/fediops/fediops/functions/blocklist"
	"github.com/fediops/fediops/shared/config"
	"github.com/fediops/fediops/shared/logging"
	"github.com/fediops/fediops/shared/run"
	"github.com/fediops/fediops/shared/setup"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitConfig = 2
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func fail(code int, err error) error { return &exitError{code: code, err: err} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(execute(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// cli is the state shared by the commands.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	configPath     string
	logLevel       string
	logFormat      string
	// wide prints every table cell whole, whatever the terminal's width.
	wide bool
	// status is the status line when stderr is a terminal (progress); log lines go through
	// it so that the two do not garble each other. Nil otherwise.
	status *screen.Status
	// customize adjusts environments before jobs run (tests).
	customize func(*setup.Env)
}

// execute runs the CLI and returns the process exit code.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return newCLI(stdout, stderr, getenv).run(ctx, args)
}

// newCLI returns the CLI writing to stdout and stderr; a terminal on stderr gets a status
// line for progress.
func newCLI(stdout, stderr io.Writer, getenv func(string) string) *cli {
	c := &cli{stdout: stdout, stderr: stderr, getenv: getenv}
	if logging.IsTerminal(stderr) {
		c.status = screen.NewStatus(stderr)
	}
	return c
}

// run runs one command line and returns the process exit code.
func (c *cli) run(ctx context.Context, args []string) int {
	if c.status != nil {
		defer c.status.Clear()
	}
	root := &cobra.Command{
		Use:           "fediops",
		Short:         "Operations robot for Mastodon instances on Google Cloud",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&c.configPath, "config", "", "configuration file: path, file:///path or gs://bucket/object (default $FEDIOPS_CONFIG)")
	root.PersistentFlags().StringVar(&c.logLevel, "log-level", "", "debug, info, warning or error (default $FEDIOPS_LOG_LEVEL or info)")
	root.PersistentFlags().StringVar(&c.logFormat, "log-format", "", "auto (human lines on a terminal, JSON lines otherwise), json or text (default $FEDIOPS_LOG_FORMAT or auto)")
	root.PersistentFlags().BoolVar(&c.wide, "wide", false, "print every table cell whole instead of wrapping to the terminal's width")
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetArgs(args)
	setVersion(root)
	root.AddCommand(c.triageCmd(), c.blocklistCmd(), c.backupCmd(), c.configCmd(), c.serveCmd(), c.demoCmd(), c.authCmd(), c.versionCmd())
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(c.stderr, "fediops:", err)
	var ee *exitError
	var ce *config.Error
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ce):
		return exitConfig
	case run.IsPermanent(err):
		return exitConfig
	}
	if isUsage(err) {
		return exitConfig
	}
	return exitFailed
}

// isUsage reports cobra's argument and flag errors.
func isUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "invalid argument", "flag needs an argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// sections returns the configuration's sections, each checked by the function that owns it.
func sections() map[string]setup.SectionCheck {
	return map[string]setup.SectionCheck{
		"triage":    approve.CheckConfig,
		"blocklist": blocklist.CheckConfig,
		"backup":    backupaudit.CheckConfig,
	}
}

// env opens the job environment of a command that uses the sections named in uses:
// configuration from --config or $FEDIOPS_CONFIG, the archive, logs on stderr. A problem in
// a section it uses is an error (exit 2); one in another section is a WARNING and the
// command goes on.
func (c *cli) env(ctx context.Context, uses ...string) (*setup.Env, error) {
	return c.envWith(ctx, c.params(), uses...)
}

// envWithoutArchive is env for a command that never touches the archive (auth check): a
// configuration without [archive] does for it.
func (c *cli) envWithoutArchive(ctx context.Context, uses ...string) (*setup.Env, error) {
	p := c.params()
	p.NoArchive = true
	return c.envWith(ctx, p, uses...)
}

// params are the environment's parameters with the command-line flags applied.
func (c *cli) params() setup.Params {
	p := setup.ParamsFromEnv(c.getenv, c.logOutput())
	if c.configPath != "" {
		p.ConfigLocation = c.configPath
	}
	if c.logLevel != "" {
		p.LogLevel = c.logLevel
	}
	if c.logFormat != "" {
		p.LogFormat = c.logFormat
	}
	return p
}

// logOutput is where log lines go: stderr, through the status line when there is one.
func (c *cli) logOutput() io.Writer {
	if c.status != nil {
		return c.status
	}
	return c.stderr
}

func (c *cli) envWith(ctx context.Context, p setup.Params, uses ...string) (*setup.Env, error) {
	e, err := setup.Open(ctx, p)
	if err != nil {
		e.Close()
		return nil, fail(exitConfig, err)
	}
	if err := c.checkSections(e.Log, e.Config, uses); err != nil {
		e.Close()
		return nil, err
	}
	if c.customize != nil {
		c.customize(e)
	}
	return e, nil
}

// checkSections validates the sections a command uses strictly (exit 2) and logs one
// WARNING line for each other section that has problems.
func (c *cli) checkSections(log *slog.Logger, cfg *config.Config, uses []string) error {
	var errs []error
	checks := sections()
	for _, name := range slices.Sorted(maps.Keys(checks)) {
		err := checks[name](cfg)
		switch {
		case err == nil:
		case slices.Contains(uses, name):
			errs = append(errs, err)
		default:
			log.Warn(fmt.Sprintf("[%s] has problems; this command does not need it and goes on: %s", name, oneLine(err)), "section", name)
		}
	}
	if err := config.Join(cfg.File, errs...); err != nil {
		return fail(exitConfig, err)
	}
	return nil
}

// oneLine is a configuration error's problems on one line.
func oneLine(err error) string {
	var ce *config.Error
	if !errors.As(err, &ce) {
		return err.Error()
	}
	var out []string
	for _, p := range ce.Problems {
		out = append(out, p.String())
	}
	return strings.Join(out, "; ")
}

// tableWidth is the width tables written to w wrap to: the terminal's, or none (--wide, or w
// is not a terminal).
func (c *cli) tableWidth(w io.Writer) int {
	if c.wide {
		return 0
	}
	return screen.Width(w)
}

// timeoutFlag adds --timeout to a job command.
func timeoutFlag(cmd *cobra.Command) *time.Duration {
	d := new(time.Duration)
	cmd.Flags().DurationVar(d, "timeout", 0, "stop the run in good order before this much time has passed, as the deployed function does at its timeout (default: no limit)")
	return d
}

// timedEnv opens the environment of a job command (uses: the config sections it reads) and
// gives it the --timeout deadline (withTimeout); done closes both.
func (c *cli) timedEnv(ctx context.Context, timeout time.Duration, uses ...string) (context.Context, *setup.Env, func(), error) {
	env, err := c.env(ctx, uses...)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel, err := withTimeout(ctx, env, timeout)
	if err != nil {
		env.Close()
		return nil, nil, nil, err
	}
	return ctx, env, func() { cancel(); env.Close() }, nil
}

// withTimeout gives the run a deadline of d (none when 0): the job stops in good order a
// margin before it (run.WithTimeout), and whatever is still running at d is cancelled.
func withTimeout(ctx context.Context, env *setup.Env, d time.Duration) (context.Context, context.CancelFunc, error) {
	if d == 0 {
		return ctx, func() {}, nil
	}
	if m := run.Margin(d); d <= m {
		return ctx, func() {}, fail(exitConfig, fmt.Errorf("--timeout %s: a run keeps %s of it to stop in good order; give it more", d, m))
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	return run.WithTimeout(ctx, env.Clock, d), cancel, nil
}

// Command fediops is the operator CLI: it runs the same jobs as the Cloud Functions, locally,
// and starts the functions on a local Functions Framework server.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fediops/fediops/shared/config"
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
	// customize adjusts environments before jobs run (tests).
	customize func(*setup.Env)
}

// execute runs the CLI and returns the process exit code.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return runWith(ctx, &cli{stdout: stdout, stderr: stderr, getenv: getenv}, args)
}

func runWith(ctx context.Context, c *cli, args []string) int {
	root := &cobra.Command{
		Use:           "fediops",
		Short:         "Operations robot for Mastodon instances on Google Cloud",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&c.configPath, "config", "", "configuration file: path, file:///path or gs://bucket/object (default $FEDIOPS_CONFIG)")
	root.PersistentFlags().StringVar(&c.logLevel, "log-level", "", "debug, info, warning or error (default $FEDIOPS_LOG_LEVEL or info)")
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetArgs(args)
	root.AddCommand(c.triageCmd(), c.blocklistCmd(), c.backupCmd(), c.serveCmd(), c.demoCmd(), c.authCmd())
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

// env opens the job environment: configuration from --config or $FEDIOPS_CONFIG, logs as
// JSON lines on stderr.
func (c *cli) env(ctx context.Context) (*setup.Env, error) {
	return c.envWith(ctx, c.params())
}

// params are the environment's parameters with the command-line flags applied.
func (c *cli) params() setup.Params {
	p := setup.ParamsFromEnv(c.getenv, c.stderr)
	if c.configPath != "" {
		p.ConfigLocation = c.configPath
	}
	if c.logLevel != "" {
		p.LogLevel = c.logLevel
	}
	return p
}

func (c *cli) envWith(ctx context.Context, p setup.Params) (*setup.Env, error) {
	e, err := setup.Open(ctx, p)
	if err != nil {
		e.Close()
		return nil, fail(exitConfig, err)
	}
	if c.customize != nil {
		c.customize(e)
	}
	return e, nil
}

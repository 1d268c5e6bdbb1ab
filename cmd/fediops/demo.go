package main

import (
	"github.com/spf13/cobra"
)

func (c *cli) demoCmd() *cobra.Command {
	return &cobra.Command{Use: "demo", Short: "Run the jobs against a built-in sandbox instance (no cloud account needed)"}
}

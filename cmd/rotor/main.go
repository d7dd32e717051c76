// Command rotor is Rotor's one binary: the server, the CLI for secrets, and
// the tools around them.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what every command may use instead of the process globals, so tests
// can run commands in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// run executes one rotor command line and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runEnv(ctx, &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}, args)
}

// runEnv is run with an explicit environment, for tests.
func runEnv(ctx context.Context, e *env, args []string) int {
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		printError(e.stderr, err)
		return exitCode(err)
	}
	return 0
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "rotor",
		Short:         "Rotor: self-hosted secrets with zero-downtime database credential rotation",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCmd(e), newServerCmd(e), newSecretCmd(e), newAgentCmd(e))
	root.AddCommand(newUserCmd(e))
	root.AddCommand(newPolicyCmd(e))
	root.AddCommand(newAuditCmd(e))
	root.AddCommand(newEventsCmd(e))
	root.AddCommand(newMasterKeyCmd(e))
	root.AddCommand(newFunctionCmd(e))
	root.AddCommand(newBenchCmd(e))
	root.AddCommand(newUnsealCmd(e))
	return root
}

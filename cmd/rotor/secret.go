package main

import "github.com/spf13/cobra"

func newSecretCmd(e *env) *cobra.Command {
	return &cobra.Command{Use: "secret", Short: "Manage secrets"}
}

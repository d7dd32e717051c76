package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newServerCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "server",
		Short: "Run the Rotor server",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return errors.New("not implemented")
		},
	}
}

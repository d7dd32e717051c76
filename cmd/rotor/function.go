package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newFunctionCmd(e *env) *cobra.Command {
	a := &adminCLI{e: e, feature: "custom rotation functions"}
	cmd := a.newGroup("function", "Register custom rotation functions (exec and webhook)",
		`Register rotation functions that are not built in, so that rotation code written
for AWS Lambda runs unchanged: RotateSecret then names them by their Lambda ARN,
arn:aws:lambda:REGION:ACCOUNT:function:NAME, as it names the built-ins.

An exec function is an executable in the server's --function-dir. For each
step (createSecret, setSecret, testSecret, finishSecret) the server runs it
with the Lambda event JSON on stdin and, in its environment, the endpoint
(AWS_ENDPOINT_URL_SECRETS_MANAGER, SECRETS_MANAGER_ENDPOINT), the region and
temporary credentials that may act only on the secret being rotated, revoked
when the step ends. Exit status 0 is success; standard error (redacted) is the
failure shown by rotor secret rotation-status.

A webhook function receives the same event as a POST, signed with
X-Rotor-Signature (HMAC-SHA256 with the key printed at registration, once);
a 2xx answer is success.

Both fail when they run longer than --timeout (exec: the process group is
killed). The caller needs the root credentials or rotor:RegisterFunction,
rotor:ListFunctions, rotor:DeleteFunction. The endpoint, region and
credentials are found as for rotor secret.`)
	cmd.AddCommand(a.newFunctionRegisterCmd(), a.newFunctionListCmd(), a.newFunctionDeleteCmd())
	return cmd
}

type functionInfo struct {
	FunctionName   string
	FunctionArn    string
	Type           string
	Command        string
	Args           []string
	Url            string
	TimeoutSeconds int64
	CreatedDate    *float64
	SigningKey     string
}

func (a *adminCLI) newFunctionRegisterCmd() *cobra.Command {
	var execName, url string
	var args []string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "register NAME (--exec FILE [--arg A]… | --webhook URL)",
		Short: "Register a custom rotation function",
		Args:  secretArgs(1, false, "NAME"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			in := struct {
				FunctionName   string
				Type           string
				Command        string   `json:",omitempty"`
				Args           []string `json:",omitempty"`
				Url            string   `json:",omitempty"`
				TimeoutSeconds *int64   `json:",omitempty"`
			}{FunctionName: pos[0], Command: execName, Args: args, Url: url}
			switch {
			case execName != "" && url == "":
				in.Type = "exec"
			case url != "" && execName == "" && len(args) == 0:
				in.Type = "webhook"
			default:
				return usageError(errors.New("give --exec FILE (with --arg) or --webhook URL"))
			}
			if timeout > 0 {
				s := int64(timeout / time.Second)
				in.TimeoutSeconds = &s
			}
			var out functionInfo
			return a.run(cmd, "RegisterFunction", in, &out, func(w io.Writer) error {
				if err := printFunction(w, out); err != nil {
					return err
				}
				if out.SigningKey != "" {
					_, err := fmt.Fprintf(w, "signing key: %s\n(shown once: the webhook verifies X-Rotor-Signature with it)\n", out.SigningKey)
					return err
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&execName, "exec", "", "the executable's file name in the server's --function-dir")
	f.StringArrayVar(&args, "arg", nil, "an argument for the executable (repeatable)")
	f.StringVar(&url, "webhook", "", "the URL the steps are POSTed to")
	f.DurationVar(&timeout, "timeout", 0, "how long one step may take (default 2m, at most 15m)")
	return cmd
}

func printFunction(w io.Writer, f functionInfo) error {
	target := f.Url
	if f.Type == "exec" {
		target = f.Command
		for _, a := range f.Args {
			target += " " + a
		}
	}
	_, err := fmt.Fprintf(w, "name: %s\narn: %s\ntype: %s\nruns: %s\ntimeout: %ds\ncreated: %s\n",
		printable(f.FunctionName), printable(f.FunctionArn), printable(f.Type), printable(target), f.TimeoutSeconds, epochText(f.CreatedDate))
	return err
}

func (a *adminCLI) newFunctionListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the custom rotation functions",
		Args:  secretArgs(0, false),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct{ Functions []functionInfo }
			return a.run(cmd, "ListFunctions", struct{}{}, &out, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tTYPE\tRUNS\tTIMEOUT\tARN")
				for _, f := range out.Functions {
					target := f.Url
					if f.Type == "exec" {
						target = f.Command
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%ds\t%s\n", printable(f.FunctionName), printable(f.Type), printable(target), f.TimeoutSeconds, printable(f.FunctionArn))
				}
				return tw.Flush()
			})
		},
	}
}

func (a *adminCLI) newFunctionDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a custom rotation function",
		Args:  secretArgs(1, false, "NAME"),
		RunE: func(cmd *cobra.Command, pos []string) error {
			return a.run(cmd, "DeleteFunction", struct{ FunctionName string }{pos[0]}, &struct{}{}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "deleted %s\n", printable(pos[0]))
				return err
			})
		},
	}
}

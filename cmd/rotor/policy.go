package main

// `rotor policy …`: managed identity policies and their attachment to users,
// through rotor.CreatePolicy and friends.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// maxPolicyDocument bounds a document read from a file; the server judges
// the document itself.
const maxPolicyDocument = 128 << 10

type iamPolicy struct {
	PolicyName      string
	PolicyId        string
	Arn             string
	Description     string
	CreateDate      *float64
	UpdateDate      *float64
	AttachmentCount *int
	PolicyDocument  string
}

func newPolicyCmd(e *env) *cobra.Command {
	a := &adminCLI{e: e, feature: "access control"}
	cmd := a.newGroup("policy", "Manage identity policies and attach them to users",
		`Manage Rotor's identity policies and attach them to users.

A policy is an IAM policy document: statements allowing or denying actions
(secretsmanager:GetSecretValue, rotor:CreateUser, …) on resources (secret
ARNs, with wildcards). A user may do what a policy attached to it allows and
no policy denies. Policies are named by NAME or by their ARN,
arn:aws:iam::ACCOUNT:policy/NAME.

The endpoint, region and credentials are found as for rotor secret.
Output is text for people (-o text, the default) or the API response as JSON
(-o json).`)
	cmd.AddCommand(a.newPolicyCreateCmd(), a.newPolicyGetCmd(), a.newPolicyUpdateCmd(), a.newPolicyDeleteCmd(),
		a.newPolicyListCmd(), a.newPolicyAttachCmd("attach", "AttachUserPolicy", "Attach a policy to a user"),
		a.newPolicyAttachCmd("detach", "DetachUserPolicy", "Detach a policy from a user"), a.newPolicyListAttachedCmd())
	return cmd
}

// readDocument reads a policy document from path, or from stdin for "-".
func readDocument(path string, stdin io.Reader) (string, error) {
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	if r == nil {
		return "", errors.New("no standard input")
	}
	b, err := io.ReadAll(io.LimitReader(r, maxPolicyDocument+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", displayPath(path), err)
	}
	if len(b) > maxPolicyDocument {
		return "", fmt.Errorf("%s holds more than %d bytes, more than a policy document may have", displayPath(path), maxPolicyDocument)
	}
	if len(b) == 0 {
		return "", fmt.Errorf("%s is empty", displayPath(path))
	}
	return string(b), nil
}

// documentFlag reads --document, which the command requires.
func documentFlag(cmd *cobra.Command, path string, stdin io.Reader) (string, error) {
	if !cmd.Flags().Changed("document") {
		return "", secretUsageError(cmd, "give the policy document with --document FILE (- for stdin)")
	}
	doc, err := readDocument(path, stdin)
	if err != nil {
		return "", secretUsageError(cmd, "--document: %v", err)
	}
	return doc, nil
}

func (a *adminCLI) newPolicyCreateCmd() *cobra.Command {
	var path, description string
	cmd := &cobra.Command{
		Use:   "create NAME --document FILE",
		Short: "Create a policy",
		Args:  secretArgs(1, false, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.check(cmd); err != nil {
				return err
			}
			doc, err := documentFlag(cmd, path, a.e.stdin)
			if err != nil {
				return err
			}
			in := map[string]string{"PolicyName": args[0], "PolicyDocument": doc}
			if description != "" {
				in["Description"] = description
			}
			var out struct{ Policy iamPolicy }
			return a.run(cmd, "CreatePolicy", in, &out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "created policy %s (%s)\n", printable(out.Policy.PolicyName), printable(out.Policy.Arn))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&path, "document", "", "read the policy document from `FILE` (- for stdin)")
	cmd.Flags().StringVar(&description, "description", "", "what the policy is for")
	return cmd
}

func (a *adminCLI) newPolicyGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Print a policy's document",
		Long: `Print a policy's document, as stored.

With -o json, the whole answer: name, ARN, dates, attachment count and the
document as a string.`,
		Args: secretArgs(1, false, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{ Policy iamPolicy }
			return a.run(cmd, "GetPolicy", map[string]string{"PolicyArn": args[0]}, &out, func(w io.Writer) error {
				return writeRaw(w, []byte(out.Policy.PolicyDocument))
			})
		},
	}
}

func (a *adminCLI) newPolicyUpdateCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "update NAME --document FILE",
		Short: "Replace a policy's document",
		Long: `Replace a policy's document. It applies to the next request of every user
the policy is attached to.`,
		Args: secretArgs(1, false, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.check(cmd); err != nil {
				return err
			}
			doc, err := documentFlag(cmd, path, a.e.stdin)
			if err != nil {
				return err
			}
			var out struct{ Policy iamPolicy }
			in := map[string]string{"PolicyArn": args[0], "PolicyDocument": doc}
			return a.run(cmd, "UpdatePolicy", in, &out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "updated policy %s\n", printable(out.Policy.PolicyName))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&path, "document", "", "read the policy document from `FILE` (- for stdin)")
	return cmd
}

func (a *adminCLI) newPolicyDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a policy that is attached to no user",
		Args:  secretArgs(1, false, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{}
			return a.run(cmd, "DeletePolicy", map[string]string{"PolicyArn": args[0]}, &out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "deleted policy %s\n", printable(args[0]))
				return err
			})
		},
	}
}

func (a *adminCLI) newPolicyListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List policies",
		Args:  secretArgs(0, false),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.open(cmd)
			if err != nil {
				return err
			}
			raw, policies, err := listAll[iamPolicy](a, cmd, c, "ListPolicies", "Policies")
			if err != nil {
				return err
			}
			if a.output == outputJSON {
				return writeJSON(a.e.stdout, struct {
					Policies    []json.RawMessage
					IsTruncated bool
				}{nonNilRaw(raw), false})
			}
			tw := tabwriter.NewWriter(a.e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tUPDATED\tATTACHMENTS\tDESCRIPTION")
			for _, p := range policies {
				n := "-"
				if p.AttachmentCount != nil {
					n = strconv.Itoa(*p.AttachmentCount)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", printable(p.PolicyName), epochText(p.UpdateDate), n, printable(p.Description))
			}
			return tw.Flush()
		},
	}
}

func (a *adminCLI) newPolicyAttachCmd(verb, op, short string) *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   verb + " NAME --user USER",
		Short: short,
		Long:  short + ". The change applies to the user's next request.",
		Args:  secretArgs(1, false, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.check(cmd); err != nil {
				return err
			}
			if user == "" {
				return secretUsageError(cmd, "give the user with --user")
			}
			var out struct{}
			return a.run(cmd, op, map[string]string{"UserName": user, "PolicyArn": args[0]}, &out, func(w io.Writer) error {
				prep := "to"
				if verb == "detach" {
					prep = "from"
				}
				_, err := fmt.Fprintf(w, "%sed policy %s %s user %s\n", verb, printable(args[0]), prep, printable(user))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "the user's `NAME`")
	return cmd
}

func (a *adminCLI) newPolicyListAttachedCmd() *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "list-attached --user USER",
		Short: "List the policies attached to a user",
		Args:  secretArgs(0, false),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.check(cmd); err != nil {
				return err
			}
			if user == "" {
				return secretUsageError(cmd, "give the user with --user")
			}
			var out struct {
				AttachedPolicies []struct{ PolicyName, PolicyArn string }
			}
			return a.run(cmd, "ListAttachedUserPolicies", map[string]string{"UserName": user}, &out, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tARN")
				for _, p := range out.AttachedPolicies {
					fmt.Fprintf(tw, "%s\t%s\n", printable(p.PolicyName), printable(p.PolicyArn))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "the user's `NAME`")
	return cmd
}

package main

// `rotor user …`: users and their access keys, through Rotor's own
// operations (rotor.CreateUser, rotor.CreateAccessKey, …). This file also
// holds adminCLI, which `rotor policy`, `rotor audit search` and
// `rotor events` share.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"
)

// adminCLI holds what the administrative commands share: the environment,
// the output format and the connection flags. Unlike `rotor secret`, they
// print text by default: their answers are for people; -o json prints the
// API response.
type adminCLI struct {
	e      *env
	output string
	conn   connFlags
	// feature names what the server must have enabled to serve these
	// operations, for the hint when it does not.
	feature string
}

// registerFlags adds the output and connection flags to fs.
func (a *adminCLI) registerFlags(cmd *cobra.Command, persistent bool) {
	fs := cmd.Flags()
	if persistent {
		fs = cmd.PersistentFlags()
	}
	fs.StringVarP(&a.output, "output", "o", outputText, "output `format`: text or json")
	fs.StringVar(&a.conn.endpointURL, "endpoint-url", "", "send requests to `URL` instead of the configured endpoint")
	fs.StringVar(&a.conn.region, "region", "", "the `region` to sign requests for")
	fs.StringVar(&a.conn.profile, "profile", "", "use `NAME` from the shared config and credentials files")
	fs.DurationVar(&a.conn.timeout, "timeout", defaultTimeout, "give up on a request after this `duration`")
}

// newGroup returns a command that only holds subcommands, with the output
// and connection flags for all of them.
func (a *adminCLI) newGroup(use, short, long string) *cobra.Command {
	cmd := groupCmd(use, short, long)
	a.registerFlags(cmd, true)
	return cmd
}

// groupCmd returns a command that only holds subcommands: it prints its
// help, and refuses an unknown subcommand as a usage error.
func groupCmd(use, short, long string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) > 0 {
				return secretUsageError(cmd, "unknown command %q for %q", a[0], cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return secretUsageError(c, "%v", err)
	})
	return cmd
}

// check validates the shared flags; call it before anything else.
func (a *adminCLI) check(cmd *cobra.Command) error {
	if a.output != outputJSON && a.output != outputText {
		return secretUsageError(cmd, "--output: want text or json, got %q", a.output)
	}
	if a.conn.timeout <= 0 {
		return secretUsageError(cmd, "--timeout: want a positive duration, got %s", a.conn.timeout)
	}
	return nil
}

// open checks the flags and resolves the connection.
func (a *adminCLI) open(cmd *cobra.Command) (*clientConn, error) {
	if err := a.check(cmd); err != nil {
		return nil, err
	}
	return openClient(cmd.Context(), a.e.getenv, a.conn)
}

// call runs rotor.OP and decodes its answer into out, returning the raw
// answer. Where the server's refusal leaves the user a move, the error
// carries a hint.
func (a *adminCLI) call(cmd *cobra.Command, c *clientConn, op string, in, out any) ([]byte, error) {
	raw, err := callRotor(cmd.Context(), c, op, in, out)
	if err == nil {
		return raw, nil
	}
	var he *hintError
	var apiErr smithy.APIError
	if errors.As(err, &he) && he.hint == "" && errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "UnknownOperationException":
			he.hint = fmt.Sprintf("this server does not serve rotor.%s: it is not Rotor, an older version, or runs without %s", op, a.feature)
		case "AccessDeniedException":
			he.hint = fmt.Sprintf("the caller needs an identity policy allowing rotor:%s; use the root credentials, or ask an administrator to attach one", op)
		}
	}
	return nil, err
}

// run opens the connection, calls rotor.OP once and prints the answer:
// the response as JSON with -o json, through text otherwise.
func (a *adminCLI) run(cmd *cobra.Command, op string, in, out any, text func(w io.Writer) error) error {
	c, err := a.open(cmd)
	if err != nil {
		return err
	}
	raw, err := a.call(cmd, c, op, in, out)
	if err != nil {
		return err
	}
	if a.output == outputJSON {
		return writeRawJSON(a.e.stdout, raw)
	}
	return text(a.e.stdout)
}

// writeRawJSON writes a JSON document indented, as the server sent it.
func writeRawJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// writeJSON writes v indented, without escaping <, > and &.
func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// listAll calls the IAM-style list operation op (Marker, IsTruncated) from
// the first page to the last and returns the items of member, raw for -o
// json and decoded as T for text.
func listAll[T any](a *adminCLI, cmd *cobra.Command, c *clientConn, op, member string) ([]json.RawMessage, []T, error) {
	var (
		raw    []json.RawMessage
		items  []T
		marker string
	)
	for {
		in := map[string]string{}
		if marker != "" {
			in["Marker"] = marker
		}
		var page map[string]json.RawMessage
		if _, err := a.call(cmd, c, op, in, &page); err != nil {
			return nil, nil, err
		}
		var list []json.RawMessage
		var p iamPage
		if err := errors.Join(unmarshalIf(page[member], &list), unmarshalIf(page["Marker"], &p.Marker),
			unmarshalIf(page["IsTruncated"], &p.IsTruncated)); err != nil {
			return nil, nil, fmt.Errorf("decode rotor.%s response: %v", op, err)
		}
		for _, r := range list {
			var v T
			if err := json.Unmarshal(r, &v); err != nil {
				return nil, nil, fmt.Errorf("decode rotor.%s response: %v", op, err)
			}
			items = append(items, v)
		}
		raw = append(raw, list...)
		if !p.IsTruncated {
			return raw, items, nil
		}
		if p.Marker == "" || p.Marker == marker {
			return nil, nil, fmt.Errorf("the server returned Marker %q for the next page after %q", p.Marker, marker)
		}
		marker = p.Marker
	}
}

// unmarshalIf decodes b into v unless b is absent.
func unmarshalIf(b json.RawMessage, v any) error {
	if b == nil {
		return nil
	}
	return json.Unmarshal(b, v)
}

// Response shapes of the user operations, as far as the text output needs
// them; -o json prints the response itself.

type iamUser struct {
	UserName   string
	UserId     string
	Arn        string
	CreateDate *float64
}

type iamAccessKey struct {
	UserName        string
	AccessKeyId     string
	SecretAccessKey string
	Status          string
	CreateDate      *float64
}

// iamPage is one page of a list: its items raw, for -o json, and the paging.
type iamPage struct {
	IsTruncated bool
	Marker      string
}

func newUserCmd(e *env) *cobra.Command {
	a := &adminCLI{e: e, feature: "access control"}
	cmd := a.newGroup("user", "Manage users and their access keys",
		`Manage Rotor's users and their access keys.

A user is arn:aws:iam::ACCOUNT:user/NAME. It can do nothing until a policy is
attached to it (rotor policy attach) and it has an access key (rotor user key
create) to sign requests with. The caller needs the root credentials, or a
policy allowing the rotor:… action (rotor:CreateUser, rotor:CreateAccessKey, …).

The endpoint, region and credentials are found as for rotor secret.
Output is text for people (-o text, the default) or the API response as JSON
(-o json).`)
	key := groupCmd("key", "Manage a user's access keys (at most two per user)",
		`Manage a user's access keys; a user has at most two.

A key's secret is shown once, by rotor user key create. Deactivating or
deleting a key takes effect on the server's next request.`)
	key.AddCommand(a.newKeyCreateCmd(), a.newKeyListCmd(),
		a.newKeyStatusCmd("deactivate", "Inactive", "Make an access key stop working, keeping it"),
		a.newKeyStatusCmd("activate", "Active", "Make an inactive access key work again"),
		a.newKeyDeleteCmd())
	cmd.AddCommand(a.newUserCreateCmd(), a.newUserGetCmd(), a.newUserListCmd(), a.newUserDeleteCmd(), key)
	return cmd
}

func (a *adminCLI) newUserCreateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user, with no keys and no policies",
		Args:  secretArgs(1, false, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{ User iamUser }
			return a.run(cmd, "CreateUser", map[string]string{"UserName": args[0]}, &out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "created user %s (%s)\n", printable(out.User.UserName), printable(out.User.Arn))
				return err
			})
		},
	}
}

func (a *adminCLI) newUserGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a user",
		Args:  secretArgs(1, false, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{ User iamUser }
			return a.run(cmd, "GetUser", map[string]string{"UserName": args[0]}, &out, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
				fmt.Fprintf(tw, "UserName:\t%s\n", printable(out.User.UserName))
				fmt.Fprintf(tw, "UserId:\t%s\n", printable(out.User.UserId))
				fmt.Fprintf(tw, "Arn:\t%s\n", printable(out.User.Arn))
				fmt.Fprintf(tw, "CreateDate:\t%s\n", epochText(out.User.CreateDate))
				return tw.Flush()
			})
		},
	}
}

func (a *adminCLI) newUserListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  secretArgs(0, false),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.open(cmd)
			if err != nil {
				return err
			}
			raw, users, err := listAll[iamUser](a, cmd, c, "ListUsers", "Users")
			if err != nil {
				return err
			}
			if a.output == outputJSON {
				return writeJSON(a.e.stdout, struct {
					Users       []json.RawMessage
					IsTruncated bool
				}{nonNilRaw(raw), false})
			}
			tw := tabwriter.NewWriter(a.e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tUSER ID\tCREATED\tARN")
			for _, u := range users {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", printable(u.UserName), printable(u.UserId), epochText(u.CreateDate), printable(u.Arn))
			}
			return tw.Flush()
		},
	}
}

func nonNilRaw(r []json.RawMessage) []json.RawMessage {
	if r == nil {
		return []json.RawMessage{}
	}
	return r
}

func (a *adminCLI) newUserDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user with its access keys and policy attachments",
		Long: `Delete a user together with its access keys and policy attachments.

Unlike IAM, Rotor does not ask you to delete the keys and detach the policies
first. The user's keys stop working at once.`,
		Args: secretArgs(1, false, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{}
			return a.run(cmd, "DeleteUser", map[string]string{"UserName": args[0]}, &out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "deleted user %s\n", printable(args[0]))
				return err
			})
		},
	}
}

func (a *adminCLI) newKeyCreateCmd() *cobra.Command {
	var profile string
	cmd := &cobra.Command{
		Use:   "create USER",
		Short: "Create an access key for a user and print its secret, once",
		Long: `Create an active access key for a user and print its id and secret.

The secret is shown only now: the server keeps it sealed and never returns
it again. With --credentials-profile NAME the key is printed as a profile of
an AWS shared credentials file, ready to append to one:

  rotor user key create deploy --credentials-profile deploy >> ~/.aws/credentials`,
		Args: secretArgs(1, false, "USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("credentials-profile") {
				if err := checkProfileName(profile); err != nil {
					return secretUsageError(cmd, "--credentials-profile: %v", err)
				}
				if a.output == outputJSON {
					return secretUsageError(cmd, "give either --credentials-profile or -o json")
				}
			}
			c, err := a.open(cmd)
			if err != nil {
				return err
			}
			var out struct{ AccessKey iamAccessKey }
			raw, err := a.call(cmd, c, "CreateAccessKey", map[string]string{"UserName": args[0]}, &out)
			if err != nil {
				return err
			}
			defer clear(raw)
			k := out.AccessKey
			fmt.Fprintf(a.e.stderr, "rotor: warning: the secret access key of %s is shown only now; it cannot be retrieved later\n", printable(k.AccessKeyId))
			switch {
			case profile != "":
				_, err = fmt.Fprintf(a.e.stdout, "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
					profile, printable(k.AccessKeyId), printable(k.SecretAccessKey))
			case a.output == outputJSON:
				err = writeRawJSON(a.e.stdout, raw)
			default:
				tw := tabwriter.NewWriter(a.e.stdout, 0, 0, 1, ' ', 0)
				fmt.Fprintf(tw, "UserName:\t%s\n", printable(k.UserName))
				fmt.Fprintf(tw, "AccessKeyId:\t%s\n", printable(k.AccessKeyId))
				fmt.Fprintf(tw, "SecretAccessKey:\t%s\n", printable(k.SecretAccessKey))
				fmt.Fprintf(tw, "Status:\t%s\n", printable(k.Status))
				err = tw.Flush()
			}
			return err
		},
	}
	cmd.Flags().StringVar(&profile, "credentials-profile", "", "print the key as profile `NAME` of an AWS shared credentials file")
	return cmd
}

// checkProfileName refuses a profile name that would not read back as one
// section of a credentials file.
func checkProfileName(name string) error {
	if name == "" {
		return errors.New("want a profile name")
	}
	if strings.ContainsAny(name, "[]\r\n\t #;") {
		return fmt.Errorf("%q: a profile name cannot hold brackets, spaces, # or ;", name)
	}
	return nil
}

func (a *adminCLI) newKeyListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list USER",
		Short: "List a user's access keys (without their secrets)",
		Args:  secretArgs(1, false, "USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{ AccessKeyMetadata []iamAccessKey }
			return a.run(cmd, "ListAccessKeys", map[string]string{"UserName": args[0]}, &out, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "ACCESS KEY ID\tSTATUS\tCREATED")
				for _, k := range out.AccessKeyMetadata {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", printable(k.AccessKeyId), printable(k.Status), epochText(k.CreateDate))
				}
				return tw.Flush()
			})
		},
	}
}

func (a *adminCLI) newKeyStatusCmd(verb, status, short string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " USER KEYID",
		Short: short,
		Args:  secretArgs(2, false, "USER", "KEYID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{}
			in := map[string]string{"UserName": args[0], "AccessKeyId": args[1], "Status": status}
			return a.run(cmd, "UpdateAccessKey", in, &out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%sd access key %s of user %s\n", verb, printable(args[1]), printable(args[0]))
				return err
			})
		},
	}
}

func (a *adminCLI) newKeyDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete USER KEYID",
		Short: "Delete an access key",
		Args:  secretArgs(2, false, "USER", "KEYID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{}
			in := map[string]string{"UserName": args[0], "AccessKeyId": args[1]}
			return a.run(cmd, "DeleteAccessKey", in, &out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "deleted access key %s of user %s\n", printable(args[1]), printable(args[0]))
				return err
			})
		},
	}
}

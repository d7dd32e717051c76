package main

// `rotor key …`: named keys and master key versions, through
// rotor.CreateKey, ListKeys, DescribeKey, EnableKey, DisableKey,
// RotateMasterKey and GetMasterKeyStatus.

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newMasterKeyCmd(e *env) *cobra.Command {
	a := &adminCLI{e: e, feature: "master key versions"}
	cmd := a.newGroup("key", "Manage KMS keys, rotate master keys and watch the re-wrap",
		`Manage the keys secrets are encrypted with, as KmsKeyId selects a KMS key in
AWS: the default key alias/aws/secretsmanager, and named keys created with
rotor key create. A disabled key's secrets cannot be read (DecryptionFailure)
until it is enabled again.

Each key is a family of master key versions; the root key (the data dir's
master.key) wraps them all. rotor key rotate makes a new version of a key
current at once; the server then re-wraps its data keys in the background,
online, and destroys an old version once nothing uses it. rotor key status
shows a key's versions and how many data keys each still wraps. rotor key
rotate-root replaces the root key itself (after a leak), once no data key is
under it.

The caller needs the root credentials or the rotor: action of the operation
(rotor:CreateKey, rotor:RotateMasterKey, …). The endpoint, region and
credentials are found as for rotor secret.`)
	cmd.AddCommand(a.newMasterKeyRotateCmd(), a.newRootKeyRotateCmd(), a.newMasterKeyStatusCmd(), a.newKMSKeyCreateCmd(), a.newKMSKeyListCmd(),
		a.newKeyDescribeCmd(), a.newKeyEnableCmd("enable", "EnableKey"), a.newKeyEnableCmd("disable", "DisableKey"))
	return cmd
}

type keyMetadata struct {
	KeyId        string
	Arn          string
	Alias        string
	Description  string
	Enabled      bool
	KeyState     string
	CreationDate *float64
}

func printKey(w io.Writer, k keyMetadata) error {
	_, err := fmt.Fprintf(w, "key id: %s\narn: %s\nalias: %s\ndescription: %s\nstate: %s\ncreated: %s\n",
		printable(k.KeyId), printable(k.Arn), printable(k.Alias), printable(k.Description), printable(k.KeyState), epochText(k.CreationDate))
	return err
}

func (a *adminCLI) newKMSKeyCreateCmd() *cobra.Command {
	var in struct{ Alias, Description string }
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a named key that secrets select with KmsKeyId",
		Args:  secretArgs(0, false),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct{ KeyMetadata keyMetadata }
			return a.run(cmd, "CreateKey", in, &out, func(w io.Writer) error { return printKey(w, out.KeyMetadata) })
		},
	}
	cmd.Flags().StringVar(&in.Alias, "alias", "", "the key's alias, alias/NAME (not alias/aws/…)")
	cmd.Flags().StringVar(&in.Description, "description", "", "the key's description")
	return cmd
}

func (a *adminCLI) newKMSKeyListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the named keys",
		Args:  secretArgs(0, false),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct{ Keys []keyMetadata }
			return a.run(cmd, "ListKeys", struct{}{}, &out, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "KEY ID\tALIAS\tSTATE\tCREATED")
				for _, k := range out.Keys {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", printable(k.KeyId), printable(k.Alias), printable(k.KeyState), epochText(k.CreationDate))
				}
				return tw.Flush()
			})
		},
	}
}

func (a *adminCLI) newKeyDescribeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "describe KEY",
		Short: "Show a key given by id, ARN or alias",
		Args:  secretArgs(1, false, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{ KeyMetadata keyMetadata }
			return a.run(cmd, "DescribeKey", struct{ KeyId string }{args[0]}, &out, func(w io.Writer) error { return printKey(w, out.KeyMetadata) })
		},
	}
}

func (a *adminCLI) newKeyEnableCmd(verb, op string) *cobra.Command {
	short := "Enable a key: its secrets can be read again"
	if verb == "disable" {
		short = "Disable a key: its secrets cannot be read (DecryptionFailure) until it is enabled"
	}
	return &cobra.Command{
		Use:   verb + " KEY",
		Short: short,
		Args:  secretArgs(1, false, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{ KeyMetadata keyMetadata }
			return a.run(cmd, op, struct{ KeyId string }{args[0]}, &out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "key %s is %s\n", printable(out.KeyMetadata.KeyId), strings.ToLower(printable(out.KeyMetadata.KeyState)))
				return err
			})
		},
	}
}

type keyVersion struct {
	Id         string
	State      string
	CreateDate *float64
	RetireDate *float64
	Root       bool
	Envelopes  int
}

func (a *adminCLI) newMasterKeyRotateCmd() *cobra.Command {
	var in struct {
		KeyId string `json:",omitempty"`
	}
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Make a new master key version current and re-wrap in the background",
		Args:  secretArgs(0, false),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct{ KeyVersion keyVersion }
			return a.run(cmd, "RotateMasterKey", in, &out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "master key version %s is current; re-wrapping in the background (rotor key status)\n", out.KeyVersion.Id)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&in.KeyId, "key", "", "the key to rotate, by id, ARN or alias (default: alias/aws/secretsmanager)")
	return cmd
}

func (a *adminCLI) newRootKeyRotateCmd() *cobra.Command {
	var passFile string
	cmd := &cobra.Command{
		Use:   "rotate-root",
		Short: "Replace the root key (master.key or master.seal) after it leaked",
		Long: `Replace the root key: a new one is written beside the current one
(master.key.next or master.seal.next), every stored master key version is
re-wrapped under it in one transaction, and it then replaces master.key or
master.seal. The old root key opens nothing afterwards.

No data key may still be under the root key itself: run rotor key rotate
first and wait until rotor key status shows the root key wrapping no data
keys. A server whose root key comes from ROTOR_MASTER_KEY refuses. With
--master-key-source passphrase give the passphrase (--passphrase-file): the
new root key is sealed with it.

Backups taken before still need the old root key.`,
		Args: secretArgs(0, false),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var in struct {
				Passphrase string `json:",omitempty"`
			}
			if passFile != "" {
				pass, err := readUnsealPassphrase(a.e, passFile)
				if err != nil {
					return err
				}
				in.Passphrase = string(pass)
				clear(pass)
			}
			var out struct {
				OldRootKey, RootKey string
				RewrappedVersions   int
				Warning             string
			}
			return a.run(cmd, "RotateRootKey", in, &out, func(w io.Writer) error {
				if out.Warning != "" {
					fmt.Fprintf(a.e.stderr, "rotor: warning: %s\n", out.Warning)
				}
				_, err := fmt.Fprintf(w, "root key %s replaces %s (%d master key versions re-wrapped); destroy copies of the old root key per your policy\n",
					printable(out.RootKey), printable(out.OldRootKey), out.RewrappedVersions)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "with a passphrase-sealed root key: the passphrase, in `FILE`")
	return cmd
}

func (a *adminCLI) newMasterKeyStatusCmd() *cobra.Command {
	var in struct {
		KeyId string `json:",omitempty"`
	}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the master key versions and the re-wrap's progress",
		Long: `Show the master key versions, oldest first, with how many data keys each
still wraps (secret versions, access keys and the server's own sealed
items), and the background re-wrap's progress.`,
		Args: secretArgs(0, false),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Current      string
				RootKey      string
				RootKeyWraps int
				Versions     []keyVersion
				Rewrap       struct {
					Pending, Done int
					Running       bool
				}
			}
			return a.run(cmd, "GetMasterKeyStatus", in, &out, func(w io.Writer) error {
				fmt.Fprintf(w, "current: %s\nroot key: %s (wraps %d versions)\n", out.Current, out.RootKey, out.RootKeyWraps)
				state := "idle"
				switch {
				case out.Rewrap.Running && out.Rewrap.Pending == 0:
					state = "done; retired versions are destroyed after a grace period"
				case out.Rewrap.Running:
					state = "running"
				}
				fmt.Fprintf(w, "re-wrap: %s, %d pending, %d done\n", state, out.Rewrap.Pending, out.Rewrap.Done)
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "VERSION\tSTATE\tCREATED\tDATA KEYS")
				for _, v := range out.Versions {
					id := printable(v.Id)
					if v.Root {
						id += " (root)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", id, printable(v.State), epochText(v.CreateDate), v.Envelopes)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&in.KeyId, "key", "", "the key to show, by id, ARN or alias (default: alias/aws/secretsmanager)")
	return cmd
}

package main

// `rotor key …`: master key versions, through rotor.RotateMasterKey and
// rotor.GetMasterKeyStatus.

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newMasterKeyCmd(e *env) *cobra.Command {
	a := &adminCLI{e: e, feature: "master key versions"}
	cmd := a.newGroup("key", "Rotate the master key and watch the re-wrap",
		`Rotate the master key and watch the re-wrap of the data keys.

The root key (the data dir's master.key) wraps master key versions; the
current version wraps every new data key. rotor key rotate makes a new
version current at once; the server then re-wraps every existing data key in
the background, online, and destroys an old version once nothing uses it.
rotor key status shows the versions and how many data keys each still wraps.

The caller needs the root credentials or rotor:RotateMasterKey and
rotor:GetMasterKeyStatus. The endpoint, region and credentials are found as
for rotor secret.`)
	cmd.AddCommand(a.newMasterKeyRotateCmd(), a.newMasterKeyStatusCmd())
	return cmd
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
	return &cobra.Command{
		Use:   "rotate",
		Short: "Make a new master key version current and re-wrap in the background",
		Args:  secretArgs(0, false),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct{ KeyVersion keyVersion }
			return a.run(cmd, "RotateMasterKey", struct{}{}, &out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "master key version %s is current; re-wrapping in the background (rotor key status)\n", out.KeyVersion.Id)
				return err
			})
		},
	}
}

func (a *adminCLI) newMasterKeyStatusCmd() *cobra.Command {
	return &cobra.Command{
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
			return a.run(cmd, "GetMasterKeyStatus", struct{}{}, &out, func(w io.Writer) error {
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
}

package main

// `rotor events …`: webhook events whose delivery gave up (parked), and
// sending one again (redrive), through rotor.ListParkedEvents and
// rotor.RedriveEvent.

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newEventsCmd(e *env) *cobra.Command {
	a := &adminCLI{e: e, feature: "webhooks"}
	cmd := a.newGroup("events", "Inspect and redrive parked webhook events",
		`Inspect webhook events that could not be delivered, and send them again.

An event is parked when its webhook failed every attempt; it stays in the
outbox until it is redriven. The caller needs rotor:ListParkedEvents and
rotor:RedriveEvent. The endpoint, region and credentials are found as for
rotor secret.`)
	cmd.AddCommand(a.newEventsParkedCmd(), a.newEventsRedriveCmd())
	return cmd
}

type parkedEvent struct {
	Seq         int64
	Target      string
	EventId     string
	CreatedDate *float64
	Attempts    int
	LastError   string
	Event       string
}

func (a *adminCLI) newEventsParkedCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "parked",
		Short: "List parked webhook events, and how many are pending and parked",
		Long: `List the parked webhook events, oldest first, after a line counting the
pending and parked ones. With -o json each event carries its body (Event).`,
		Args: secretArgs(0, false),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.open(cmd)
			if err != nil {
				return err
			}
			var raw []json.RawMessage
			var events []parkedEvent
			var pending, parked int
			next := ""
			for {
				in := map[string]any{}
				if next != "" {
					in["NextToken"] = next
				}
				var out struct {
					Events    []json.RawMessage
					NextToken string
					Pending   int
					Parked    int
				}
				if _, err := a.call(cmd, c, "ListParkedEvents", in, &out); err != nil {
					return err
				}
				for _, r := range out.Events {
					var ev parkedEvent
					if err := json.Unmarshal(r, &ev); err != nil {
						return fmt.Errorf("decode rotor.ListParkedEvents response: %v", err)
					}
					events = append(events, ev)
				}
				raw = append(raw, out.Events...)
				if next == "" {
					// The counts of the first page: later pages would count
					// what changed in between.
					pending, parked = out.Pending, out.Parked
				}
				if out.NextToken != "" && out.NextToken == next {
					return fmt.Errorf("the server returned NextToken %q twice", next)
				}
				if next = out.NextToken; next == "" {
					break
				}
			}
			if a.output == outputJSON {
				return writeJSON(a.e.stdout, struct {
					Events  []json.RawMessage
					Pending int
					Parked  int
				}{nonNilRaw(raw), pending, parked})
			}
			return writeParkedTable(a.e.stdout, events, pending, parked)
		},
	}
}

func writeParkedTable(w io.Writer, events []parkedEvent, pending, parked int) error {
	if _, err := fmt.Fprintf(w, "pending: %d, parked: %d\n", pending, parked); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTARGET\tEVENT ID\tCREATED\tATTEMPTS\tLAST ERROR")
	for _, ev := range events {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", ev.Seq, printable(ev.Target), printable(ev.EventId),
			epochText(ev.CreatedDate), ev.Attempts, dash(printable(ev.LastError)))
	}
	return tw.Flush()
}

func (a *adminCLI) newEventsRedriveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "redrive SEQ",
		Short: "Send a parked webhook event again",
		Long: `Make a parked webhook event pending again, with a fresh set of attempts,
due now. SEQ is the number rotor events parked shows.`,
		Args: secretArgs(1, false, "SEQ"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.check(cmd); err != nil {
				return err
			}
			seq, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || seq < 1 {
				return secretUsageError(cmd, "SEQ: want a positive number, got %q", args[0])
			}
			var out struct{}
			return a.run(cmd, "RedriveEvent", map[string]int64{"Seq": seq}, &out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "event %d is pending again\n", seq)
				return err
			})
		},
	}
}

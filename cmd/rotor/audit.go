package main

// `rotor audit …`: the audit log. This file holds the group and `search`,
// which asks a server (rotor.LookupEvents); `verify`, which checks a log
// file, is newAuditVerifyCmd in audit_verify.go.

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// maxLookupPage is the most records rotor.LookupEvents returns at once.
const maxLookupPage = 1000

// auditOutcomes are the outcomes a record can have.
var auditOutcomes = []string{"success", "denied", "auth_failed", "invalid", "error"}

func newAuditCmd(e *env) *cobra.Command {
	cmd := groupCmd("audit", "Search and verify the audit log",
		`Search the audit log of a running server (search), or check a log file's
hash chain and signatures (verify).`)
	cmd.AddCommand(newAuditSearchCmd(e), newAuditVerifyCmd(e))
	return cmd
}

// auditEvent is one record as rotor.LookupEvents returns it.
type auditEvent struct {
	Seq          uint64
	Time         *float64
	Type         string
	EventName    string
	RequestId    string
	PrincipalArn string
	AccessKeyId  string
	SourceIp     string
	SecretArn    string
	Outcome      string
	ErrorCode    string
	Message      string
}

func newAuditSearchCmd(e *env) *cobra.Command {
	a := &adminCLI{e: e, feature: "an audit log"}
	var (
		principal, secret, event, outcome, since, until string
		limit                                           int
	)
	cmd := &cobra.Command{
		Use:   "search",
		Short: "Search a server's audit log (rotor.LookupEvents)",
		Long: `Search the audit log of a running server, oldest record first.

Filters combine: a record must match all of them.
  --principal  a principal ARN or an access key id
  --secret     a secret ARN, or a name (matching every ARN of that name)
  --event      an operation or event name (GetSecretValue, RotationSucceeded)
  --outcome    success, denied, auth_failed, invalid or error
  --since, --until  a time in RFC 3339 (2024-05-01T12:00:00Z), or a duration
               before now (90m, 24h)

Without --limit every matching record is printed. The caller needs
rotor:LookupEvents. The endpoint, region and credentials are found as for
rotor secret.`,
		Args: secretArgs(0, false),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.check(cmd); err != nil {
				return err
			}
			in := map[string]any{}
			for key, v := range map[string]string{"PrincipalArn": principal, "SecretId": secret, "EventName": event} {
				if v != "" {
					in[key] = v
				}
			}
			if outcome != "" {
				if !slices.Contains(auditOutcomes, outcome) {
					return secretUsageError(cmd, "--outcome: want one of %s, got %q", strings.Join(auditOutcomes, ", "), outcome)
				}
				in["Outcome"] = outcome
			}
			now := time.Now()
			var start, end time.Time
			for _, t := range []struct {
				flag, value, member string
				dst                 *time.Time
			}{{"since", since, "StartTime", &start}, {"until", until, "EndTime", &end}} {
				if t.value == "" {
					continue
				}
				v, err := parseTimeFlag(t.value, now)
				if err != nil {
					return secretUsageError(cmd, "--%s: %v", t.flag, err)
				}
				*t.dst = v
				in[t.member] = json.Number(fmt.Sprintf("%.3f", float64(v.UnixMilli())/1000))
			}
			if !start.IsZero() && !end.IsZero() && end.Before(start) {
				return secretUsageError(cmd, "--until is before --since")
			}
			if limit < 0 {
				return secretUsageError(cmd, "--limit: want a positive number, got %d", limit)
			}
			c, err := a.open(cmd)
			if err != nil {
				return err
			}

			var raw []json.RawMessage
			var events []auditEvent
			next := ""
			for {
				page := maxLookupPage
				if limit > 0 {
					page = min(page, limit-len(raw))
				}
				in["MaxResults"] = page
				if next != "" {
					in["NextToken"] = next
				}
				var out struct {
					Events    []json.RawMessage
					NextToken string
				}
				if _, err := a.call(cmd, c, "LookupEvents", in, &out); err != nil {
					return err
				}
				for _, r := range out.Events {
					var ev auditEvent
					if err := json.Unmarshal(r, &ev); err != nil {
						return fmt.Errorf("decode rotor.LookupEvents response: %v", err)
					}
					events = append(events, ev)
				}
				raw = append(raw, out.Events...)
				if out.NextToken != "" && out.NextToken == next {
					return fmt.Errorf("the server returned NextToken %q twice", next)
				}
				next = out.NextToken
				if next == "" || limit > 0 && len(raw) >= limit {
					break
				}
			}
			if a.output == outputJSON {
				return writeJSON(a.e.stdout, struct {
					Events    []json.RawMessage
					NextToken string `json:",omitempty"`
				}{nonNilRaw(raw), next})
			}
			if err := writeAuditTable(a.e.stdout, events); err != nil {
				return err
			}
			if next != "" {
				fmt.Fprintf(a.e.stderr, "rotor: more results: raise --limit\n")
			}
			return nil
		},
	}
	f := cmd.Flags()
	a.registerFlags(cmd, false)
	f.StringVar(&principal, "principal", "", "only records of this principal `ARN` or access key id")
	f.StringVar(&secret, "secret", "", "only records of this secret (`ID`: name or ARN)")
	f.StringVar(&event, "event", "", "only records of this event `NAME`")
	f.StringVar(&outcome, "outcome", "", "only records with this `outcome`")
	f.StringVar(&since, "since", "", "only records from this `time` on (RFC 3339, or a duration before now)")
	f.StringVar(&until, "until", "", "only records before this `time` (RFC 3339, or a duration before now)")
	f.IntVar(&limit, "limit", 0, "print at most `N` records (0: all)")
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return secretUsageError(c, "%v", err)
	})
	return cmd
}

// parseTimeFlag reads a time in RFC 3339, or a duration before now.
func parseTimeFlag(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want a time like 2024-05-01T12:00:00Z or a duration like 24h, got %q", s)
	}
	if d < 0 {
		return time.Time{}, fmt.Errorf("want a duration before now, like 24h, got %q", s)
	}
	return now.Add(-d), nil
}

func writeAuditTable(w io.Writer, events []auditEvent) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tEVENT\tOUTCOME\tPRINCIPAL\tSECRET\tERROR")
	for _, ev := range events {
		principal := ev.PrincipalArn
		if principal == "" {
			principal = ev.AccessKeyId
		}
		errText := ev.ErrorCode
		if ev.Message != "" {
			errText = strings.TrimPrefix(errText+": "+ev.Message, ": ")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Seq, epochText(ev.Time), dash(printable(ev.EventName)),
			dash(printable(ev.Outcome)), dash(printable(principal)), dash(printable(ev.SecretArn)), dash(printable(errText)))
	}
	return tw.Flush()
}

// dash stands in for an empty table cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

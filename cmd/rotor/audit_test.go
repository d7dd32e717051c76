package main

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// auditPages answers rotor.LookupEvents from n records, seq 1..n, a page of
// MaxResults at a time, with NextToken "after:SEQ".
func auditPages(n int) fakeHandler {
	return func(req map[string]any) (int, string) {
		after := 0
		if tok, ok := req["NextToken"].(string); ok {
			fmt.Sscanf(tok, "after:%d", &after)
		}
		max := int(req["MaxResults"].(float64))
		var events []string
		seq := after
		for seq < n && len(events) < max {
			seq++
			events = append(events, fmt.Sprintf(`{"Seq":%d,"Time":%d,"Type":"request","EventName":"GetSecretValue",`+
				`"PrincipalArn":"arn:aws:iam::000000000000:user/bob","SecretArn":"arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf",`+
				`"Outcome":"success"}`, seq, 1714564800+seq))
		}
		next := ""
		if seq < n {
			next = fmt.Sprintf(`,"NextToken":"after:%d"`, seq)
		}
		return 200, `{"Events":[` + strings.Join(events, ",") + `]` + next + `}`
	}
}

func TestAuditSearch(t *testing.T) {
	srv := newRotorServer(t, map[string]fakeHandler{"LookupEvents": auditPages(3)})
	r := runSecretCLI(t, srv.vars(t), "", "audit", "search", "--principal", "arn:aws:iam::000000000000:user/bob",
		"--secret", "db", "--event", "GetSecretValue", "--outcome", "success",
		"--since", "2024-05-01T12:00:00Z", "--until", "2024-05-02T12:00:00.5Z")
	const row = "GetSecretValue  success  arn:aws:iam::000000000000:user/bob  arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf  -\n"
	checkRun(t, r, "SEQ  TIME                  EVENT           OUTCOME  PRINCIPAL                           SECRET                                                          ERROR\n"+
		"1    2024-05-01T12:00:01Z  "+row+
		"2    2024-05-01T12:00:02Z  "+row+
		"3    2024-05-01T12:00:03Z  "+row)
	want := []string{
		`LookupEvents {"EndTime":1714651200.5,"EventName":"GetSecretValue","MaxResults":1000,"Outcome":"success","PrincipalArn":"arn:aws:iam::000000000000:user/bob","SecretId":"db","StartTime":1714564800}`,
	}
	if !reflect.DeepEqual(srv.bodies(), want) {
		t.Errorf("requests = %q\nwant %q", srv.bodies(), want)
	}
}

func TestAuditSearchPages(t *testing.T) {
	t.Run("all", func(t *testing.T) {
		srv := newRotorServer(t, map[string]fakeHandler{"LookupEvents": auditPages(2500)})
		r := runSecretCLI(t, srv.vars(t), "", "audit", "search")
		if r.code != 0 || strings.Count(r.stdout, "\n") != 2501 || r.stderr != "" {
			t.Fatalf("exit %d, %d lines, stderr %q", r.code, strings.Count(r.stdout, "\n"), r.stderr)
		}
		want := []string{`LookupEvents {"MaxResults":1000}`, `LookupEvents {"MaxResults":1000,"NextToken":"after:1000"}`,
			`LookupEvents {"MaxResults":1000,"NextToken":"after:2000"}`}
		if !reflect.DeepEqual(srv.bodies(), want) {
			t.Errorf("requests = %q", srv.bodies())
		}
	})
	t.Run("limit", func(t *testing.T) {
		srv := newRotorServer(t, map[string]fakeHandler{"LookupEvents": auditPages(2500)})
		r := runSecretCLI(t, srv.vars(t), "", "audit", "search", "--limit", "1200", "-o", "json")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		if n := strings.Count(r.stdout, `"Seq"`); n != 1200 || !strings.HasSuffix(r.stdout, "],\n  \"NextToken\": \"after:1200\"\n}\n") {
			t.Errorf("%d events; output ends %q", n, r.stdout[len(r.stdout)-60:])
		}
		want := []string{`LookupEvents {"MaxResults":1000}`, `LookupEvents {"MaxResults":200,"NextToken":"after:1000"}`}
		if !reflect.DeepEqual(srv.bodies(), want) {
			t.Errorf("requests = %q", srv.bodies())
		}
	})
	t.Run("limit text notes more", func(t *testing.T) {
		srv := newRotorServer(t, map[string]fakeHandler{"LookupEvents": auditPages(5)})
		r := runSecretCLI(t, srv.vars(t), "", "audit", "search", "--limit", "2")
		if r.code != 0 || strings.Count(r.stdout, "\n") != 3 || r.stderr != "rotor: more results: raise --limit\n" {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("repeated token", func(t *testing.T) {
		srv := newRotorServer(t, map[string]fakeHandler{"LookupEvents": reply(`{"Events":[],"NextToken":"same"}`)})
		r := runSecretCLI(t, srv.vars(t), "", "audit", "search")
		if r.code != 1 || r.stderr != "rotor: error: the server returned NextToken \"same\" twice\n" || len(srv.calls()) != 2 {
			t.Errorf("exit %d, stderr %q, %d calls", r.code, r.stderr, len(srv.calls()))
		}
	})
}

func TestAuditSearchJSON(t *testing.T) {
	srv := newRotorServer(t, map[string]fakeHandler{"LookupEvents": reply(`{"Events":[{"Seq":9,"Time":1714564800.25,"Type":"request",` +
		`"EventName":"CreateUser","Outcome":"denied","ErrorCode":"AccessDeniedException","Message":"User: <x> & y"}]}`)})
	r := runSecretCLI(t, srv.vars(t), "", "audit", "search", "-o", "json")
	checkRun(t, r, `{
  "Events": [
    {
      "Seq": 9,
      "Time": 1714564800.25,
      "Type": "request",
      "EventName": "CreateUser",
      "Outcome": "denied",
      "ErrorCode": "AccessDeniedException",
      "Message": "User: <x> & y"
    }
  ]
}
`)
	r = runSecretCLI(t, srv.vars(t), "", "audit", "search")
	checkRun(t, r, "SEQ  TIME                  EVENT       OUTCOME  PRINCIPAL  SECRET  ERROR\n"+
		"9    2024-05-01T12:00:00Z  CreateUser  denied   -          -       AccessDeniedException: User: <x> & y\n")
}

func TestAuditSearchSinceDuration(t *testing.T) {
	srv := newRotorServer(t, map[string]fakeHandler{"LookupEvents": reply(`{"Events":[]}`)})
	before := time.Now()
	checkRun(t, runSecretCLI(t, srv.vars(t), "", "audit", "search", "--since", "90m", "--until", "1m"),
		"SEQ  TIME  EVENT  OUTCOME  PRINCIPAL  SECRET  ERROR\n")
	after := time.Now()
	body := srv.calls()[0].body
	for member, ago := range map[string]time.Duration{"StartTime": 90 * time.Minute, "EndTime": time.Minute} {
		got := time.UnixMilli(int64(body[member].(float64) * 1000))
		if lo, hi := before.Add(-ago-time.Millisecond), after.Add(-ago); got.Before(lo) || got.After(hi) {
			t.Errorf("%s = %v, want between %v and %v", member, got, lo, hi)
		}
	}
}

func TestAuditSearchUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--outcome", "maybe"}, `--outcome: want one of success, denied, auth_failed, invalid, error, got "maybe"`},
		{[]string{"--since", "yesterday"}, `--since: want a time like 2024-05-01T12:00:00Z or a duration like 24h, got "yesterday"`},
		{[]string{"--until", "-1h"}, `--until: want a duration before now, like 24h, got "-1h"`},
		{[]string{"--since", "1h", "--until", "2h"}, `--until is before --since`},
		{[]string{"--limit", "-1"}, `--limit: want a positive number, got -1`},
		{[]string{"--limit", "x"}, `invalid argument "x" for "--limit" flag: strconv.ParseInt: parsing "x": invalid syntax`},
		{[]string{"extra"}, `rotor audit search takes no arguments (got "extra")`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			srv := newRotorServer(t, nil)
			r := runSecretCLI(t, srv.vars(t), "", append([]string{"audit", "search"}, tt.args...)...)
			want := "rotor: error: " + tt.want + "\nrotor: hint: see `rotor audit search --help`\n"
			if r.code != 2 || r.stderr != want {
				t.Errorf("exit %d, stderr:\n%s\nwant:\n%s", r.code, r.stderr, want)
			}
			if len(srv.calls()) != 0 {
				t.Errorf("requests sent: %v", srv.bodies())
			}
		})
	}
}

package e2e

// The audit trail through the built server: a record for every request,
// whatever became of it, with nothing secret in it; rotor.LookupEvents and
// `rotor audit search` over it; `rotor audit verify` finding every kind of
// tampering; and a server that refuses to answer when it cannot write it.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// lookupEvent is an event of rotor.LookupEvents.
type lookupEvent struct {
	Seq                                uint64
	EventName, RequestId, PrincipalArn string
	AccessKeyId, SourceIp, SecretArn   string
	VersionId, VersionStage, Outcome   string
	ErrorCode, Message, Type           string
}

// lookupEvents calls rotor.LookupEvents with filter, following NextToken.
func lookupEvents(t testing.TB, srv *server, key *aws.Credentials, filter map[string]any) []lookupEvent {
	t.Helper()
	var all []lookupEvent
	in := map[string]any{"MaxResults": 5} // small pages, so paging is exercised
	for k, v := range filter {
		in[k] = v
	}
	for range 1000 {
		var out struct {
			Events    []lookupEvent
			NextToken string
		}
		rotorOK(t, srv, key, "rotor.LookupEvents", in, &out)
		all = append(all, out.Events...)
		if out.NextToken == "" {
			return all
		}
		in["NextToken"] = out.NextToken
	}
	t.Fatal("rotor.LookupEvents: NextToken never ends")
	return nil
}

func requestIDs(evs []lookupEvent) []string {
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.RequestId)
	}
	return ids
}

// verifyOutput runs `rotor audit verify args…` and returns its output and
// exit status.
func verifyOutput(t testing.TB, args ...string) (string, int) {
	t.Helper()
	return runRotor(t, nil, append([]string{"audit", "verify"}, args...)...)
}

var verifyProblem = regexp.MustCompile(`first problem: line (\d+) \(seq \d+\): (\w+):`)

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	root := client(t, srv)

	value, other := randomText(t, 40), randomText(t, 40)
	db := createString(t, root, "audit/db", value)
	dbARN := aws.ToString(db.ARN)
	otherARN := aws.ToString(createString(t, root, "audit/other", other).ARN)
	readerKey := newUser(t, srv, "reader", newPolicy(t, srv, "read-audit-db", policyDoc(
		`{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"`+secretARNPrefix+`audit/db-??????"}`)))
	auditorKey := newUser(t, srv, "auditor", newPolicy(t, srv, "lookup-events", policyDoc(
		`{"Effect":"Allow","Action":"rotor:LookupEvents","Resource":"*"}`)))
	reader, rootARN := userARN("reader"), "arn:aws:iam::"+accountID+":root"
	wrongSecret := "wrong-" + randomText(t, 30)
	const unknownKeyID = "AKIAUNKNOWNAUDITKEY0"

	get := func(id string) []byte { return []byte(`{"SecretId":"` + id + `"}`) }
	type want struct {
		events                 []string // event names, in order: the request's record, then per-secret ones
		principal, keyID       string
		secretARN, stage       string
		outcome, code          string
		status                 int
		secretARNs             []string // of the per-secret records, if any
		acceptSecretARNAsNames []string // other spellings of secretARN accepted
	}
	cases := []struct {
		desc string
		req  rawRequest
		want want
	}{
		{"allowed read", rawRequest{target: "secretsmanager.GetSecretValue", body: get("audit/db"), key: &readerKey},
			want{events: []string{"GetSecretValue"}, principal: reader, keyID: readerKey.AccessKeyID, secretARN: dbARN, stage: "AWSCURRENT", outcome: "success", status: 200}},
		{"denied read", rawRequest{target: "secretsmanager.GetSecretValue", body: get("audit/other"), key: &readerKey},
			want{events: []string{"GetSecretValue"}, principal: reader, keyID: readerKey.AccessKeyID, secretARN: otherARN, stage: "AWSCURRENT", outcome: "denied", code: "AccessDeniedException", status: 400}},
		{"bad signature", rawRequest{target: "secretsmanager.GetSecretValue", body: get("audit/db"),
			key: &aws.Credentials{AccessKeyID: readerKey.AccessKeyID, SecretAccessKey: wrongSecret}},
			want{events: []string{"GetSecretValue"}, keyID: readerKey.AccessKeyID, outcome: "auth_failed", code: "InvalidSignatureException", status: 400}},
		{"unknown key", rawRequest{target: "secretsmanager.GetSecretValue", body: get("audit/db"),
			key: &aws.Credentials{AccessKeyID: unknownKeyID, SecretAccessKey: wrongSecret}},
			want{events: []string{"GetSecretValue"}, keyID: unknownKeyID, outcome: "auth_failed", code: "UnrecognizedClientException", status: 400}},
		{"unsigned", rawRequest{target: "secretsmanager.GetSecretValue", body: get("audit/db")},
			want{events: []string{"GetSecretValue"}, outcome: "auth_failed", code: "MissingAuthenticationTokenException", status: 400}},
		{"invalid parameter", rawRequest{target: "secretsmanager.CreateSecret", body: []byte(`{"Name":"bad name!","SecretString":"` + value + `"}`), key: rootKey()},
			want{events: []string{"CreateSecret"}, principal: rootARN, keyID: testAccessKeyID, outcome: "invalid", code: "InvalidParameterException", status: 400}},
		{"oversized value", rawRequest{target: "secretsmanager.PutSecretValue", body: []byte(`{"SecretId":"audit/db","SecretString":"` + strings.Repeat("x", maxValueLen+1) + `"}`), key: rootKey()},
			want{events: []string{"PutSecretValue"}, principal: rootARN, keyID: testAccessKeyID, outcome: "invalid", code: "ValidationException", status: 400}},
		{"malformed JSON", rawRequest{target: "secretsmanager.GetSecretValue", body: []byte(`{"SecretId":`), key: rootKey()},
			want{events: []string{"GetSecretValue"}, principal: rootARN, keyID: testAccessKeyID, outcome: "invalid", code: "SerializationException", status: 400}},
		{"missing secret", rawRequest{target: "secretsmanager.GetSecretValue", body: get("audit/missing"), key: rootKey()},
			want{events: []string{"GetSecretValue"}, principal: rootARN, keyID: testAccessKeyID, outcome: "error", code: "ResourceNotFoundException", status: 400,
				// The secret asked for, as the name's ARN or the name:
				// the audit package's Filter documents the latter.
				secretARN: secretARNPrefix + "audit/missing", acceptSecretARNAsNames: []string{"audit/missing"}, stage: "AWSCURRENT"}},
		{"unknown operation", rawRequest{target: "secretsmanager.FrobnicateSecret", body: []byte(`{}`), key: rootKey()},
			want{events: []string{"secretsmanager.FrobnicateSecret"}, keyID: testAccessKeyID, outcome: "invalid", code: "UnknownOperationException", status: 400}},
		{"no target", rawRequest{body: []byte(`{}`), key: rootKey()},
			want{keyID: testAccessKeyID, outcome: "invalid", code: "UnknownOperationException", status: 400}},
		{"batch", rawRequest{target: "secretsmanager.BatchGetSecretValue", body: []byte(`{"SecretIdList":["audit/db","audit/other"]}`), key: rootKey()},
			want{events: []string{"BatchGetSecretValue", "GetSecretValue", "GetSecretValue"}, principal: rootARN, keyID: testAccessKeyID,
				secretARN: dbARN, stage: "AWSCURRENT", outcome: "success", status: 200, secretARNs: []string{dbARN, otherARN}}},
	}
	ids := map[string]string{}
	for _, tc := range cases {
		r := do(t, tc.req.build(t, srv))
		id := r.header.Get("x-amzn-RequestId")
		if r.status != tc.want.status || tc.want.code != "" && r.code() != tc.want.code {
			t.Errorf("%s: answered %d %s (%s), want %d %s", tc.desc, r.status, r.code(), r.body, tc.want.status, tc.want.code)
		}
		ids[tc.desc] = id
	}

	recs := readAudit(t, auditLogPath(srv.dataDir))
	byReq := auditByRequest(recs)
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			got := byReq[ids[tc.desc]]
			if len(got) == 0 {
				t.Fatalf("no audit record of request %s", ids[tc.desc])
			}
			if tc.want.events != nil {
				var names []string
				for _, r := range got {
					names = append(names, r.EventName)
				}
				if !slices.Equal(names, tc.want.events) {
					t.Errorf("records %v, want %v", names, tc.want.events)
				}
			} else if len(got) != 1 || got[0].EventName == "" {
				t.Errorf("records %+v, want one with an event name", got)
			}
			r := got[0]
			if r.Type != "request" || r.PrincipalARN != tc.want.principal || r.AccessKeyID != tc.want.keyID || r.SourceIP != "127.0.0.1" ||
				r.Outcome != tc.want.outcome || r.ErrorCode != tc.want.code || r.VersionStage != tc.want.stage {
				t.Errorf("record\n%s\nwant type request, principal %q, access key %q, source 127.0.0.1, outcome %q, error code %q, stage %q",
					r.raw, tc.want.principal, tc.want.keyID, tc.want.outcome, tc.want.code, tc.want.stage)
			}
			if r.SecretARN != tc.want.secretARN && !slices.Contains(tc.want.acceptSecretARNAsNames, r.SecretARN) {
				t.Errorf("secret_arn %q, want %q", r.SecretARN, tc.want.secretARN)
			}
			if tc.want.stage != "" && tc.want.outcome == "success" && r.VersionID == "" {
				t.Errorf("no version_id in %s", r.raw)
			}
			for i, arn := range tc.want.secretARNs {
				if 1+i >= len(got) {
					break
				}
				// A per-secret record: the batch's outcome for the secret.
				sub := got[1+i]
				wantOutcome, wantCode := "success", ""
				if arn == otherARN && tc.want.principal != rootARN {
					wantOutcome, wantCode = "denied", "AccessDeniedException"
				}
				if sub.SecretARN != arn || sub.Outcome != wantOutcome || sub.ErrorCode != wantCode || sub.PrincipalARN != tc.want.principal {
					t.Errorf("per-secret record %d:\n%s\nwant secret %s, outcome %s", i, sub.raw, arn, wantOutcome)
				}
			}
		})
	}

	t.Run("nothing secret in the log", func(t *testing.T) {
		data, err := os.ReadFile(auditLogPath(srv.dataDir))
		must(t, err)
		markers := []marker{
			{"a secret value", []byte(value)},
			{"another secret value", []byte(other)},
			{"the root secret access key", []byte(testSecretAccessKey)},
			{"a user's secret access key", []byte(readerKey.SecretAccessKey)},
			{"the auditor's secret access key", []byte(auditorKey.SecretAccessKey)},
			{"a wrong secret access key", []byte(wrongSecret)},
		}
		for _, leak := range findLeaks("the audit log", data, markers) {
			t.Error(leak)
		}
	})

	t.Run("LookupEvents", func(t *testing.T) {
		for _, tc := range []struct {
			desc    string
			filter  map[string]any
			want    []string // cases whose request must be found
			exclude []string // cases whose request must not be
			check   func(lookupEvent) bool
		}{
			{"by principal ARN", map[string]any{"PrincipalArn": reader},
				[]string{"allowed read", "denied read"}, []string{"bad signature", "batch"},
				func(e lookupEvent) bool { return e.PrincipalArn == reader }},
			{"by access key id", map[string]any{"PrincipalArn": readerKey.AccessKeyID},
				[]string{"allowed read", "denied read", "bad signature"}, []string{"unknown key", "batch"},
				func(e lookupEvent) bool { return e.AccessKeyId == readerKey.AccessKeyID }},
			{"by secret name", map[string]any{"SecretId": "audit/db"},
				[]string{"allowed read", "batch"}, []string{"denied read", "missing secret"},
				func(e lookupEvent) bool { return e.SecretArn == dbARN }},
			{"by secret ARN", map[string]any{"SecretId": otherARN},
				[]string{"denied read", "batch"}, []string{"allowed read"},
				func(e lookupEvent) bool { return e.SecretArn == otherARN }},
			{"by missing secret name", map[string]any{"SecretId": "audit/missing"},
				[]string{"missing secret"}, []string{"allowed read"}, nil},
			{"by outcome denied", map[string]any{"Outcome": "denied"},
				[]string{"denied read"}, []string{"allowed read", "bad signature"},
				func(e lookupEvent) bool { return e.Outcome == "denied" }},
			{"by outcome auth_failed", map[string]any{"Outcome": "auth_failed"},
				[]string{"bad signature", "unknown key", "unsigned"}, []string{"denied read"},
				func(e lookupEvent) bool { return e.Outcome == "auth_failed" }},
			{"by principal and outcome", map[string]any{"PrincipalArn": reader, "Outcome": "success"},
				[]string{"allowed read"}, []string{"denied read"},
				func(e lookupEvent) bool { return e.PrincipalArn == reader && e.Outcome == "success" }},
		} {
			evs := lookupEvents(t, srv, &auditorKey, tc.filter)
			got := requestIDs(evs)
			for _, c := range tc.want {
				if !slices.Contains(got, ids[c]) {
					t.Errorf("%s: the %q request (%s) is not among %d events", tc.desc, c, ids[c], len(evs))
				}
			}
			for _, c := range tc.exclude {
				if slices.Contains(got, ids[c]) {
					t.Errorf("%s: the %q request (%s) is among the events", tc.desc, c, ids[c])
				}
			}
			for _, e := range evs {
				if tc.check != nil && !tc.check(e) {
					t.Errorf("%s: event does not match the filter: %+v", tc.desc, e)
				}
			}
		}
		// Reading the log needs rotor:LookupEvents.
		r := callRotor(t, srv, &readerKey, "rotor.LookupEvents", map[string]any{})
		wantError(t, r, http.StatusBadRequest, "AccessDeniedException")
		ids["denied lookup"] = r.header.Get("x-amzn-RequestId")
	})

	t.Run("rotor audit search", func(t *testing.T) {
		out, code := runRotor(t, []string{
			"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + srv.endpoint(), "AWS_REGION=" + region,
			"AWS_ACCESS_KEY_ID=" + auditorKey.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + auditorKey.SecretAccessKey,
			"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "HOME=" + t.TempDir(),
		}, "audit", "search", "--principal", reader, "--outcome", "denied", "--output", "json")
		if code != 0 {
			t.Fatalf("rotor audit search: exit status %d\n%s", code, out)
		}
		var res struct{ Events []lookupEvent }
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("rotor audit search --output json: %v\n%s", err, out)
		}
		if got, want := requestIDs(res.Events), []string{ids["denied read"], ids["denied lookup"]}; !slices.Equal(got, want) {
			t.Errorf("rotor audit search --principal reader --outcome denied: request ids %v, want %v", got, want)
		}
	})

	t.Run("verify while running", func(t *testing.T) {
		out, code := verifyOutput(t, "--data-dir", srv.dataDir)
		if code != 0 || !strings.Contains(out, ": intact") {
			t.Errorf("rotor audit verify: exit status %d\n%s", code, out)
		}
	})

	// Stopped, the log ends with a checkpoint that the store anchors.
	code, err := srv.stop()
	must(t, err)
	if code != 0 {
		t.Fatalf("exit status %d; log:\n%s", code, srv.logs)
	}
	logPath := auditLogPath(srv.dataDir)
	out, status := verifyOutput(t, "--data-dir", srv.dataDir)
	if status != 0 || !strings.Contains(out, ": intact") || !regexp.MustCompile(`anchor: seq \d+ matches`).MatchString(out) {
		t.Fatalf("rotor audit verify after stop: exit status %d\n%s", status, out)
	}
	orig, err := os.ReadFile(logPath)
	must(t, err)
	lines := strings.SplitAfter(string(orig), "\n")
	lines = lines[:len(lines)-1] // after the last newline
	if len(lines) < 10 {
		t.Fatalf("only %d lines in the audit log", len(lines))
	}
	if last := readAudit(t, logPath); last[len(last)-1].Type != "checkpoint" {
		t.Fatalf("the log does not end with a checkpoint: %s", last[len(last)-1].raw)
	}
	// m is a request record in the middle of the log (1-based).
	m := len(lines) / 2
	for strings.Contains(lines[m-1], `"type":"checkpoint"`) || strings.Contains(lines[m], `"type":"checkpoint"`) {
		m++
	}

	rehash := func(line string) string {
		body := strings.TrimSuffix(line, "\n")
		i := strings.LastIndex(body, `"hash":"`)
		content := body[:i] + `"hash":""}`
		sum := sha256.Sum256([]byte(content))
		return body[:i] + `"hash":"` + hex.EncodeToString(sum[:]) + `"}` + "\n"
	}
	for _, tc := range []struct {
		desc   string
		edit   func(ls []string) []string
		line   int
		kind   string
		detail string
	}{
		{"a field edited", func(ls []string) []string {
			ls[m-1] = strings.Replace(ls[m-1], `"source_ip":"127.0.0.1"`, `"source_ip":"127.0.0.2"`, 1)
			return ls
		}, m, "altered", ""},
		{"a field edited and its hash recomputed", func(ls []string) []string {
			ls[m-1] = rehash(strings.Replace(ls[m-1], `"source_ip":"127.0.0.1"`, `"source_ip":"127.0.0.2"`, 1))
			return ls
		}, m + 1, "broken_chain", ""},
		{"a middle line deleted", func(ls []string) []string {
			return slices.Delete(ls, m-1, m)
		}, m, "missing", ""},
		{"two lines swapped", func(ls []string) []string {
			ls[m-1], ls[m] = ls[m], ls[m-1]
			return ls
		}, m, "reordered", ""},
		{"the tail cut before the anchor", func(ls []string) []string {
			return ls[:len(ls)-2]
		}, len(lines) - 1, "truncated", ""},
	} {
		t.Run("verify "+tc.desc, func(t *testing.T) {
			edited := tc.edit(slices.Clone(lines))
			if strings.Join(edited, "") == string(orig) {
				t.Fatal("the edit changed nothing")
			}
			copyPath := filepath.Join(t.TempDir(), "audit.log")
			must(t, os.WriteFile(copyPath, []byte(strings.Join(edited, "")), 0o600))
			out, code := verifyOutput(t, "--log", copyPath, "--data-dir", srv.dataDir)
			if code != 1 || !strings.Contains(out, "NOT INTACT") {
				t.Fatalf("rotor audit verify: exit status %d, want 1\n%s", code, out)
			}
			p := verifyProblem.FindStringSubmatch(out)
			if p == nil {
				t.Fatalf("no problem line in\n%s", out)
			}
			if line, _ := strconv.Atoi(p[1]); line != tc.line || p[2] != tc.kind {
				t.Errorf("reported line %s %s, want line %d %s\n%s", p[1], p[2], tc.line, tc.kind, out)
			}
		})
	}
	// The original still verifies: the checks above read copies.
	if out, code := verifyOutput(t, "--data-dir", srv.dataDir); code != 0 {
		t.Errorf("rotor audit verify of the original: exit status %d\n%s", code, out)
	}
}

// TestAuditFailClosed breaks the audit log of a running server: it keeps
// the file open, so the test lowers the process's file size limit
// (RLIMIT_FSIZE, with prlimit(1)) to the log's current size, and the next
// write fails with EFBIG as on a full disk. Every request must then fail
// with InternalServiceError, no secret value may leave the server, and the
// failures are counted and logged. A restart opens the log again.
func TestAuditFailClosed(t *testing.T) {
	t.Parallel()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatalf("prlimit (util-linux) is not on PATH: %v", err)
	}
	srv := startServer(t)
	c := client(t, srv)
	ctx := t.Context()
	value := randomText(t, 40)
	name := uniqueName(t)
	createString(t, c, name, value)
	// The first read records the access date in the store; later reads
	// write nothing there, so only the audit log sees the next request.
	if got := getString(t, c, name); got != value {
		t.Fatalf("GetSecretValue = %q", got)
	}
	before := scrape(t, srv)

	logPath := auditLogPath(srv.dataDir)
	fi, err := os.Stat(logPath)
	must(t, err)
	setLimit := func(limit string) {
		t.Helper()
		out, err := exec.CommandContext(ctx, prlimit, "--pid", strconv.Itoa(srv.pid()), "--fsize="+limit).CombinedOutput()
		if err != nil {
			t.Fatalf("prlimit --fsize=%s: %v\n%s", limit, err, out)
		}
	}
	setLimit(fmt.Sprintf("%d:unlimited", fi.Size()))

	r := do(t, rawRequest{target: "secretsmanager.GetSecretValue", body: []byte(`{"SecretId":"` + name + `"}`), key: rootKey()}.build(t, srv))
	wantError(t, r, http.StatusInternalServerError, "InternalServiceError")
	if strings.Contains(string(r.body), value) {
		t.Errorf("the refused answer carries the secret value: %s", r.body)
	}
	// The SDK sees the same, and so does every other request.
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	wantCode(t, err, "InternalServiceError")
	_, err = c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{name}})
	wantCode(t, err, "InternalServiceError")
	_, err = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	wantCode(t, err, "InternalServiceError")

	// The log stays broken once a write failed, even with room again.
	setLimit("unlimited")
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	wantCode(t, err, "InternalServiceError")

	after := scrape(t, srv)
	b, _ := metricValue(before, "rotor_audit_write_failures_total")
	a, ok := metricValue(after, "rotor_audit_write_failures_total")
	if !ok || a-b < 5 {
		t.Errorf("rotor_audit_write_failures_total went from %v to %v (found %v), want 5 more", b, a, ok)
	}
	if n, _ := metricValue(after, "rotor_requests_total", "operation", "GetSecretValue", "code", "InternalServiceError"); n < 3 {
		t.Errorf("rotor_requests_total{operation=GetSecretValue,code=InternalServiceError} = %v, want 3", n)
	}
	if !strings.Contains(srv.logs.String(), "audit write failed; request refused") {
		t.Errorf("the server did not log the refusal")
	}
	if strings.Contains(srv.logs.String(), value) {
		t.Errorf("the server's log carries the secret value")
	}
	if got, _ := os.ReadFile(logPath); int64(len(got)) != fi.Size() {
		t.Errorf("the audit log changed size from %d to %d while writes failed", fi.Size(), len(got))
	}

	// The final checkpoint cannot be written either; whatever the exit
	// status, a new run opens the log again and it verifies.
	code, err := srv.stop()
	must(t, err)
	t.Logf("exit status after the audit log broke: %d", code)
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	if got := getString(t, client(t, srv), name); got != value {
		t.Errorf("after restart: GetSecretValue = %q", got)
	}
	if out, code := verifyOutput(t, "--data-dir", srv.dataDir); code != 0 {
		t.Errorf("rotor audit verify after restart: exit status %d\n%s", code, out)
	}
}

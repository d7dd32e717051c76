package e2e

// Helpers of the access-control, audit, webhook and metrics tests: Rotor's
// rotor.* administrative operations called as raw signed requests, users
// with keys and policies, the audit log read as JSON lines, and a
// Prometheus scrape.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// secretARNPrefix is the ARN of a secret up to its name.
const secretARNPrefix = "arn:aws:secretsmanager:" + region + ":" + accountID + ":secret:"

// userARN is the ARN of the user name.
func userARN(name string) string { return "arn:aws:iam::" + accountID + ":user/" + name }

// policyARN is the ARN of the managed policy name.
func policyARN(name string) string { return "arn:aws:iam::" + accountID + ":policy/" + name }

// callRotor sends a rotor.* (or any) operation target with body, a value
// encoded as JSON, signed with key (nil: unsigned), and returns the
// response read in full.
func callRotor(t testing.TB, srv *server, key *aws.Credentials, target string, body any) rawResponse {
	t.Helper()
	b, err := json.Marshal(body)
	must(t, err)
	return do(t, rawRequest{target: target, body: b, key: key}.build(t, srv))
}

// rotorOK calls target, which must answer 200, and decodes the answer into
// out (nil: ignored).
func rotorOK(t testing.TB, srv *server, key *aws.Credentials, target string, body, out any) {
	t.Helper()
	r := callRotor(t, srv, key, target, body)
	if r.status != http.StatusOK {
		t.Fatalf("%s: %d %s", target, r.status, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("%s: answer is not JSON: %v\n%s", target, err, r.body)
		}
	}
}

// message is the message of an error response.
func (r rawResponse) message() string {
	var e struct {
		Message string `json:"Message"`
		Lower   string `json:"message"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Message + e.Lower
}

// newAccessKey creates an access key for user, as root.
func newAccessKey(t testing.TB, srv *server, user string) aws.Credentials {
	t.Helper()
	var out struct {
		AccessKey struct {
			UserName, AccessKeyId, SecretAccessKey, Status string
		}
	}
	rotorOK(t, srv, rootKey(), "rotor.CreateAccessKey", map[string]string{"UserName": user}, &out)
	k := out.AccessKey
	if k.UserName != user || k.AccessKeyId == "" || k.SecretAccessKey == "" || k.Status != "Active" {
		t.Fatalf("rotor.CreateAccessKey(%s) = %+v", user, k)
	}
	return aws.Credentials{AccessKeyID: k.AccessKeyId, SecretAccessKey: k.SecretAccessKey}
}

// newPolicy creates a managed policy, as root, and returns its ARN.
func newPolicy(t testing.TB, srv *server, name, doc string) string {
	t.Helper()
	var out struct {
		Policy struct{ PolicyName, Arn string }
	}
	rotorOK(t, srv, rootKey(), "rotor.CreatePolicy", map[string]string{"PolicyName": name, "PolicyDocument": doc}, &out)
	if out.Policy.Arn != policyARN(name) {
		t.Fatalf("rotor.CreatePolicy(%s): Arn %q, want %q", name, out.Policy.Arn, policyARN(name))
	}
	return out.Policy.Arn
}

// attachPolicy attaches a policy to a user, as root.
func attachPolicy(t testing.TB, srv *server, user, arn string) {
	t.Helper()
	rotorOK(t, srv, rootKey(), "rotor.AttachUserPolicy", map[string]string{"UserName": user, "PolicyArn": arn}, nil)
}

// newUser creates a user with one access key and the given policies
// attached, as root, and returns the key.
func newUser(t testing.TB, srv *server, name string, policyARNs ...string) aws.Credentials {
	t.Helper()
	var out struct {
		User struct{ UserName, Arn string }
	}
	rotorOK(t, srv, rootKey(), "rotor.CreateUser", map[string]string{"UserName": name}, &out)
	if out.User.UserName != name || out.User.Arn != userARN(name) {
		t.Fatalf("rotor.CreateUser(%s) = %+v", name, out.User)
	}
	for _, p := range policyARNs {
		attachPolicy(t, srv, name, p)
	}
	return newAccessKey(t, srv, name)
}

var userSeq atomic.Int64

// uniqueUser is a user name no other test uses.
func uniqueUser(prefix string) string { return fmt.Sprintf("%s-%d", prefix, userSeq.Add(1)) }

// keyClient is an SDK client signing with key.
func keyClient(srv *server, key aws.Credentials, optFns ...func(*secretsmanager.Options)) *secretsmanager.Client {
	return clientWithKey(srv, key.AccessKeyID, key.SecretAccessKey, optFns...)
}

// policyDoc is an identity policy document of the given statements (JSON
// objects).
func policyDoc(statements ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`
}

// auditRecord is a line of the audit log.
type auditRecord struct {
	Seq          uint64          `json:"seq"`
	Type         string          `json:"type"`
	EventName    string          `json:"event_name"`
	RequestID    string          `json:"request_id"`
	PrincipalARN string          `json:"principal_arn"`
	AccessKeyID  string          `json:"access_key_id"`
	SourceIP     string          `json:"source_ip"`
	UserAgent    string          `json:"user_agent"`
	SecretARN    string          `json:"secret_arn"`
	VersionID    string          `json:"version_id"`
	VersionStage string          `json:"version_stage"`
	Outcome      string          `json:"outcome"`
	ErrorCode    string          `json:"error_code"`
	Message      string          `json:"message"`
	Checkpoint   json.RawMessage `json:"checkpoint"`
	line         int             // 1-based
	raw          string
}

// auditLogPath is where a server keeps its audit log.
func auditLogPath(dataDir string) string { return filepath.Join(dataDir, "audit", "audit.log") }

// readAudit reads every complete line of the audit log at path.
func readAudit(t testing.TB, path string) []auditRecord {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	var out []auditRecord
	br := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			break // a final line without a newline is still being written
		}
		must(t, err)
		var r auditRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s line %d is not JSON: %v\n%s", path, n, err, line)
		}
		r.line, r.raw = n, strings.TrimSuffix(line, "\n")
		out = append(out, r)
	}
	return out
}

// auditByRequest indexes request records by request id.
func auditByRequest(recs []auditRecord) map[string][]auditRecord {
	m := map[string][]auditRecord{}
	for _, r := range recs {
		if r.RequestID != "" {
			m[r.RequestID] = append(m[r.RequestID], r)
		}
	}
	return m
}

// scrape returns the text exposition of GET /metrics.
func scrape(t testing.TB, srv *server) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.endpoint()+"/metrics", nil)
	must(t, err)
	r := do(t, req)
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", r.status, r.body)
	}
	return string(r.body)
}

// sample is one line of a text exposition.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// samples parses a text exposition; comments are skipped.
func samples(exposition string) []sample {
	var out []sample
	for line := range strings.SplitSeq(exposition, "\n") {
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		s := sample{name: m[1], labels: map[string]string{}, value: v}
		for _, lp := range labelPair.FindAllStringSubmatch(m[2], -1) {
			s.labels[lp[1]] = lp[2]
		}
		out = append(out, s)
	}
	return out
}

// metricValue returns the value of the sample name whose labels are
// exactly labels (pairs of name and value), and whether there is one.
func metricValue(exposition, name string, labels ...string) (float64, bool) {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, s := range samples(exposition) {
		if s.name == name && maps.Equal(s.labels, want) {
			return s.value, true
		}
	}
	return 0, false
}

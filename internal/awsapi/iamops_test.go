package awsapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/iam"
	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

const (
	testAccount = "000000000000"
	testRegion  = "us-east-1"
)

var rootPrincipal = auth.Principal{ARN: "arn:aws:iam::" + testAccount + ":root", AccessKeyID: "AKIAROTORROOT0000001", Root: true}

func asRoot() authFunc {
	return func(context.Context, *http.Request, []byte) (auth.Principal, error) { return rootPrincipal, nil }
}

// iamFixture is a handler serving the IAM operations over a real
// iam.Service on a fresh SQLite store.
type iamFixture struct {
	h    *Handler
	iam  *iam.Service
	keys *auth.StoreKeys
}

// newIAMFixture authenticates callers with a; nil means a verifier of
// SigV4 signatures over the fixture's own access keys.
func newIAMFixture(t *testing.T, a Authenticator) *iamFixture {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rotor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk, err := keyring.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(mk)
	if err != nil {
		t.Fatal(err)
	}
	keys := auth.NewStoreKeys(st, kr)
	if a == nil {
		a = auth.NewVerifier(auth.VerifierConfig{Keys: keys, Region: testRegion})
	}
	f := &iamFixture{keys: keys, iam: iam.New(iam.Config{Store: st, Keys: keys, AccountID: testAccount, Region: testRegion})}
	f.h, _ = testHandler(t, &fakeBackend{}, a)
	f.h.iam = f.iam
	return f
}

// call posts rotor.OP with body and checks the status; it returns the
// decoded response.
func (f *iamFixture) call(t *testing.T, op, body string, wantStatus int) map[string]any {
	t.Helper()
	return expect(t, post(f.h, "rotor."+op, body), wantStatus)
}

func expect(t *testing.T, w *httptest.ResponseRecorder, wantStatus int) map[string]any {
	t.Helper()
	if w.Code != wantStatus {
		t.Fatalf("status = %d, want %d; body %s", w.Code, wantStatus, w.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", w.Body, err)
	}
	return m
}

// wantError checks an error response's status and __type.
func wantError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) string {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	got, msg := errorBody(t, w)
	if got != code {
		t.Fatalf("__type = %q, want %q (message %q)", got, code, msg)
	}
	return msg
}

func jsonMember(t *testing.T, m map[string]any, path ...string) any {
	t.Helper()
	var v any = m
	for _, p := range path {
		o, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object at %q in %v", strings.Join(path, "."), p, m)
		}
		v, ok = o[p]
		if !ok {
			t.Fatalf("%s: member %q missing in %v", strings.Join(path, "."), p, m)
		}
	}
	return v
}

func jsonArray(t *testing.T, m map[string]any, name string) []map[string]any {
	t.Helper()
	raw, ok := m[name].([]any)
	if !ok {
		t.Fatalf("%s is not an array in %v", name, m)
	}
	out := make([]map[string]any, len(raw))
	for i, e := range raw {
		out[i] = e.(map[string]any)
	}
	return out
}

func TestIAMOperationsNeedIAM(t *testing.T) {
	h, _ := testHandler(t, &fakeBackend{}, asRoot())
	for target := range iamOperations {
		wantError(t, post(h, target, `{}`), 400, "UnknownOperationException")
	}
	want := []string{"CreateUser", "GetUser", "DeleteUser", "ListUsers", "CreateAccessKey", "ListAccessKeys",
		"UpdateAccessKey", "DeleteAccessKey", "CreatePolicy", "GetPolicy", "UpdatePolicy", "DeletePolicy",
		"ListPolicies", "AttachUserPolicy", "DetachUserPolicy", "ListAttachedUserPolicies"}
	for _, name := range want {
		if o := iamOperations["rotor."+name]; o == nil || o.name != name {
			t.Errorf("rotor.%s not registered", name)
		}
	}
	if len(iamOperations) != len(want) {
		t.Errorf("%d IAM operations registered, want %d", len(iamOperations), len(want))
	}
}

func TestIAMUsers(t *testing.T) {
	f := newIAMFixture(t, asRoot())
	before := time.Now().Add(-time.Second)

	got := f.call(t, "CreateUser", `{"UserName":"alice"}`, 200)
	u := jsonMember(t, got, "User").(map[string]any)
	if u["UserName"] != "alice" || u["Arn"] != "arn:aws:iam::"+testAccount+":user/alice" {
		t.Errorf("CreateUser = %v", got)
	}
	if id, _ := u["UserId"].(string); !strings.HasPrefix(id, "AIDA") || len(id) != 21 {
		t.Errorf("UserId = %q, want AIDA and 17 characters", id)
	}
	if d, _ := u["CreateDate"].(float64); time.Unix(int64(d), 0).Before(before.Truncate(time.Second)) {
		t.Errorf("CreateDate = %v, want epoch seconds of now", u["CreateDate"])
	}

	if got := f.call(t, "GetUser", `{"UserName":"alice"}`, 200); !jsonEqual(jsonMember(t, got, "User"), u) {
		t.Errorf("GetUser = %v, want %v", got, u)
	}
	msg := wantError(t, post(f.h, "rotor.CreateUser", `{"UserName":"alice"}`), 409, "EntityAlreadyExistsException")
	if !strings.Contains(msg, "alice") {
		t.Errorf("message %q does not name the user", msg)
	}
	wantError(t, post(f.h, "rotor.GetUser", `{"UserName":"nobody"}`), 404, "NoSuchEntityException")
	wantError(t, post(f.h, "rotor.CreateUser", `{"UserName":"bad name"}`), 400, "InvalidInputException")

	got = f.call(t, "ListUsers", `{}`, 200)
	if users := jsonArray(t, got, "Users"); len(users) != 1 || users[0]["UserName"] != "alice" {
		t.Errorf("ListUsers = %v", got)
	}
	if got["IsTruncated"] != false {
		t.Errorf("IsTruncated = %v, want false", got["IsTruncated"])
	}
	if _, ok := got["Marker"]; ok {
		t.Errorf("Marker present on the last page: %v", got)
	}

	if got := f.call(t, "DeleteUser", `{"UserName":"alice"}`, 200); len(got) != 0 {
		t.Errorf("DeleteUser = %v, want {}", got)
	}
	wantError(t, post(f.h, "rotor.GetUser", `{"UserName":"alice"}`), 404, "NoSuchEntityException")
	wantError(t, post(f.h, "rotor.DeleteUser", `{"UserName":"alice"}`), 404, "NoSuchEntityException")
	if users := jsonArray(t, f.call(t, "ListUsers", `{}`, 200), "Users"); len(users) != 0 {
		t.Errorf("ListUsers after delete = %v", users)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestIAMListUsersPages(t *testing.T) {
	f := newIAMFixture(t, asRoot())
	for _, n := range []string{"carol", "alice", "bob"} {
		f.call(t, "CreateUser", `{"UserName":"`+n+`"}`, 200)
	}
	var names []string
	body := `{"MaxItems":2}`
	for page := 0; ; page++ {
		if page > 3 {
			t.Fatal("paging does not end")
		}
		got := f.call(t, "ListUsers", body, 200)
		for _, u := range jsonArray(t, got, "Users") {
			names = append(names, u["UserName"].(string))
		}
		marker, _ := got["Marker"].(string)
		if got["IsTruncated"] != (marker != "") {
			t.Fatalf("IsTruncated = %v with Marker %q", got["IsTruncated"], marker)
		}
		if marker == "" {
			break
		}
		b, _ := json.Marshal(map[string]any{"MaxItems": 2, "Marker": marker})
		body = string(b)
	}
	if strings.Join(names, ",") != "alice,bob,carol" {
		t.Errorf("users = %v, want alice,bob,carol", names)
	}
}

func TestIAMAccessKeys(t *testing.T) {
	f := newIAMFixture(t, asRoot())
	f.call(t, "CreateUser", `{"UserName":"bob"}`, 200)

	w := post(f.h, "rotor.CreateAccessKey", `{"UserName":"bob"}`)
	got := expect(t, w, 200)
	k := jsonMember(t, got, "AccessKey").(map[string]any)
	id, _ := k["AccessKeyId"].(string)
	secret, _ := k["SecretAccessKey"].(string)
	if k["UserName"] != "bob" || k["Status"] != "Active" || id == "" || len(secret) < 30 || k["CreateDate"] == nil {
		t.Fatalf("CreateAccessKey = %v", got)
	}

	w = post(f.h, "rotor.ListAccessKeys", `{"UserName":"bob"}`)
	if strings.Contains(w.Body.String(), secret) || strings.Contains(w.Body.String(), "SecretAccessKey") {
		t.Fatalf("ListAccessKeys shows the secret: %s", w.Body)
	}
	got = expect(t, w, 200)
	keys := jsonArray(t, got, "AccessKeyMetadata")
	if len(keys) != 1 || keys[0]["AccessKeyId"] != id || keys[0]["Status"] != "Active" || keys[0]["UserName"] != "bob" || got["IsTruncated"] != false {
		t.Fatalf("ListAccessKeys = %v", got)
	}

	f.call(t, "UpdateAccessKey", `{"UserName":"bob","AccessKeyId":"`+id+`","Status":"Inactive"}`, 200)
	if keys := jsonArray(t, f.call(t, "ListAccessKeys", `{"UserName":"bob"}`, 200), "AccessKeyMetadata"); keys[0]["Status"] != "Inactive" {
		t.Errorf("status after deactivation = %v", keys[0]["Status"])
	}
	wantError(t, post(f.h, "rotor.UpdateAccessKey", `{"UserName":"bob","AccessKeyId":"`+id+`","Status":"Sleeping"}`), 400, "InvalidInputException")
	wantError(t, post(f.h, "rotor.UpdateAccessKey", `{"UserName":"bob","AccessKeyId":"AKIANOSUCHKEY0000000","Status":"Active"}`), 404, "NoSuchEntityException")

	f.call(t, "CreateAccessKey", `{"UserName":"bob"}`, 200)
	wantError(t, post(f.h, "rotor.CreateAccessKey", `{"UserName":"bob"}`), 409, "LimitExceededException")
	wantError(t, post(f.h, "rotor.CreateAccessKey", `{"UserName":"nobody"}`), 404, "NoSuchEntityException")

	f.call(t, "DeleteAccessKey", `{"UserName":"bob","AccessKeyId":"`+id+`"}`, 200)
	wantError(t, post(f.h, "rotor.DeleteAccessKey", `{"UserName":"bob","AccessKeyId":"`+id+`"}`), 404, "NoSuchEntityException")
	if keys := jsonArray(t, f.call(t, "ListAccessKeys", `{"UserName":"bob"}`, 200), "AccessKeyMetadata"); len(keys) != 1 || keys[0]["AccessKeyId"] == id {
		t.Errorf("keys after delete = %v", keys)
	}
}

const testPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`

func TestIAMPolicies(t *testing.T) {
	f := newIAMFixture(t, asRoot())
	f.call(t, "CreateUser", `{"UserName":"bob"}`, 200)
	doc, _ := json.Marshal(testPolicy)
	const arn = "arn:aws:iam::" + testAccount + ":policy/readers"

	got := f.call(t, "CreatePolicy", `{"PolicyName":"readers","Description":"read all","PolicyDocument":`+string(doc)+`}`, 200)
	p := jsonMember(t, got, "Policy").(map[string]any)
	if p["PolicyName"] != "readers" || p["Arn"] != arn || p["Description"] != "read all" ||
		p["AttachmentCount"] != 0.0 || p["CreateDate"] == nil || p["UpdateDate"] == nil {
		t.Errorf("CreatePolicy = %v", got)
	}
	if id, _ := p["PolicyId"].(string); !strings.HasPrefix(id, "ANPA") {
		t.Errorf("PolicyId = %q", id)
	}
	if _, ok := p["PolicyDocument"]; ok {
		t.Errorf("CreatePolicy returns the document: %v", p)
	}
	wantError(t, post(f.h, "rotor.CreatePolicy", `{"PolicyName":"readers","PolicyDocument":`+string(doc)+`}`), 409, "EntityAlreadyExistsException")
	wantError(t, post(f.h, "rotor.CreatePolicy", `{"PolicyName":"broken","PolicyDocument":"{\"Statement\":"}`), 400, "MalformedPolicyDocumentException")

	for _, ref := range []string{"readers", arn} {
		got := f.call(t, "GetPolicy", `{"PolicyArn":"`+ref+`"}`, 200)
		if jsonMember(t, got, "Policy", "PolicyDocument") != testPolicy || jsonMember(t, got, "Policy", "Arn") != arn {
			t.Errorf("GetPolicy(%s) = %v", ref, got)
		}
	}
	wantError(t, post(f.h, "rotor.GetPolicy", `{"PolicyArn":"nothing"}`), 404, "NoSuchEntityException")
	wantError(t, post(f.h, "rotor.GetPolicy", `{"PolicyArn":"arn:aws:iam::999999999999:policy/readers"}`), 400, "InvalidInputException")

	updated := strings.Replace(testPolicy, "GetSecretValue", "DescribeSecret", 1)
	doc2, _ := json.Marshal(updated)
	got = f.call(t, "UpdatePolicy", `{"PolicyArn":"readers","PolicyDocument":`+string(doc2)+`}`, 200)
	if jsonMember(t, got, "Policy", "PolicyName") != "readers" {
		t.Errorf("UpdatePolicy = %v", got)
	}
	wantError(t, post(f.h, "rotor.UpdatePolicy", `{"PolicyArn":"readers","PolicyDocument":"[]"}`), 400, "MalformedPolicyDocumentException")
	if got := f.call(t, "GetPolicy", `{"PolicyArn":"readers"}`, 200); jsonMember(t, got, "Policy", "PolicyDocument") != updated {
		t.Errorf("document after update = %v", got)
	}

	got = f.call(t, "ListPolicies", `{}`, 200)
	ps := jsonArray(t, got, "Policies")
	if len(ps) != 1 || ps[0]["PolicyName"] != "readers" || got["IsTruncated"] != false {
		t.Errorf("ListPolicies = %v", got)
	}
	if _, ok := ps[0]["PolicyDocument"]; ok {
		t.Errorf("ListPolicies returns documents: %v", ps[0])
	}

	f.call(t, "AttachUserPolicy", `{"UserName":"bob","PolicyArn":"`+arn+`"}`, 200)
	got = f.call(t, "ListAttachedUserPolicies", `{"UserName":"bob"}`, 200)
	if ap := jsonArray(t, got, "AttachedPolicies"); len(ap) != 1 || ap[0]["PolicyName"] != "readers" || ap[0]["PolicyArn"] != arn || got["IsTruncated"] != false {
		t.Errorf("ListAttachedUserPolicies = %v", got)
	}
	if n := jsonMember(t, f.call(t, "GetPolicy", `{"PolicyArn":"readers"}`, 200), "Policy", "AttachmentCount"); n != 1.0 {
		t.Errorf("AttachmentCount = %v, want 1", n)
	}
	wantError(t, post(f.h, "rotor.AttachUserPolicy", `{"UserName":"nobody","PolicyArn":"readers"}`), 404, "NoSuchEntityException")
	wantError(t, post(f.h, "rotor.AttachUserPolicy", `{"UserName":"bob","PolicyArn":"nothing"}`), 404, "NoSuchEntityException")
	wantError(t, post(f.h, "rotor.DeletePolicy", `{"PolicyArn":"readers"}`), 409, "DeleteConflictException")

	f.call(t, "DetachUserPolicy", `{"UserName":"bob","PolicyArn":"readers"}`, 200)
	wantError(t, post(f.h, "rotor.DetachUserPolicy", `{"UserName":"bob","PolicyArn":"readers"}`), 404, "NoSuchEntityException")
	if ap := jsonArray(t, f.call(t, "ListAttachedUserPolicies", `{"UserName":"bob"}`, 200), "AttachedPolicies"); len(ap) != 0 {
		t.Errorf("attached after detach = %v", ap)
	}
	f.call(t, "DeletePolicy", `{"PolicyArn":"readers"}`, 200)
	wantError(t, post(f.h, "rotor.GetPolicy", `{"PolicyArn":"readers"}`), 404, "NoSuchEntityException")
}

func TestIAMPolicyLimit(t *testing.T) {
	f := newIAMFixture(t, asRoot())
	f.call(t, "CreateUser", `{"UserName":"bob"}`, 200)
	doc, _ := json.Marshal(testPolicy)
	for i := range iam.MaxPoliciesByUser + 1 {
		name := "p" + string(rune('a'+i))
		f.call(t, "CreatePolicy", `{"PolicyName":"`+name+`","PolicyDocument":`+string(doc)+`}`, 200)
		w := post(f.h, "rotor.AttachUserPolicy", `{"UserName":"bob","PolicyArn":"`+name+`"}`)
		if i < iam.MaxPoliciesByUser {
			expect(t, w, 200)
			continue
		}
		wantError(t, w, 409, "LimitExceededException")
	}
}

func TestIAMRequiredMembers(t *testing.T) {
	tests := []struct {
		op, body, member string
	}{
		{"CreateUser", `{}`, "userName"},
		{"GetUser", `{"UserName":""}`, "userName"},
		{"DeleteUser", ``, "userName"},
		{"CreateAccessKey", `{}`, "userName"},
		{"ListAccessKeys", `{}`, "userName"},
		{"UpdateAccessKey", `{"AccessKeyId":"AKIAX","Status":"Active"}`, "userName"},
		{"UpdateAccessKey", `{"UserName":"bob","Status":"Active"}`, "accessKeyId"},
		{"UpdateAccessKey", `{"UserName":"bob","AccessKeyId":"AKIAX"}`, "status"},
		{"DeleteAccessKey", `{"UserName":"bob"}`, "accessKeyId"},
		{"CreatePolicy", `{"PolicyDocument":"{}"}`, "policyName"},
		{"CreatePolicy", `{"PolicyName":"p"}`, "policyDocument"},
		{"GetPolicy", `{}`, "policyArn"},
		{"UpdatePolicy", `{"PolicyDocument":"{}"}`, "policyArn"},
		{"UpdatePolicy", `{"PolicyArn":"p"}`, "policyDocument"},
		{"DeletePolicy", `{}`, "policyArn"},
		{"AttachUserPolicy", `{"PolicyArn":"p"}`, "userName"},
		{"DetachUserPolicy", `{"UserName":"bob"}`, "policyArn"},
		{"ListAttachedUserPolicies", `{}`, "userName"},
		{"ListUsers", `{"MaxItems":0}`, "maxItems"},
		{"ListPolicies", `{"MaxItems":1001}`, "maxItems"},
		{"ListUsers", `{"Marker":"` + strings.Repeat("m", 321) + `"}`, "marker"},
	}
	f := newIAMFixture(t, asRoot())
	for _, tt := range tests {
		t.Run(tt.op+" "+tt.member, func(t *testing.T) {
			msg := wantError(t, post(f.h, "rotor."+tt.op, tt.body), 400, "InvalidInputException")
			if !strings.Contains(msg, "'"+tt.member+"'") {
				t.Errorf("message %q does not name %s", msg, tt.member)
			}
		})
	}
}

func TestIAMSerializationError(t *testing.T) {
	f := newIAMFixture(t, asRoot())
	wantError(t, post(f.h, "rotor.CreateUser", `{"UserName":7}`), 400, "SerializationException")
}

func TestIAMRefusesUnauthorizedCaller(t *testing.T) {
	f := newIAMFixture(t, allowAll()) // alice, a user with no policies
	msg := wantError(t, post(f.h, "rotor.CreateUser", `{"UserName":"mallory"}`), 400, "AccessDeniedException")
	if !strings.Contains(msg, "rotor:CreateUser") || !strings.Contains(msg, testPrincipal.ARN) {
		t.Errorf("message %q does not name the action and caller", msg)
	}
	wantError(t, post(f.h, "rotor.ListUsers", `{}`), 400, "AccessDeniedException")
}

// TestIAMSignedRequests drives the operations end to end with SigV4: a key
// created through rotor.CreateAccessKey signs the next request, a policy
// attached through rotor.AttachUserPolicy allows it, and deactivating the
// key shuts it out at once.
func TestIAMSignedRequests(t *testing.T) {
	f := newIAMFixture(t, nil)
	const rootID, rootSecret = "AKIAROTORROOT0000001", "root/secret+value0123456789abcdefghijklm"
	if err := f.keys.Put(t.Context(), rootID, rootSecret, rootPrincipal.ARN, true); err != nil {
		t.Fatal(err)
	}
	root := func(op, body string) *httptest.ResponseRecorder {
		return post(f.h, "rotor."+op, body, signed(t, rootID, rootSecret, body))
	}
	expect(t, root("CreateUser", `{"UserName":"bob"}`), 200)
	k := jsonMember(t, expect(t, root("CreateAccessKey", `{"UserName":"bob"}`), 200), "AccessKey").(map[string]any)
	id, secret := k["AccessKeyId"].(string), k["SecretAccessKey"].(string)
	bob := func(op, body string) *httptest.ResponseRecorder {
		return post(f.h, "rotor."+op, body, signed(t, id, secret, body))
	}

	wantError(t, bob("GetUser", `{"UserName":"bob"}`), 400, "AccessDeniedException")

	doc, _ := json.Marshal(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rotor:GetUser","Resource":"arn:aws:iam::` + testAccount + `:user/${aws:username}"}]}`)
	expect(t, root("CreatePolicy", `{"PolicyName":"self","PolicyDocument":`+string(doc)+`}`), 200)
	expect(t, root("AttachUserPolicy", `{"UserName":"bob","PolicyArn":"self"}`), 200)
	if got := expect(t, bob("GetUser", `{"UserName":"bob"}`), 200); jsonMember(t, got, "User", "UserName") != "bob" {
		t.Errorf("GetUser = %v", got)
	}
	wantError(t, bob("GetUser", `{"UserName":"root"}`), 400, "AccessDeniedException")
	wantError(t, bob("CreateUser", `{"UserName":"eve"}`), 400, "AccessDeniedException")

	expect(t, root("UpdateAccessKey", `{"UserName":"bob","AccessKeyId":"`+id+`","Status":"Inactive"}`), 200)
	wantError(t, bob("GetUser", `{"UserName":"bob"}`), 400, "UnrecognizedClientException")
	expect(t, root("UpdateAccessKey", `{"UserName":"bob","AccessKeyId":"`+id+`","Status":"Active"}`), 200)
	expect(t, bob("GetUser", `{"UserName":"bob"}`), 200)
	expect(t, root("DeleteUser", `{"UserName":"bob"}`), 200)
	wantError(t, bob("GetUser", `{"UserName":"bob"}`), 400, "UnrecognizedClientException")
}

// signed signs a request with SigV4 for Secrets Manager in testRegion.
func signed(t *testing.T, id, secret, body string) func(*http.Request) {
	return func(r *http.Request) {
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(t.Context(), creds, r, hex.EncodeToString(sum[:]), "secretsmanager", testRegion, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzDecodeAdminRequest feeds arbitrary bytes to the decoders of the
// administrative operations. They must never panic, and every failure must
// be a client error.
func FuzzDecodeAdminRequest(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"UserName":"bob"}`, `{"MaxItems":1e999}`, `{"MaxItems":-1,"Marker":""}`,
		`{"UserName":"bob","AccessKeyId":"AKIA","Status":"Active"}`, `{"PolicyName":"p","PolicyDocument":"{}"}`,
		`{"StartTime":1714564800.5,"EndTime":1}`, `{"NextToken":"MTI","MaxResults":1000}`, `{"Outcome":"x"}`,
		`{"StartTime":-1}`, `{"Seq":0}`, `{"Seq":9223372036854775807}`, `{"NextToken":"OTIyMzM3MjAzNjg1NDc3NTgwOA"}`,
		`{"FunctionName":"f","Type":"exec","Command":"x","TimeoutSeconds":0}`, `{"TimeoutSeconds":1e30}`, `{"Args":[1]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, m := range []map[string]*operation{iamOperations, auditOperations, webhookOperations, functionOperations} {
			for target, op := range m {
				in, err := op.decode(body)
				if err == nil {
					if in == nil {
						t.Fatalf("%s: nil input without error", target)
					}
					continue
				}
				var re *requestError
				var se *secrets.Error
				var ie *iam.Error
				switch {
				case errors.As(err, &re):
				case errors.As(err, &ie) && ie.Kind == iam.KindInvalidInput:
				case errors.As(err, &se) && (se.Kind == secrets.KindValidation || se.Kind == secrets.KindInvalidParameter || se.Kind == secrets.KindInvalidNextToken):
				default:
					t.Fatalf("%s: unexpected error type %T: %v", target, err, err)
				}
				if we := wireErrorOf(err, "id"); we.Status != 400 {
					t.Fatalf("%s: decode error maps to %d %s", target, we.Status, we.Code)
				}
			}
		}
	})
}

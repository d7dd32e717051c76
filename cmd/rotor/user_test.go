package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rotor-secrets/rotor/internal/server"
)

// newRotorServer is newFakeServer for Rotor's own operations: it answers
// X-Amz-Target rotor.OP from handlers[OP].
func newRotorServer(t *testing.T, handlers map[string]fakeHandler) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "rotor.")
		if r.Method != http.MethodPost || r.URL.Path != "/" || !ok {
			t.Errorf("unexpected request %s %s target %q", r.Method, r.URL.Path, r.Header.Get("X-Amz-Target"))
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		call := fakeCall{op: op}
		if err := json.NewDecoder(r.Body).Decode(&call.body); err != nil {
			t.Errorf("%s: request body: %v", op, err)
		}
		_, cred, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
		cred, _, _ = strings.Cut(cred, ",")
		if parts := strings.Split(cred, "/"); len(parts) == 5 && parts[3] == "secretsmanager" {
			call.accessKey, call.region = parts[0], parts[2]
		} else {
			t.Errorf("%s: request not signed for secretsmanager: %q", op, r.Header.Get("Authorization"))
		}
		f.mu.Lock()
		f.got = append(f.got, call)
		f.mu.Unlock()

		status, body := http.StatusBadRequest, `{"__type":"UnknownOperationException","Message":"unrecognized operation in X-Amz-Target header"}`
		if h, ok := handlers[op]; ok {
			status, body = h(call.body)
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// bodies returns the request bodies the server received, in order.
func (f *fakeServer) bodies() []string {
	var out []string
	for _, c := range f.calls() {
		b, _ := json.Marshal(c.body)
		out = append(out, c.op+" "+string(b))
	}
	return out
}

func checkRun(t *testing.T, r cliResult, wantStdout string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if r.stdout != wantStdout {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, wantStdout)
	}
}

const bobReply = `{"User":{"UserName":"bob","UserId":"AIDAEXAMPLE0000000","Arn":"arn:aws:iam::000000000000:user/bob","CreateDate":1714564800}}`

func TestUserCommands(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		handlers  map[string]fakeHandler
		want      string
		wantCalls []string
	}{
		{
			name:      "create",
			args:      []string{"user", "create", "bob"},
			handlers:  map[string]fakeHandler{"CreateUser": reply(bobReply)},
			want:      "created user bob (arn:aws:iam::000000000000:user/bob)\n",
			wantCalls: []string{`CreateUser {"UserName":"bob"}`},
		},
		{
			name:     "get",
			args:     []string{"user", "get", "bob"},
			handlers: map[string]fakeHandler{"GetUser": reply(bobReply)},
			want: "UserName:   bob\nUserId:     AIDAEXAMPLE0000000\nArn:        arn:aws:iam::000000000000:user/bob\n" +
				"CreateDate: 2024-05-01T12:00:00Z\n",
			wantCalls: []string{`GetUser {"UserName":"bob"}`},
		},
		{
			name:     "get json",
			args:     []string{"user", "get", "bob", "-o", "json"},
			handlers: map[string]fakeHandler{"GetUser": reply(bobReply)},
			want: `{
  "User": {
    "UserName": "bob",
    "UserId": "AIDAEXAMPLE0000000",
    "Arn": "arn:aws:iam::000000000000:user/bob",
    "CreateDate": 1714564800
  }
}
`,
		},
		{
			name: "list follows markers",
			args: []string{"user", "list"},
			handlers: map[string]fakeHandler{"ListUsers": func(req map[string]any) (int, string) {
				if req["Marker"] == nil {
					return 200, `{"Users":[{"UserName":"alice","UserId":"AIDA1","Arn":"arn:aws:iam::000000000000:user/alice","CreateDate":1714478400}],"IsTruncated":true,"Marker":"alice"}`
				}
				return 200, `{"Users":[{"UserName":"bob","UserId":"AIDA2","Arn":"arn:aws:iam::000000000000:user/bob","CreateDate":1714564800.5}],"IsTruncated":false}`
			}},
			want: "NAME   USER ID  CREATED               ARN\n" +
				"alice  AIDA1    2024-04-30T12:00:00Z  arn:aws:iam::000000000000:user/alice\n" +
				"bob    AIDA2    2024-05-01T12:00:00Z  arn:aws:iam::000000000000:user/bob\n",
			wantCalls: []string{`ListUsers {}`, `ListUsers {"Marker":"alice"}`},
		},
		{
			name:     "list json",
			args:     []string{"user", "list", "-o", "json"},
			handlers: map[string]fakeHandler{"ListUsers": reply(`{"Users":[{"UserName":"alice","CreateDate":1714478400}],"IsTruncated":false}`)},
			want: `{
  "Users": [
    {
      "UserName": "alice",
      "CreateDate": 1714478400
    }
  ],
  "IsTruncated": false
}
`,
		},
		{
			name:     "list empty json",
			args:     []string{"user", "list", "--output", "json"},
			handlers: map[string]fakeHandler{"ListUsers": reply(`{"Users":[],"IsTruncated":false}`)},
			want:     "{\n  \"Users\": [],\n  \"IsTruncated\": false\n}\n",
		},
		{
			name:      "delete",
			args:      []string{"user", "delete", "bob"},
			handlers:  map[string]fakeHandler{"DeleteUser": reply(`{}`)},
			want:      "deleted user bob\n",
			wantCalls: []string{`DeleteUser {"UserName":"bob"}`},
		},
		{
			name: "key list",
			args: []string{"user", "key", "list", "bob"},
			handlers: map[string]fakeHandler{"ListAccessKeys": reply(`{"AccessKeyMetadata":[` +
				`{"UserName":"bob","AccessKeyId":"AKIAEXAMPLE00000001","Status":"Active","CreateDate":1714564800},` +
				`{"UserName":"bob","AccessKeyId":"AKIAEXAMPLE00000002","Status":"Inactive","CreateDate":1714651200}],"IsTruncated":false}`)},
			want: "ACCESS KEY ID        STATUS    CREATED\n" +
				"AKIAEXAMPLE00000001  Active    2024-05-01T12:00:00Z\n" +
				"AKIAEXAMPLE00000002  Inactive  2024-05-02T12:00:00Z\n",
			wantCalls: []string{`ListAccessKeys {"UserName":"bob"}`},
		},
		{
			name:      "key deactivate",
			args:      []string{"user", "key", "deactivate", "bob", "AKIAEXAMPLE00000001"},
			handlers:  map[string]fakeHandler{"UpdateAccessKey": reply(`{}`)},
			want:      "deactivated access key AKIAEXAMPLE00000001 of user bob\n",
			wantCalls: []string{`UpdateAccessKey {"AccessKeyId":"AKIAEXAMPLE00000001","Status":"Inactive","UserName":"bob"}`},
		},
		{
			name:      "key activate",
			args:      []string{"user", "key", "activate", "bob", "AKIAEXAMPLE00000001"},
			handlers:  map[string]fakeHandler{"UpdateAccessKey": reply(`{}`)},
			want:      "activated access key AKIAEXAMPLE00000001 of user bob\n",
			wantCalls: []string{`UpdateAccessKey {"AccessKeyId":"AKIAEXAMPLE00000001","Status":"Active","UserName":"bob"}`},
		},
		{
			name:      "key delete json",
			args:      []string{"user", "key", "delete", "bob", "AKIAEXAMPLE00000001", "-o", "json"},
			handlers:  map[string]fakeHandler{"DeleteAccessKey": reply(`{}`)},
			want:      "{}\n",
			wantCalls: []string{`DeleteAccessKey {"AccessKeyId":"AKIAEXAMPLE00000001","UserName":"bob"}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRotorServer(t, tt.handlers)
			checkRun(t, runSecretCLI(t, srv.vars(t), "", tt.args...), tt.want)
			if tt.wantCalls != nil && !reflect.DeepEqual(srv.bodies(), tt.wantCalls) {
				t.Errorf("requests = %q, want %q", srv.bodies(), tt.wantCalls)
			}
		})
	}
}

const newKeyReply = `{"AccessKey":{"UserName":"bob","AccessKeyId":"AKIAEXAMPLE00000001","SecretAccessKey":"s3cr3t/Key+value","Status":"Active","CreateDate":1714564800}}`

func TestUserKeyCreate(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"text", nil, "UserName:        bob\nAccessKeyId:     AKIAEXAMPLE00000001\nSecretAccessKey: s3cr3t/Key+value\nStatus:          Active\n"},
		{"json", []string{"-o", "json"}, `{
  "AccessKey": {
    "UserName": "bob",
    "AccessKeyId": "AKIAEXAMPLE00000001",
    "SecretAccessKey": "s3cr3t/Key+value",
    "Status": "Active",
    "CreateDate": 1714564800
  }
}
`},
		{"credentials profile", []string{"--credentials-profile", "deploy"},
			"[deploy]\naws_access_key_id = AKIAEXAMPLE00000001\naws_secret_access_key = s3cr3t/Key+value\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRotorServer(t, map[string]fakeHandler{"CreateAccessKey": reply(newKeyReply)})
			r := runSecretCLI(t, srv.vars(t), "", append([]string{"user", "key", "create", "bob"}, tt.args...)...)
			checkRun(t, r, tt.want)
			if !strings.HasPrefix(r.stderr, "rotor: warning: ") || !strings.Contains(r.stderr, "shown only now") || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr = %q, want one warning line", r.stderr)
			}
			if strings.Contains(r.stderr, "s3cr3t") {
				t.Errorf("the secret went to stderr: %q", r.stderr)
			}
		})
	}
}

// TestUserKeyCreateProfileReadsBack checks that the printed profile is a
// credentials file the CLI itself reads.
func TestUserKeyCreateProfileReadsBack(t *testing.T) {
	srv := newRotorServer(t, map[string]fakeHandler{"CreateAccessKey": reply(newKeyReply), "GetUser": reply(bobReply)})
	r := runSecretCLI(t, srv.vars(t), "", "user", "key", "create", "bob", "--credentials-profile", "deploy")
	checkRun(t, r, r.stdout)
	creds := writeFile(t, filepath.Join(t.TempDir(), "credentials"), r.stdout)
	vars := map[string]string{"HOME": t.TempDir(), "AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_ENDPOINT_URL_SECRETS_MANAGER": srv.url}
	checkRun(t, runSecretCLI(t, vars, "", "user", "get", "bob", "--profile", "deploy"), "UserName:   bob\nUserId:     AIDAEXAMPLE0000000\n"+
		"Arn:        arn:aws:iam::000000000000:user/bob\nCreateDate: 2024-05-01T12:00:00Z\n")
	if calls := srv.calls(); calls[len(calls)-1].accessKey != "AKIAEXAMPLE00000001" {
		t.Errorf("signed with %q", calls[len(calls)-1].accessKey)
	}
}

func TestAdminErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		handlers   map[string]fakeHandler
		wantCode   int
		wantStderr string
	}{
		{
			name:     "no such user",
			args:     []string{"user", "get", "nobody"},
			handlers: map[string]fakeHandler{"GetUser": fail(404, `{"__type":"NoSuchEntityException","Message":"The user with name nobody cannot be found."}`)},
			wantCode: 1, wantStderr: "rotor: error: NoSuchEntityException: The user with name nobody cannot be found.\n",
		},
		{
			name:     "access denied",
			args:     []string{"user", "create", "eve"},
			handlers: map[string]fakeHandler{"CreateUser": fail(400, `{"__type":"AccessDeniedException","Message":"User: arn:aws:iam::000000000000:user/bob is not authorized to perform: rotor:CreateUser"}`)},
			wantCode: 1,
			wantStderr: "rotor: error: AccessDeniedException: User: arn:aws:iam::000000000000:user/bob is not authorized to perform: rotor:CreateUser\n" +
				"rotor: hint: the caller needs an identity policy allowing rotor:CreateUser; use the root credentials, or ask an administrator to attach one\n",
		},
		{
			name:     "not served",
			args:     []string{"policy", "list"},
			wantCode: 1,
			wantStderr: "rotor: error: UnknownOperationException: unrecognized operation in X-Amz-Target header\n" +
				"rotor: hint: this server does not serve rotor.ListPolicies: it is not Rotor, an older version, or runs without access control\n",
		},
		{
			name:     "events not served",
			args:     []string{"events", "parked"},
			wantCode: 1,
			wantStderr: "rotor: error: UnknownOperationException: unrecognized operation in X-Amz-Target header\n" +
				"rotor: hint: this server does not serve rotor.ListParkedEvents: it is not Rotor, an older version, or runs without webhooks\n",
		},
		{
			name:       "limit exceeded",
			args:       []string{"user", "key", "create", "bob"},
			handlers:   map[string]fakeHandler{"CreateAccessKey": fail(409, `{"__type":"LimitExceededException","Message":"Cannot exceed quota for AccessKeysPerUser: 2"}`)},
			wantCode:   1,
			wantStderr: "rotor: error: LimitExceededException: Cannot exceed quota for AccessKeysPerUser: 2\n",
		},
		{"missing argument", []string{"user", "get"}, nil, 2,
			"rotor: error: rotor user get wants NAME (got 0 arguments)\nrotor: hint: see `rotor user get --help`\n"},
		{"extra argument", []string{"user", "key", "delete", "bob", "K", "x"}, nil, 2,
			"rotor: error: rotor user key delete wants USER KEYID (got 3 arguments)\nrotor: hint: see `rotor user key delete --help`\n"},
		{"bad output", []string{"user", "list", "-o", "yaml"}, nil, 2,
			"rotor: error: --output: want text or json, got \"yaml\"\nrotor: hint: see `rotor user list --help`\n"},
		{"unknown flag", []string{"user", "list", "--bogus"}, nil, 2,
			"rotor: error: unknown flag: --bogus\nrotor: hint: see `rotor user list --help`\n"},
		{"unknown subcommand", []string{"user", "frobnicate"}, nil, 2,
			"rotor: error: unknown command \"frobnicate\" for \"rotor user\"\nrotor: hint: see `rotor user --help`\n"},
		{"bad profile name", []string{"user", "key", "create", "bob", "--credentials-profile", "a b"}, nil, 2,
			"rotor: error: --credentials-profile: \"a b\": a profile name cannot hold brackets, spaces, # or ;\nrotor: hint: see `rotor user key create --help`\n"},
		{"profile and json", []string{"user", "key", "create", "bob", "--credentials-profile", "p", "-o", "json"}, nil, 2,
			"rotor: error: give either --credentials-profile or -o json\nrotor: hint: see `rotor user key create --help`\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRotorServer(t, tt.handlers)
			r := runSecretCLI(t, srv.vars(t), "", tt.args...)
			if r.code != tt.wantCode || r.stderr != tt.wantStderr || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit %d, stderr:\n%s", r.code, r.stdout, r.stderr, tt.wantCode, tt.wantStderr)
			}
			if tt.wantCode == 2 && len(srv.calls()) != 0 {
				t.Errorf("a usage error sent requests: %v", srv.bodies())
			}
		})
	}
}

func TestAdminHelp(t *testing.T) {
	for _, args := range [][]string{
		{"user"}, {"user", "key"}, {"policy"}, {"audit"}, {"events"},
		{"user", "key", "create", "--help"}, {"audit", "search", "--help"},
	} {
		r := runSecretCLI(t, map[string]string{"HOME": t.TempDir()}, "", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("rotor %s: exit %d, stdout:\n%s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	r := runSecretCLI(t, map[string]string{"HOME": t.TempDir()}, "", "audit")
	if !strings.Contains(r.stdout, "search") || !strings.Contains(r.stdout, "verify") {
		t.Errorf("rotor audit lists:\n%s", r.stdout)
	}
}

// TestAdminEndToEnd drives the commands against a real server: the root
// creates a user, a key, a policy and an attachment; the user's key then
// works exactly as far as the policy allows, and the audit log shows it.
func TestAdminEndToEnd(t *testing.T) {
	isolateProcessEnv(t)
	dataDir := t.TempDir()
	srv, err := server.Open(t.Context(), server.Config{
		Listen: "127.0.0.1:0", DataDir: dataDir, Region: server.DefaultRegion, AccountID: server.DefaultAccountID,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	root := map[string]string{"HOME": t.TempDir(), "ROTOR_DATA_DIR": dataDir, "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://" + srv.Addr().String()}
	run := func(vars map[string]string, stdin string, args ...string) cliResult {
		t.Helper()
		r := runSecretCLI(t, vars, stdin, args...)
		if r.code != 0 {
			t.Fatalf("rotor %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
		}
		return r
	}

	run(root, "", "user", "create", "bob")
	if r := run(root, "", "user", "list"); !strings.Contains(r.stdout, "bob") {
		t.Errorf("user list:\n%s", r.stdout)
	}
	profile := run(root, "", "user", "key", "create", "bob", "--credentials-profile", "bob").stdout
	creds := writeFile(t, filepath.Join(t.TempDir(), "credentials"), profile)
	bob := map[string]string{"HOME": t.TempDir(), "AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_PROFILE": "bob",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": root["AWS_ENDPOINT_URL_SECRETS_MANAGER"]}

	r := runSecretCLI(t, bob, "", "user", "get", "bob")
	if r.code != 1 || !strings.Contains(r.stderr, "AccessDeniedException") || !strings.Contains(r.stderr, "rotor: hint: ") {
		t.Fatalf("before the policy: exit %d, stderr %q", r.code, r.stderr)
	}

	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["rotor:GetUser","rotor:ListAccessKeys"],"Resource":"arn:aws:iam::*:user/${aws:username}"}]}`
	run(root, doc, "policy", "create", "self-service", "--document", "-", "--description", "read yourself")
	if r := run(root, "", "policy", "get", "self-service"); r.stdout != doc {
		t.Errorf("policy get = %q, want the document", r.stdout)
	}
	run(root, "", "policy", "attach", "self-service", "--user", "bob")
	if r := run(root, "", "policy", "list-attached", "--user", "bob"); !strings.Contains(r.stdout, "arn:aws:iam::000000000000:policy/self-service") {
		t.Errorf("list-attached:\n%s", r.stdout)
	}
	if r := run(bob, "", "user", "get", "bob"); !strings.Contains(r.stdout, "arn:aws:iam::000000000000:user/bob") {
		t.Errorf("bob's user get:\n%s", r.stdout)
	}
	keys := run(bob, "", "user", "key", "list", "bob").stdout
	if strings.Contains(keys, strings.Split(profile, "aws_secret_access_key = ")[1]) {
		t.Errorf("key list shows the secret:\n%s", keys)
	}
	if r := runSecretCLI(t, bob, "", "user", "create", "eve"); r.code != 1 || !strings.Contains(r.stderr, "AccessDeniedException") {
		t.Errorf("bob's user create: exit %d, stderr %q", r.code, r.stderr)
	}

	r = run(root, "", "audit", "search", "--principal", "arn:aws:iam::000000000000:user/bob", "--outcome", "denied", "-o", "json")
	var found struct {
		Events []struct{ EventName, Outcome string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &found); err != nil {
		t.Fatalf("audit search -o json: %v\n%s", err, r.stdout)
	}
	var names []string
	for _, ev := range found.Events {
		names = append(names, ev.EventName+"/"+ev.Outcome)
	}
	if strings.Join(names, ",") != "GetUser/denied,CreateUser/denied" {
		t.Errorf("bob's denied requests = %v", names)
	}
	if r := run(root, "", "audit", "search", "--event", "CreateAccessKey", "--since", "1h"); !strings.Contains(r.stdout, "CreateAccessKey") {
		t.Errorf("audit search:\n%s", r.stdout)
	}

	run(root, "", "user", "delete", "bob")
	if r := runSecretCLI(t, bob, "", "user", "get", "bob"); r.code != 1 || !strings.Contains(r.stderr, "UnrecognizedClientException") {
		t.Errorf("after delete: exit %d, stderr %q", r.code, r.stderr)
	}
}

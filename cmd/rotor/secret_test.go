package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

type cliResult struct {
	code           int
	stdout, stderr string
}

// runSecretCLI runs one rotor command line in-process, as run does, with the
// environment vars instead of the process's.
func runSecretCLI(t *testing.T, vars map[string]string, stdin string, args ...string) cliResult {
	t.Helper()
	isolateProcessEnv(t)
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &stdout, stderr: &stderr, getenv: getenvFrom(vars)}
	code := runEnv(t.Context(), e, args)
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// fakeCall is one request the fake server received.
type fakeCall struct {
	op        string
	body      map[string]any
	accessKey string
	region    string
}

// fakeHandler answers one operation: an HTTP status and a JSON body.
type fakeHandler func(req map[string]any) (int, string)

// fakeServer speaks just enough of the Secrets Manager JSON protocol for the
// CLI: it checks the envelope, records the request and answers from handlers.
type fakeServer struct {
	url string
	mu  sync.Mutex
	got []fakeCall
}

func newFakeServer(t *testing.T, handlers map[string]fakeHandler) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "secretsmanager.")
		if r.Method != http.MethodPost || r.URL.Path != "/" || !ok || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
			t.Errorf("unexpected request %s %s target %q content type %q", r.Method, r.URL.Path,
				r.Header.Get("X-Amz-Target"), r.Header.Get("Content-Type"))
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		call := fakeCall{op: op}
		if err := json.NewDecoder(r.Body).Decode(&call.body); err != nil {
			t.Errorf("%s: request body: %v", op, err)
		}
		// Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/secretsmanager/aws4_request, ...
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

		status, body := http.StatusBadRequest, `{"__type":"UnknownOperationException","Message":"unexpected operation"}`
		if h, ok := handlers[op]; ok {
			status, body = h(call.body)
		} else {
			t.Errorf("unexpected operation %s", op)
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-RequestId", "11111111-2222-3333-4444-555555555555")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fakeServer) calls() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.got...)
}

// vars is an environment that points the CLI at the fake server with keys in
// the environment and nothing else configured.
func (f *fakeServer) vars(t *testing.T) map[string]string {
	return map[string]string{
		"HOME":                             t.TempDir(),
		"ROTOR_DATA_DIR":                   t.TempDir(),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": f.url,
		"AWS_ACCESS_KEY_ID":                "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY":            "secret",
	}
}

func reply(body string) fakeHandler {
	return func(map[string]any) (int, string) { return http.StatusOK, body }
}

func fail(status int, body string) fakeHandler {
	return func(map[string]any) (int, string) { return status, body }
}

const (
	testARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/app/db-AbCdEf"

	getReply = `{"ARN":"` + testARN + `","Name":"prod/app/db","VersionId":"v1",` +
		`"SecretString":"{\"password\":\"p<&>\"}","VersionStages":["AWSCURRENT"],"CreatedDate":1714564800.5}`

	describeReply = `{"ARN":"` + testARN + `","Name":"prod/app/db","Description":"app database",
		"RotationEnabled":true,"RotationLambdaARN":"arn:aws:lambda:us-east-1:000000000000:function:rotor-postgres-alternating-users",
		"RotationRules":{"ScheduleExpression":"rate(30 days)","Duration":"2h"},
		"LastRotatedDate":1714564800,"LastChangedDate":1714564800,"CreatedDate":1714478400,
		"Tags":[{"Key":"team","Value":"db"},{"Key":"env","Value":"prod"}],
		"VersionIdsToStages":{"v2":["AWSCURRENT"],"v1":["AWSPREVIOUS"],"v3":["AWSPENDING"]}}`
)

// TestSecretJSONOutput compares the default output with the API response.
func TestSecretJSONOutput(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		handlers map[string]fakeHandler
		want     string
	}{
		{
			name:     "get",
			args:     []string{"secret", "get", "prod/app/db"},
			handlers: map[string]fakeHandler{"GetSecretValue": reply(getReply)},
			want: `{
  "ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/app/db-AbCdEf",
  "CreatedDate": "2024-05-01T12:00:00.5Z",
  "Name": "prod/app/db",
  "SecretString": "{\"password\":\"p<&>\"}",
  "VersionId": "v1",
  "VersionStages": [
    "AWSCURRENT"
  ]
}
`,
		},
		{
			name:     "get binary",
			args:     []string{"secret", "get", "blob"},
			handlers: map[string]fakeHandler{"GetSecretValue": reply(`{"Name":"blob","SecretBinary":"AAH/","VersionStages":[]}`)},
			want: `{
  "Name": "blob",
  "SecretBinary": "AAH/",
  "VersionStages": []
}
`,
		},
		{
			name:     "describe",
			args:     []string{"secret", "describe", "prod/app/db"},
			handlers: map[string]fakeHandler{"DescribeSecret": reply(describeReply)},
			want: `{
  "ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/app/db-AbCdEf",
  "CreatedDate": "2024-04-30T12:00:00Z",
  "Description": "app database",
  "LastChangedDate": "2024-05-01T12:00:00Z",
  "LastRotatedDate": "2024-05-01T12:00:00Z",
  "Name": "prod/app/db",
  "RotationEnabled": true,
  "RotationLambdaARN": "arn:aws:lambda:us-east-1:000000000000:function:rotor-postgres-alternating-users",
  "RotationRules": {
    "Duration": "2h",
    "ScheduleExpression": "rate(30 days)"
  },
  "Tags": [
    {
      "Key": "team",
      "Value": "db"
    },
    {
      "Key": "env",
      "Value": "prod"
    }
  ],
  "VersionIdsToStages": {
    "v1": [
      "AWSPREVIOUS"
    ],
    "v2": [
      "AWSCURRENT"
    ],
    "v3": [
      "AWSPENDING"
    ]
  }
}
`,
		},
		{
			name:     "tag",
			args:     []string{"secret", "tag", "prod/app/db", "env=prod"},
			handlers: map[string]fakeHandler{"TagResource": reply(`{}`)},
			want:     "{}\n",
		},
		{
			name:     "random-password",
			args:     []string{"secret", "random-password"},
			handlers: map[string]fakeHandler{"GetRandomPassword": reply(`{"RandomPassword":"x&y<z"}`)},
			want: `{
  "RandomPassword": "x&y<z"
}
`,
		},
		{
			name: "delete",
			args: []string{"secret", "delete", "prod/app/db"},
			handlers: map[string]fakeHandler{"DeleteSecret": reply(`{"ARN":"` + testARN +
				`","Name":"prod/app/db","DeletionDate":1717156800}`)},
			want: `{
  "ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/app/db-AbCdEf",
  "DeletionDate": "2024-05-31T12:00:00Z",
  "Name": "prod/app/db"
}
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t, tt.handlers)
			r := runSecretCLI(t, srv.vars(t), "", tt.args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
			}
			if r.stdout != tt.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, tt.want)
			}
		})
	}
}

func TestSecretTextOutput(t *testing.T) {
	listPage := `{"SecretList":[
		{"Name":"prod/app/db","Description":"app database","LastChangedDate":1714564800,"CreatedDate":1714478400},
		{"Name":"prod/cache","CreatedDate":1714478400},
		{"Name":"old\tone","Description":"line1\nline2","LastChangedDate":1714564800,"DeletedDate":1714651200}]}`
	tests := []struct {
		name     string
		args     []string
		handlers map[string]fakeHandler
		want     string
	}{
		{
			name:     "get prints only the value",
			args:     []string{"secret", "get", "prod/app/db", "-o", "text"},
			handlers: map[string]fakeHandler{"GetSecretValue": reply(getReply)},
			want:     `{"password":"p<&>"}`,
		},
		{
			name:     "get prints binary raw",
			args:     []string{"secret", "-o", "text", "get", "blob"},
			handlers: map[string]fakeHandler{"GetSecretValue": reply(`{"Name":"blob","SecretBinary":"AAH/"}`)},
			want:     "\x00\x01\xff",
		},
		{
			name:     "list",
			args:     []string{"secret", "list", "-o", "text", "--include-planned-deletion"},
			handlers: map[string]fakeHandler{"ListSecrets": reply(listPage)},
			want: "NAME         LAST CHANGED          DESCRIPTION\n" +
				"prod/app/db  2024-05-01T12:00:00Z  app database\n" +
				"prod/cache   2024-04-30T12:00:00Z  \n" +
				"old one      2024-05-01T12:00:00Z  (deleted 2024-05-02T12:00:00Z) line1 line2\n",
		},
		{
			name:     "describe",
			args:     []string{"secret", "describe", "prod/app/db", "-o", "text"},
			handlers: map[string]fakeHandler{"DescribeSecret": reply(describeReply)},
			want: "Name:              prod/app/db\n" +
				"ARN:               " + testARN + "\n" +
				"Description:       app database\n" +
				"RotationEnabled:   true\n" +
				"RotationLambdaARN: arn:aws:lambda:us-east-1:000000000000:function:rotor-postgres-alternating-users\n" +
				"RotationRules:     rate(30 days), window 2h\n" +
				"LastRotatedDate:   2024-05-01T12:00:00Z\n" +
				"LastChangedDate:   2024-05-01T12:00:00Z\n" +
				"CreatedDate:       2024-04-30T12:00:00Z\n" +
				"Tags:              env=prod, team=db\n" +
				"Version:           v2 AWSCURRENT\n" +
				"Version:           v3 AWSPENDING\n" +
				"Version:           v1 AWSPREVIOUS\n",
		},
		{
			name: "versions",
			args: []string{"secret", "versions", "prod/app/db", "-o", "text", "--include-deprecated"},
			handlers: map[string]fakeHandler{"ListSecretVersionIds": reply(`{"Name":"prod/app/db","Versions":[
				{"VersionId":"v2","VersionStages":["AWSCURRENT"],"CreatedDate":1714564800,"LastAccessedDate":1714608000},
				{"VersionId":"v1","VersionStages":["AWSPREVIOUS","old"],"CreatedDate":1714478400},
				{"VersionId":"v0","CreatedDate":1714392000}]}`)},
			want: "VERSION ID  STAGES           CREATED               LAST ACCESSED\n" +
				"v2          AWSCURRENT       2024-05-01T12:00:00Z  2024-05-02T00:00:00Z\n" +
				"v1          AWSPREVIOUS,old  2024-04-30T12:00:00Z  -\n" +
				"v0          -                2024-04-29T12:00:00Z  -\n",
		},
		{
			name:     "random-password",
			args:     []string{"secret", "random-password", "-o", "text"},
			handlers: map[string]fakeHandler{"GetRandomPassword": reply(`{"RandomPassword":"abc123"}`)},
			want:     "abc123",
		},
		{
			name:     "create",
			args:     []string{"secret", "create", "prod/app/db", "--value", "x", "-o", "text"},
			handlers: map[string]fakeHandler{"CreateSecret": reply(`{"ARN":"` + testARN + `","Name":"prod/app/db","VersionId":"v1"}`)},
			want:     "created prod/app/db (version v1)\n",
		},
		{
			name:     "create without value",
			args:     []string{"secret", "create", "prod/app/db", "-o", "text"},
			handlers: map[string]fakeHandler{"CreateSecret": reply(`{"ARN":"` + testARN + `","Name":"prod/app/db"}`)},
			want:     "created prod/app/db\n",
		},
		{
			name:     "put",
			args:     []string{"secret", "put", "prod/app/db", "--value", "x", "-o", "text"},
			handlers: map[string]fakeHandler{"PutSecretValue": reply(`{"ARN":"` + testARN + `","Name":"prod/app/db","VersionId":"v2","VersionStages":["AWSCURRENT"]}`)},
			want:     "stored version v2 of prod/app/db (AWSCURRENT)\n",
		},
		{
			name:     "update",
			args:     []string{"secret", "update", "prod/app/db", "--description", "d", "-o", "text"},
			handlers: map[string]fakeHandler{"UpdateSecret": reply(`{"ARN":"` + testARN + `","Name":"prod/app/db"}`)},
			want:     "updated prod/app/db\n",
		},
		{
			name:     "update with value",
			args:     []string{"secret", "update", "prod/app/db", "--value", "v", "-o", "text"},
			handlers: map[string]fakeHandler{"UpdateSecret": reply(`{"ARN":"` + testARN + `","Name":"prod/app/db","VersionId":"v3"}`)},
			want:     "updated prod/app/db (new version v3)\n",
		},
		{
			name:     "delete",
			args:     []string{"secret", "delete", "prod/app/db", "-o", "text"},
			handlers: map[string]fakeHandler{"DeleteSecret": reply(`{"ARN":"` + testARN + `","Name":"prod/app/db","DeletionDate":1717156800}`)},
			want:     "prod/app/db will be deleted at 2024-05-31T12:00:00Z; `rotor secret restore prod/app/db` cancels that\n",
		},
		{
			name:     "delete --force",
			args:     []string{"secret", "delete", "prod/app/db", "--force", "-o", "text"},
			handlers: map[string]fakeHandler{"DeleteSecret": reply(`{"ARN":"` + testARN + `","Name":"prod/app/db","DeletionDate":1714564800}`)},
			want:     "deleted prod/app/db\n",
		},
		{
			name:     "restore",
			args:     []string{"secret", "restore", "prod/app/db", "-o", "text"},
			handlers: map[string]fakeHandler{"RestoreSecret": reply(`{"ARN":"` + testARN + `","Name":"prod/app/db"}`)},
			want:     "restored prod/app/db\n",
		},
		{
			name:     "tag",
			args:     []string{"secret", "tag", "prod/app/db", "a=b", "-o", "text"},
			handlers: map[string]fakeHandler{"TagResource": reply(`{}`)},
			want:     "tagged prod/app/db\n",
		},
		{
			name:     "untag",
			args:     []string{"secret", "untag", "prod/app/db", "a", "-o", "text"},
			handlers: map[string]fakeHandler{"UntagResource": reply(`{}`)},
			want:     "untagged prod/app/db\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t, tt.handlers)
			r := runSecretCLI(t, srv.vars(t), "", tt.args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
			}
			if r.stdout != tt.want {
				t.Errorf("stdout:\n%q\nwant:\n%q", r.stdout, tt.want)
			}
		})
	}
}

// TestSecretRequests checks what the flags put on the wire.
func TestSecretRequests(t *testing.T) {
	valueFile := writeFile(t, filepath.Join(t.TempDir(), "v"), "from a file\n")
	binFile := writeFile(t, filepath.Join(t.TempDir(), "b"), "\x00\x01\xff")
	ok := map[string]fakeHandler{}
	for _, op := range []string{"CreateSecret", "GetSecretValue", "PutSecretValue", "UpdateSecret", "DescribeSecret",
		"ListSecrets", "ListSecretVersionIds", "DeleteSecret", "RestoreSecret", "TagResource", "UntagResource", "GetRandomPassword"} {
		ok[op] = reply(`{}`)
	}
	tests := []struct {
		name  string
		args  []string
		stdin string
		op    string
		want  map[string]any
	}{
		{
			name: "create with everything",
			args: []string{"secret", "create", "prod/app/db", "--value", "s3cret", "--description", "app database",
				"--kms-key-id", "alias/k", "--tag", "env=prod", "--tag", "team=db", "--client-request-token", "tok-00000000000000000000000000000001"},
			op: "CreateSecret",
			want: map[string]any{"Name": "prod/app/db", "SecretString": "s3cret", "Description": "app database", "KmsKeyId": "alias/k",
				"ClientRequestToken": "tok-00000000000000000000000000000001",
				"Tags":               []any{map[string]any{"Key": "env", "Value": "prod"}, map[string]any{"Key": "team", "Value": "db"}}},
		},
		{
			name: "create binary from a file",
			args: []string{"secret", "create", "blob", "--binary-file", binFile, "--client-request-token", "tok-00000000000000000000000000000002"},
			op:   "CreateSecret",
			want: map[string]any{"Name": "blob", "SecretBinary": "AAH/", "ClientRequestToken": "tok-00000000000000000000000000000002"},
		},
		{
			name: "get by stage",
			args: []string{"secret", "get", "prod/app/db", "--version-stage", "AWSPREVIOUS"},
			op:   "GetSecretValue",
			want: map[string]any{"SecretId": "prod/app/db", "VersionStage": "AWSPREVIOUS"},
		},
		{
			name: "get by id",
			args: []string{"secret", "get", testARN, "--version-id", "v1"},
			op:   "GetSecretValue",
			want: map[string]any{"SecretId": testARN, "VersionId": "v1"},
		},
		{
			name: "put from a file, staged",
			args: []string{"secret", "put", "prod/app/db", "--value-file", valueFile, "--version-stage", "AWSPENDING",
				"--version-stage", "next", "--client-request-token", "tok-00000000000000000000000000000003"},
			op: "PutSecretValue",
			want: map[string]any{"SecretId": "prod/app/db", "SecretString": "from a file\n", "VersionStages": []any{"AWSPENDING", "next"},
				"ClientRequestToken": "tok-00000000000000000000000000000003"},
		},
		{
			name:  "put from stdin",
			args:  []string{"secret", "put", "prod/app/db", "--value-file", "-", "--client-request-token", "tok-00000000000000000000000000000004"},
			stdin: `{"password":"p"}`,
			op:    "PutSecretValue",
			want:  map[string]any{"SecretId": "prod/app/db", "SecretString": `{"password":"p"}`, "ClientRequestToken": "tok-00000000000000000000000000000004"},
		},
		{
			name:  "put binary from stdin",
			args:  []string{"secret", "put", "blob", "--binary-file", "-", "--client-request-token", "tok-00000000000000000000000000000005"},
			stdin: "\xff\x00",
			op:    "PutSecretValue",
			want:  map[string]any{"SecretId": "blob", "SecretBinary": "/wA=", "ClientRequestToken": "tok-00000000000000000000000000000005"},
		},
		{
			name: "update description only",
			args: []string{"secret", "update", "prod/app/db", "--description", "", "--client-request-token", "tok-00000000000000000000000000000006"},
			op:   "UpdateSecret",
			want: map[string]any{"SecretId": "prod/app/db", "Description": "", "ClientRequestToken": "tok-00000000000000000000000000000006"},
		},
		{
			name: "list with filters",
			args: []string{"secret", "list", "--filter", "name=prod/", "--filter", "tag-key=env", "--filter", "name=!prod/old",
				"--include-planned-deletion", "--sort-by", "last-changed-date", "--sort-order", "desc", "--max-results", "10"},
			op: "ListSecrets",
			want: map[string]any{
				"Filters": []any{
					map[string]any{"Key": "name", "Values": []any{"prod/", "!prod/old"}},
					map[string]any{"Key": "tag-key", "Values": []any{"env"}},
				},
				"IncludePlannedDeletion": true, "SortBy": "last-changed-date", "SortOrder": "desc", "MaxResults": float64(10),
			},
		},
		{
			name: "list plain",
			args: []string{"secret", "list"},
			op:   "ListSecrets",
			want: map[string]any{},
		},
		{
			name: "list from a token",
			args: []string{"secret", "list", "--next-token", "page2"},
			op:   "ListSecrets",
			want: map[string]any{"NextToken": "page2"},
		},
		{
			name: "versions",
			args: []string{"secret", "versions", "prod/app/db", "--include-deprecated", "--max-results", "5"},
			op:   "ListSecretVersionIds",
			want: map[string]any{"SecretId": "prod/app/db", "IncludeDeprecated": true, "MaxResults": float64(5)},
		},
		{
			name: "delete with a window",
			args: []string{"secret", "delete", "prod/app/db", "--recovery-window-days", "7"},
			op:   "DeleteSecret",
			want: map[string]any{"SecretId": "prod/app/db", "RecoveryWindowInDays": float64(7)},
		},
		{
			name: "delete at once",
			args: []string{"secret", "delete", "prod/app/db", "--force"},
			op:   "DeleteSecret",
			want: map[string]any{"SecretId": "prod/app/db", "ForceDeleteWithoutRecovery": true},
		},
		{
			name: "restore",
			args: []string{"secret", "restore", "prod/app/db"},
			op:   "RestoreSecret",
			want: map[string]any{"SecretId": "prod/app/db"},
		},
		{
			name: "tag",
			args: []string{"secret", "tag", "prod/app/db", "env=prod", "url=a=b"},
			op:   "TagResource",
			want: map[string]any{"SecretId": "prod/app/db", "Tags": []any{
				map[string]any{"Key": "env", "Value": "prod"}, map[string]any{"Key": "url", "Value": "a=b"}}},
		},
		{
			name: "untag",
			args: []string{"secret", "untag", "prod/app/db", "env", "team"},
			op:   "UntagResource",
			want: map[string]any{"SecretId": "prod/app/db", "TagKeys": []any{"env", "team"}},
		},
		{
			name: "random-password defaults",
			args: []string{"secret", "random-password"},
			op:   "GetRandomPassword",
			want: map[string]any{},
		},
		{
			name: "random-password options",
			args: []string{"secret", "random-password", "--length", "20", "--exclude-characters", `"'\`, "--exclude-numbers",
				"--exclude-punctuation", "--exclude-uppercase", "--exclude-lowercase=false", "--include-space", "--require-each-included-type=false"},
			op: "GetRandomPassword",
			want: map[string]any{"PasswordLength": float64(20), "ExcludeCharacters": `"'\`, "ExcludeNumbers": true,
				"ExcludePunctuation": true, "ExcludeUppercase": true, "ExcludeLowercase": false, "IncludeSpace": true,
				"RequireEachIncludedType": false},
		},
		{
			name: "describe",
			args: []string{"secret", "describe", "prod/app/db"},
			op:   "DescribeSecret",
			want: map[string]any{"SecretId": "prod/app/db"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t, ok)
			r := runSecretCLI(t, srv.vars(t), tt.stdin, tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
			}
			calls := srv.calls()
			if len(calls) != 1 || calls[0].op != tt.op {
				t.Fatalf("calls = %+v, want one %s", calls, tt.op)
			}
			if !reflect.DeepEqual(calls[0].body, tt.want) {
				t.Errorf("request body:\n%v\nwant:\n%v", calls[0].body, tt.want)
			}
			if calls[0].accessKey != "AKIDTEST" || calls[0].region != "us-east-1" {
				t.Errorf("signed by %q for %q, want AKIDTEST for us-east-1", calls[0].accessKey, calls[0].region)
			}
		})
	}
}

// TestSecretIdempotencyToken checks that the SDK fills in ClientRequestToken
// when the user gives none, so that retries cannot create two versions.
func TestSecretIdempotencyToken(t *testing.T) {
	srv := newFakeServer(t, map[string]fakeHandler{"PutSecretValue": reply(`{}`)})
	if r := runSecretCLI(t, srv.vars(t), "", "secret", "put", "a", "--value", "x"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	tok, _ := srv.calls()[0].body["ClientRequestToken"].(string)
	if len(tok) < 32 {
		t.Errorf("ClientRequestToken = %q, want a generated token", tok)
	}
}

func TestSecretListAll(t *testing.T) {
	pages := map[string]string{
		"":   `{"SecretList":[{"Name":"a"},{"Name":"b"}],"NextToken":"t1"}`,
		"t1": `{"SecretList":[{"Name":"c"}],"NextToken":"t2"}`,
		"t2": `{"SecretList":[{"Name":"d"}]}`,
	}
	srv := newFakeServer(t, map[string]fakeHandler{"ListSecrets": func(req map[string]any) (int, string) {
		tok, _ := req["NextToken"].(string)
		return http.StatusOK, pages[tok]
	}})

	r := runSecretCLI(t, srv.vars(t), "", "secret", "list", "--all", "--max-results", "2")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var got struct {
		SecretList []struct{ Name string }
		NextToken  *string
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got.SecretList {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "a,b,c,d" || got.NextToken != nil {
		t.Errorf("names = %v, NextToken = %v; want a,b,c,d and none", names, got.NextToken)
	}
	var tokens []any
	for _, c := range srv.calls() {
		tokens = append(tokens, c.body["NextToken"])
		if c.body["MaxResults"] != float64(2) {
			t.Errorf("MaxResults = %v, want 2 on every page", c.body["MaxResults"])
		}
	}
	if want := []any{nil, "t1", "t2"}; !reflect.DeepEqual(tokens, want) {
		t.Errorf("tokens sent = %v, want %v", tokens, want)
	}

	// Without --all: one page, and in text a note on stderr about the rest.
	r = runSecretCLI(t, srv.vars(t), "", "secret", "list", "-o", "text")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 3 {
		t.Errorf("exit %d, stdout:\n%s", r.code, r.stdout)
	}
	if want := "rotor: more results: use --all, or --next-token t1\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
}

func TestSecretVersionsAllStopsOnRepeatedToken(t *testing.T) {
	srv := newFakeServer(t, map[string]fakeHandler{
		"ListSecretVersionIds": reply(`{"Versions":[{"VersionId":"v1"}],"NextToken":"same"}`),
	})
	r := runSecretCLI(t, srv.vars(t), "", "secret", "versions", "a", "--all")
	if r.code != 1 || r.stderr != "rotor: error: the server returned NextToken \"same\" twice\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if n := len(srv.calls()); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}

func TestSecretErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		handler    fakeHandler
		wantStderr string
	}{
		{
			name:       "not found",
			args:       []string{"secret", "get", "nope"},
			handler:    fail(400, `{"__type":"ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret."}`),
			wantStderr: "rotor: error: ResourceNotFoundException: Secrets Manager can't find the specified secret.\n",
		},
		{
			name:       "namespaced code, lowercase message",
			args:       []string{"secret", "get", "nope"},
			handler:    fail(400, `{"__type":"com.amazonaws.secretsmanager#InvalidRequestException","message":"You can't perform this operation on the secret because it was marked for deletion."}`),
			wantStderr: "rotor: error: InvalidRequestException: You can't perform this operation on the secret because it was marked for deletion.\n",
		},
		{
			name:    "exists",
			args:    []string{"secret", "create", "prod/app/db"},
			handler: fail(400, `{"__type":"ResourceExistsException","Message":"The operation failed because the secret prod/app/db already exists."}`),
			wantStderr: "rotor: error: ResourceExistsException: The operation failed because the secret prod/app/db already exists.\n" +
				"rotor: hint: to store a new value in an existing secret, use `rotor secret put`\n",
		},
		{
			name:    "bad key",
			args:    []string{"secret", "get", "a"},
			handler: fail(400, `{"__type":"UnrecognizedClientException","Message":"The security token included in the request is invalid."}`),
			wantStderr: "rotor: error: UnrecognizedClientException: The security token included in the request is invalid.\n" +
				"rotor: hint: the request was signed with credentials from the environment (AWS_ACCESS_KEY_ID); check them, or choose others with --profile or AWS_PROFILE\n",
		},
		{
			name:       "message with a newline",
			args:       []string{"secret", "get", "a"},
			handler:    fail(400, `{"__type":"ValidationException","Message":"first\nsecond"}`),
			wantStderr: "rotor: error: ValidationException: first second\n",
		},
		{
			name:    "not a secrets manager",
			args:    []string{"secret", "list"},
			handler: fail(404, `<html>not found</html>`),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := map[string]string{"get": "GetSecretValue", "create": "CreateSecret", "list": "ListSecrets"}[tt.args[1]]
			srv := newFakeServer(t, map[string]fakeHandler{op: tt.handler})
			r := runSecretCLI(t, srv.vars(t), "", tt.args...)
			if r.code != 1 || r.stdout != "" {
				t.Errorf("exit %d, stdout %q; want 1 and nothing", r.code, r.stdout)
			}
			if tt.wantStderr == "" {
				tt.wantStderr = "rotor: error: unexpected HTTP 404 response from " + srv.url + "\n" +
					"rotor: hint: is this a Rotor or Secrets Manager endpoint? it came from AWS_ENDPOINT_URL_SECRETS_MANAGER\n"
			}
			if r.stderr != tt.wantStderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, tt.wantStderr)
			}
			if n := len(srv.calls()); n != 1 {
				t.Errorf("%d requests, want 1 (client errors are not retried)", n)
			}
		})
	}
}

func TestSecretConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close()

	vars := (&fakeServer{url: endpoint}).vars(t)
	start := time.Now()
	r := runSecretCLI(t, vars, "", "secret", "get", "a")
	want := "rotor: error: cannot connect to " + endpoint + ": connection refused\n" +
		"rotor: hint: is the server running? start it with `rotor server` or set AWS_ENDPOINT_URL_SECRETS_MANAGER\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("exit %d, stderr:\n%s\nwant:\n%s", r.code, r.stderr, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v; a refused connection should fail at once", d)
	}
}

func TestSecretTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newFakeServer(t, map[string]fakeHandler{"GetSecretValue": func(map[string]any) (int, string) {
		<-release
		return http.StatusOK, `{}`
	}})
	defer close(release)
	r := runSecretCLI(t, srv.vars(t), "", "secret", "get", "a", "--timeout", "200ms")
	want := "rotor: error: no answer from " + srv.url + " within 200ms\n" +
		"rotor: hint: check that the server is healthy, or allow more time with --timeout\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("exit %d, stderr:\n%s\nwant:\n%s", r.code, r.stderr, want)
	}
}

// TestSecretLocalDefaults runs with nothing configured but a local server's
// credentials file: the request goes to the default endpoint's stand-in,
// signed with the file's key for us-east-1.
func TestSecretLocalDefaults(t *testing.T) {
	srv := newFakeServer(t, map[string]fakeHandler{"GetRandomPassword": reply(`{"RandomPassword":"pw"}`)})
	dataDir := t.TempDir()
	writeFile(t, filepath.Join(dataDir, "credentials"), "[rotor]\naws_access_key_id = AKIDROTOR\naws_secret_access_key = r\n")
	vars := map[string]string{"HOME": t.TempDir(), "ROTOR_DATA_DIR": dataDir}
	r := runSecretCLI(t, vars, "", "secret", "random-password", "-o", "text", "--endpoint-url", srv.url)
	if r.code != 0 || r.stdout != "pw" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	c := srv.calls()[0]
	if c.accessKey != "AKIDROTOR" || c.region != "us-east-1" {
		t.Errorf("signed by %q for %q, want AKIDROTOR for us-east-1", c.accessKey, c.region)
	}

	r = runSecretCLI(t, vars, "", "secret", "random-password", "--endpoint-url", srv.url, "--region", "eu-west-1", "--profile", "")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if c := srv.calls()[1]; c.region != "eu-west-1" {
		t.Errorf("signed for %q, want eu-west-1", c.region)
	}
}

package main

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	testDoc     = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
	policyReply = `{"Policy":{"PolicyName":"readers","PolicyId":"ANPAEXAMPLE0000000","Arn":"arn:aws:iam::000000000000:policy/readers",` +
		`"Description":"read all","CreateDate":1714478400,"UpdateDate":1714564800,"AttachmentCount":1,"PolicyDocument":` +
		`"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"secretsmanager:GetSecretValue\",\"Resource\":\"*\"}]}"}}`
)

func TestPolicyCommands(t *testing.T) {
	docFile := writeFile(t, filepath.Join(t.TempDir(), "p.json"), testDoc)
	tests := []struct {
		name      string
		args      []string
		stdin     string
		handlers  map[string]fakeHandler
		want      string
		wantCalls []string
	}{
		{
			name:      "create from file",
			args:      []string{"policy", "create", "readers", "--document", docFile, "--description", "read all"},
			handlers:  map[string]fakeHandler{"CreatePolicy": reply(policyReply)},
			want:      "created policy readers (arn:aws:iam::000000000000:policy/readers)\n",
			wantCalls: []string{`CreatePolicy {"Description":"read all","PolicyDocument":` + quoteJSON(testDoc) + `,"PolicyName":"readers"}`},
		},
		{
			name:      "create from stdin",
			args:      []string{"policy", "create", "readers", "--document", "-"},
			stdin:     testDoc,
			handlers:  map[string]fakeHandler{"CreatePolicy": reply(policyReply)},
			want:      "created policy readers (arn:aws:iam::000000000000:policy/readers)\n",
			wantCalls: []string{`CreatePolicy {"PolicyDocument":` + quoteJSON(testDoc) + `,"PolicyName":"readers"}`},
		},
		{
			name:      "get prints the document",
			args:      []string{"policy", "get", "readers"},
			handlers:  map[string]fakeHandler{"GetPolicy": reply(policyReply)},
			want:      testDoc,
			wantCalls: []string{`GetPolicy {"PolicyArn":"readers"}`},
		},
		{
			name:     "get json",
			args:     []string{"policy", "get", "arn:aws:iam::000000000000:policy/readers", "-o", "json"},
			handlers: map[string]fakeHandler{"GetPolicy": reply(policyReply)},
			want: `{
  "Policy": {
    "PolicyName": "readers",
    "PolicyId": "ANPAEXAMPLE0000000",
    "Arn": "arn:aws:iam::000000000000:policy/readers",
    "Description": "read all",
    "CreateDate": 1714478400,
    "UpdateDate": 1714564800,
    "AttachmentCount": 1,
    "PolicyDocument": ` + quoteJSON(testDoc) + `
  }
}
`,
			wantCalls: []string{`GetPolicy {"PolicyArn":"arn:aws:iam::000000000000:policy/readers"}`},
		},
		{
			name:      "update",
			args:      []string{"policy", "update", "readers", "--document", docFile},
			handlers:  map[string]fakeHandler{"UpdatePolicy": reply(policyReply)},
			want:      "updated policy readers\n",
			wantCalls: []string{`UpdatePolicy {"PolicyArn":"readers","PolicyDocument":` + quoteJSON(testDoc) + `}`},
		},
		{
			name:      "delete",
			args:      []string{"policy", "delete", "readers"},
			handlers:  map[string]fakeHandler{"DeletePolicy": reply(`{}`)},
			want:      "deleted policy readers\n",
			wantCalls: []string{`DeletePolicy {"PolicyArn":"readers"}`},
		},
		{
			name: "list follows markers",
			args: []string{"policy", "list"},
			handlers: map[string]fakeHandler{"ListPolicies": func(req map[string]any) (int, string) {
				if req["Marker"] == nil {
					return 200, `{"Policies":[{"PolicyName":"admins","Arn":"arn:aws:iam::000000000000:policy/admins","UpdateDate":1714478400}],"IsTruncated":true,"Marker":"admins"}`
				}
				return 200, `{"Policies":[{"PolicyName":"readers","Description":"read all","UpdateDate":1714564800,"AttachmentCount":2}],"IsTruncated":false}`
			}},
			want: "NAME     UPDATED               ATTACHMENTS  DESCRIPTION\n" +
				"admins   2024-04-30T12:00:00Z  -            \n" +
				"readers  2024-05-01T12:00:00Z  2            read all\n",
			wantCalls: []string{`ListPolicies {}`, `ListPolicies {"Marker":"admins"}`},
		},
		{
			name:     "list json",
			args:     []string{"policy", "list", "-o", "json"},
			handlers: map[string]fakeHandler{"ListPolicies": reply(`{"Policies":[{"PolicyName":"readers"}],"IsTruncated":false}`)},
			want:     "{\n  \"Policies\": [\n    {\n      \"PolicyName\": \"readers\"\n    }\n  ],\n  \"IsTruncated\": false\n}\n",
		},
		{
			name:      "attach",
			args:      []string{"policy", "attach", "readers", "--user", "bob"},
			handlers:  map[string]fakeHandler{"AttachUserPolicy": reply(`{}`)},
			want:      "attached policy readers to user bob\n",
			wantCalls: []string{`AttachUserPolicy {"PolicyArn":"readers","UserName":"bob"}`},
		},
		{
			name:      "detach",
			args:      []string{"policy", "detach", "readers", "--user", "bob"},
			handlers:  map[string]fakeHandler{"DetachUserPolicy": reply(`{}`)},
			want:      "detached policy readers from user bob\n",
			wantCalls: []string{`DetachUserPolicy {"PolicyArn":"readers","UserName":"bob"}`},
		},
		{
			name: "list attached",
			args: []string{"policy", "list-attached", "--user", "bob"},
			handlers: map[string]fakeHandler{"ListAttachedUserPolicies": reply(`{"AttachedPolicies":[` +
				`{"PolicyName":"readers","PolicyArn":"arn:aws:iam::000000000000:policy/readers"}],"IsTruncated":false}`)},
			want:      "NAME     ARN\nreaders  arn:aws:iam::000000000000:policy/readers\n",
			wantCalls: []string{`ListAttachedUserPolicies {"UserName":"bob"}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRotorServer(t, tt.handlers)
			checkRun(t, runSecretCLI(t, srv.vars(t), tt.stdin, tt.args...), tt.want)
			if tt.wantCalls != nil && !reflect.DeepEqual(srv.bodies(), tt.wantCalls) {
				t.Errorf("requests = %q\nwant %q", srv.bodies(), tt.wantCalls)
			}
		})
	}
}

// quoteJSON is s as a JSON string, as encoding/json writes it.
func quoteJSON(s string) string {
	return `"` + strings.NewReplacer(`"`, `\"`, `\`, `\\`).Replace(s) + `"`
}

func TestPolicyUsageErrors(t *testing.T) {
	empty := writeFile(t, filepath.Join(t.TempDir(), "empty.json"), "")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"create without document", []string{"policy", "create", "p"}, "give the policy document with --document FILE (- for stdin)"},
		{"update without document", []string{"policy", "update", "p"}, "give the policy document with --document FILE (- for stdin)"},
		{"missing file", []string{"policy", "create", "p", "--document", filepath.Join(t.TempDir(), "nope.json")}, "--document: open "},
		{"empty file", []string{"policy", "create", "p", "--document", empty}, "--document: " + empty + " is empty"},
		{"attach without user", []string{"policy", "attach", "p"}, "give the user with --user"},
		{"list-attached without user", []string{"policy", "list-attached"}, "give the user with --user"},
		{"list with argument", []string{"policy", "list", "x"}, `rotor policy list takes no arguments (got "x")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRotorServer(t, nil)
			r := runSecretCLI(t, srv.vars(t), "", tt.args...)
			if r.code != 2 || !strings.HasPrefix(r.stderr, "rotor: error: "+tt.want) || !strings.Contains(r.stderr, "rotor: hint: see `rotor policy") {
				t.Errorf("exit %d, stderr %q, want usage error %q", r.code, r.stderr, tt.want)
			}
			if len(srv.calls()) != 0 {
				t.Errorf("requests sent: %v", srv.bodies())
			}
		})
	}
}

func TestPolicyErrors(t *testing.T) {
	srv := newRotorServer(t, map[string]fakeHandler{
		"CreatePolicy": fail(400, `{"__type":"MalformedPolicyDocumentException","Message":"Statement: missing Effect"}`),
		"DeletePolicy": fail(409, `{"__type":"DeleteConflictException","Message":"Cannot delete a policy attached to entities: it is attached to 1 user(s)."}`),
	})
	r := runSecretCLI(t, srv.vars(t), `{"Statement":[{}]}`, "policy", "create", "p", "--document", "-")
	if r.code != 1 || r.stderr != "rotor: error: MalformedPolicyDocumentException: Statement: missing Effect\n" {
		t.Errorf("create: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runSecretCLI(t, srv.vars(t), "", "policy", "delete", "p")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "rotor: error: DeleteConflictException: ") {
		t.Errorf("delete: exit %d, stderr %q", r.code, r.stderr)
	}
}

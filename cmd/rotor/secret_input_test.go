package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

func TestParseKeyValue(t *testing.T) {
	tests := []struct {
		in         string
		key, value string
		wantErr    string
	}{
		{in: "env=prod", key: "env", value: "prod"},
		{in: "url=a=b", key: "url", value: "a=b"},
		{in: "empty=", key: "empty", value: ""},
		{in: "with space=x y", key: "with space", value: "x y"},
		{in: "noequals", wantErr: `"noequals" is not KEY=VALUE`},
		{in: "=v", wantErr: `"=v" has an empty key`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			k, v, err := parseKeyValue(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || k != tt.key || v != tt.value {
				t.Errorf("parseKeyValue(%q) = %q, %q, %v; want %q, %q", tt.in, k, v, err, tt.key, tt.value)
			}
		})
	}
}

func TestParseTags(t *testing.T) {
	got, err := parseTags([]string{"team=db", "env=prod", "note="})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"team=db", "env=prod", "note="}
	for i, tag := range got {
		if s := *tag.Key + "=" + *tag.Value; s != want[i] {
			t.Errorf("tag %d = %q, want %q", i, s, want[i])
		}
	}
	if _, err := parseTags([]string{"a=1", "a=2"}); err == nil || err.Error() != `tag key "a" given twice` {
		t.Errorf("duplicate key: err = %v", err)
	}
	if _, err := parseTags([]string{"a"}); err == nil || err.Error() != `tag "a" is not KEY=VALUE` {
		t.Errorf("no '=': err = %v", err)
	}
}

func TestParseFilters(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []types.Filter
		wantErr string
	}{
		{name: "none", in: nil, want: nil},
		{
			name: "values of one key accumulate, keys keep their first order",
			in:   []string{"name=prod/", "tag-key=env", "name=staging/", "tag-value=!old", "name=dev/"},
			want: []types.Filter{
				{Key: types.FilterNameStringTypeName, Values: []string{"prod/", "staging/", "dev/"}},
				{Key: types.FilterNameStringTypeTagKey, Values: []string{"env"}},
				{Key: types.FilterNameStringTypeTagValue, Values: []string{"!old"}},
			},
		},
		{
			name: "every key",
			in:   []string{"description=d", "primary-region=us-east-1", "owning-service=rds", "all=x"},
			want: []types.Filter{
				{Key: types.FilterNameStringTypeDescription, Values: []string{"d"}},
				{Key: types.FilterNameStringTypePrimaryRegion, Values: []string{"us-east-1"}},
				{Key: types.FilterNameStringTypeOwningService, Values: []string{"rds"}},
				{Key: types.FilterNameStringTypeAll, Values: []string{"x"}},
			},
		},
		{name: "unknown key", in: []string{"Name=x"}, wantErr: `unknown filter key "Name" (want one of name, description, tag-key, tag-value, primary-region, owning-service, all)`},
		{name: "empty value", in: []string{"name="}, wantErr: `filter "name=" has an empty value`},
		{name: "not a pair", in: []string{"name"}, wantErr: `filter "name" is not KEY=VALUE`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFilters(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestSecretUsageErrors checks that mistakes on the command line exit with
// status 2 and one clear line, before any request is sent.
func TestSecretUsageErrors(t *testing.T) {
	srv := newFakeServer(t, nil)
	big := writeFile(t, t.TempDir()+"/big", strings.Repeat("x", maxSecretValue+1))
	notText := writeFile(t, t.TempDir()+"/bin", "\xff\xfe")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "unknown subcommand", args: []string{"secret", "bogus"}, wantErr: `unknown command "bogus" for "rotor secret"`},
		{name: "unknown flag", args: []string{"secret", "list", "--bogus"}, wantErr: "unknown flag: --bogus"},
		{name: "bad flag value", args: []string{"secret", "list", "--max-results", "many"}, wantErr: `invalid argument "many" for "--max-results" flag`},
		{name: "bad output", args: []string{"secret", "-o", "yaml", "list"}, wantErr: `--output: want json or text, got "yaml"`},
		{name: "bad timeout", args: []string{"secret", "list", "--timeout", "0s"}, wantErr: "--timeout: want a positive duration, got 0s"},
		{name: "bad endpoint", args: []string{"secret", "list", "--endpoint-url", "localhost:7300"}, wantErr: `invalid endpoint URL "localhost:7300" from --endpoint-url`},
		{name: "get without id", args: []string{"secret", "get"}, wantErr: "rotor secret get wants ID (got 0 arguments)"},
		{name: "get with two ids", args: []string{"secret", "get", "a", "b"}, wantErr: "rotor secret get wants ID (got 2 arguments)"},
		{name: "list with an argument", args: []string{"secret", "list", "x"}, wantErr: `rotor secret list takes no arguments (got "x")`},
		{name: "tag without tags", args: []string{"secret", "tag", "a"}, wantErr: "rotor secret tag wants ID KEY=VALUE... (got 1 arguments)"},
		{name: "tag not a pair", args: []string{"secret", "tag", "a", "env"}, wantErr: `tag "env" is not KEY=VALUE`},
		{name: "untag without keys", args: []string{"secret", "untag", "a"}, wantErr: "rotor secret untag wants ID KEY... (got 1 arguments)"},
		{name: "untag empty key", args: []string{"secret", "untag", "a", ""}, wantErr: "empty tag key"},
		{name: "put without value", args: []string{"secret", "put", "a"}, wantErr: "give the value with --value, --value-file or --binary-file"},
		{name: "put with two values", args: []string{"secret", "put", "a", "--value", "x", "--binary-file", "-"}, wantErr: "give only one of --value, --binary-file"},
		{name: "create with two values", args: []string{"secret", "create", "a", "--value", "x", "--value-file", "-"}, wantErr: "give only one of --value, --value-file"},
		{name: "value file missing", args: []string{"secret", "put", "a", "--value-file", "/nonexistent/v"}, wantErr: "--value-file: open /nonexistent/v: no such file or directory"},
		{name: "value too large", args: []string{"secret", "put", "a", "--value-file", big}, wantErr: "--value-file: " + big + " holds more than 65536 bytes, the most a secret value may have"},
		{name: "value file not text", args: []string{"secret", "put", "a", "--value-file", notText}, wantErr: "--value-file: " + notText + " is not UTF-8 text"},
		{name: "create bad tag", args: []string{"secret", "create", "a", "--tag", "=x"}, wantErr: `--tag: tag "=x" has an empty key`},
		{name: "update nothing", args: []string{"secret", "update", "a"}, wantErr: "nothing to update: give --description, --kms-key-id, --value, --value-file or --binary-file"},
		{name: "filter key", args: []string{"secret", "list", "--filter", "color=red"}, wantErr: `--filter: unknown filter key "color"`},
		{name: "sort-by", args: []string{"secret", "list", "--sort-by", "size"}, wantErr: `--sort-by: want one of name, created-date, last-accessed-date, last-changed-date, got "size"`},
		{name: "sort-order", args: []string{"secret", "list", "--sort-order", "up"}, wantErr: `--sort-order: want asc or desc, got "up"`},
		{name: "max-results low", args: []string{"secret", "list", "--max-results", "0"}, wantErr: "--max-results: want 1 to 100, got 0"},
		{name: "max-results high", args: []string{"secret", "versions", "a", "--max-results", "101"}, wantErr: "--max-results: want 1 to 100, got 101"},
		{name: "delete both", args: []string{"secret", "delete", "a", "--force", "--recovery-window-days", "7"}, wantErr: "give --recovery-window-days or --force, not both"},
		{name: "delete window", args: []string{"secret", "delete", "a", "--recovery-window-days", "3"}, wantErr: "--recovery-window-days: want 7 to 30, got 3"},
		{name: "password length", args: []string{"secret", "random-password", "--length", "0"}, wantErr: "--length: want a positive number, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runSecretCLI(t, srv.vars(t), "", tt.args...)
			if r.code != 2 {
				t.Errorf("exit status %d, want 2; stderr:\n%s", r.code, r.stderr)
			}
			first, _, _ := strings.Cut(r.stderr, "\n")
			if !strings.HasPrefix(first, "rotor: error: "+tt.wantErr) {
				t.Errorf("stderr = %q, want it to start with %q", r.stderr, "rotor: error: "+tt.wantErr)
			}
			if !strings.Contains(r.stderr, "\nrotor: hint: ") {
				t.Errorf("stderr has no hint: %q", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
	if calls := srv.calls(); len(calls) != 0 {
		t.Errorf("usage errors sent %d requests", len(calls))
	}
}

func TestSecretHelp(t *testing.T) {
	srv := newFakeServer(t, nil)
	r := runSecretCLI(t, srv.vars(t), "", "secret")
	if r.code != 0 || !strings.Contains(r.stdout, "random-password") || !strings.Contains(r.stdout, "--endpoint-url") {
		t.Errorf("rotor secret: exit %d, stdout:\n%s", r.code, r.stdout)
	}
	r = runSecretCLI(t, srv.vars(t), "", "secret", "list", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "--filter KEY=VALUE") {
		t.Errorf("rotor secret list --help: exit %d, stdout:\n%s", r.code, r.stdout)
	}
}

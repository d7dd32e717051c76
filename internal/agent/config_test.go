package agent

import (
	"go/parser"
	"go/token"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/client"
)

func TestConfigDefaults(t *testing.T) {
	cfg := DefaultConfig()
	if cfg.Addr() != "127.0.0.1:2773" {
		t.Errorf("Addr = %s, want 127.0.0.1:2773", cfg.Addr())
	}
	if cfg.LogLevel == nil || *cfg.LogLevel != slog.LevelInfo {
		t.Errorf("LogLevel = %v, want info", cfg.LogLevel)
	}
	if cfg.TTL != 300*time.Second || cfg.CacheSize != 1000 || cfg.MaxConn != 800 || cfg.PathPrefix != "/v1/" {
		t.Errorf("TTL %v, CacheSize %d, MaxConn %d, PathPrefix %q", cfg.TTL, cfg.CacheSize, cfg.MaxConn, cfg.PathPrefix)
	}
	if !slices.Equal(cfg.SSRFHeaders, []string{"X-Aws-Parameters-Secrets-Token", "X-Vault-Token"}) {
		t.Errorf("SSRFHeaders = %v", cfg.SSRFHeaders)
	}
	if !slices.Equal(cfg.SSRFEnvVariables, []string{"AWS_TOKEN", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN"}) {
		t.Errorf("SSRFEnvVariables = %v", cfg.SSRFEnvVariables)
	}
	if !cfg.Push || cfg.Endpoint != "" || cfg.Region != "" || len(cfg.Files) != 0 {
		t.Errorf("Push %v, Endpoint %q, Region %q, Files %v", cfg.Push, cfg.Endpoint, cfg.Region, cfg.Files)
	}
}

// TestConfigAWSAgentFile: a config written for the AWS agent, numbers
// quoted as its documentation shows, loads.
func TestConfigAWSAgentFile(t *testing.T) {
	cfg := mustConfig(t, `
log_level = "DEBUG"
log_to_file = false
http_port = "2775"
region = "eu-west-1"
ttl_seconds = "0"
cache_size = "10"
max_conn = 5
ssrf_headers = ["X-Aws-Parameters-Secrets-Token"]
ssrf_env_variables = ["MY_TOKEN"]
path_prefix = "/secrets/"
validate_credentials = true
ignore_transient_errors = true
`)
	if *cfg.LogLevel != slog.LevelDebug || cfg.HTTPPort != 2775 || cfg.Region != "eu-west-1" || cfg.TTL != 0 ||
		cfg.CacheSize != 10 || cfg.MaxConn != 5 || cfg.PathPrefix != "/secrets/" ||
		!slices.Equal(cfg.SSRFEnvVariables, []string{"MY_TOKEN"}) || !slices.Equal(cfg.SSRFHeaders, []string{"X-Aws-Parameters-Secrets-Token"}) {
		t.Errorf("config = %+v", cfg)
	}
	if none := mustConfig(t, `log_level = "none"`); none.LogLevel != nil {
		t.Errorf("log_level none: %v, want nil", none.LogLevel)
	}
}

func TestConfigRotorKeys(t *testing.T) {
	cfg := mustConfig(t, `
endpoint = "https://rotor.example.com:7300"
push = false

[[file]]
secret_id = "prod/app/db"
path = "/run/app/pgpass"
template = "{{.host}}:{{.port}}:*:{{.username}}:{{.password}}\n"
mode = 0o640
command = ["systemctl", "reload", "app"]
command_timeout_seconds = 5

[[file]]
secret_id = "prod/app/api-key"
version_stage = "AWSPREVIOUS"
path = "/run/app/api-key"
mode = "0400"
`)
	if cfg.Endpoint != "https://rotor.example.com:7300" || cfg.Push {
		t.Errorf("Endpoint %q, Push %v", cfg.Endpoint, cfg.Push)
	}
	if len(cfg.Files) != 2 {
		t.Fatalf("Files = %+v", cfg.Files)
	}
	f0, f1 := cfg.Files[0], cfg.Files[1]
	if f0.SecretID != "prod/app/db" || f0.VersionStage != "AWSCURRENT" || f0.Path != "/run/app/pgpass" || f0.Mode != 0o640 ||
		f0.Template == nil || !slices.Equal(f0.Command, []string{"systemctl", "reload", "app"}) || f0.CommandTimeout != 5*time.Second {
		t.Errorf("file[0] = %+v", f0)
	}
	if f1.VersionStage != "AWSPREVIOUS" || f1.Mode != 0o400 || f1.Template != nil || f1.Command != nil || f1.CommandTimeout != DefaultCommandTimeout {
		t.Errorf("file[1] = %+v", f1)
	}
	rel := mustConfig(t, "[[file]]\nsecret_id = \"s\"\npath = \"out/x\"\n")
	if !filepath.IsAbs(rel.Files[0].Path) || rel.Files[0].Mode != 0o600 {
		t.Errorf("relative path: %+v", rel.Files[0])
	}
}

// TestConfigErrors: each bad value is an error naming its key; all errors
// of a file are reported together.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string
	}{
		{"ttl too big", "ttl_seconds = 3601", []string{"ttl_seconds: 3601 is out of range [0, 3600]"}},
		{"ttl negative", "ttl_seconds = -1", []string{"ttl_seconds: -1 is out of range"}},
		{"ttl not a number", `ttl_seconds = "five"`, []string{`ttl_seconds: "five" is not an integer`}},
		{"ttl float", `ttl_seconds = 1.5`, []string{"ttl_seconds: want an integer, got float64"}},
		{"cache_size zero", "cache_size = 0", []string{"cache_size: 0 is out of range [1, 1000]"}},
		{"cache_size too big", "cache_size = 1001", []string{"cache_size: 1001 is out of range"}},
		{"max_conn zero", "max_conn = 0", []string{"max_conn: 0 is out of range [1, 1000]"}},
		{"max_conn too big", "max_conn = 1001", []string{"max_conn"}},
		{"privileged port", "http_port = 80", []string{"http_port: 80 is a privileged port"}},
		{"port too big", "http_port = 70000", []string{"http_port: 70000 is out of range"}},
		{"log level", `log_level = "chatty"`, []string{`log_level: "chatty" is not`}},
		{"address", `http_address = "localhost"`, []string{`http_address: "localhost" is not an IP address`}},
		{"prefix without slash", `path_prefix = "v1/"`, []string{"path_prefix: \"v1/\" must begin with /"}},
		{"prefix hides ping", `path_prefix = "/"`, []string{"would hide /ping"}},
		{"no headers", `ssrf_headers = []`, []string{"ssrf_headers: must name at least one header"}},
		{"bad header", `ssrf_headers = ["X Token"]`, []string{`ssrf_headers: "X Token" is not a header name`}},
		{"no env variables", `ssrf_env_variables = []`, []string{"ssrf_env_variables: must name at least one variable"}},
		{"log_to_file", `log_to_file = true`, []string{"log_to_file: rotor agent logs to stderr only"}},
		{"credentials_file_path", `credentials_file_path = "/x"`, []string{"credentials_file_path: not supported"}},
		{"endpoint", `endpoint = "rotor:7300"`, []string{`endpoint: "rotor:7300" is not an http or https URL`}},
		{"unknown key", "ttl = 5", []string{`unknown key "ttl"`}},
		{"unknown table", "[server]\nport = 1", []string{`unknown key "server"`, `unknown key "server.port"`}},
		{"unknown file key", "[[file]]\nsecret_id = \"s\"\npath = \"/x\"\nowner = \"app\"", []string{`unknown key "file.owner"`}},
		{"wrong type", `push = "yes"`, []string{"push"}},
		{"syntax", "http_port = ", []string{"line 1"}},
		{"file required fields", "[[file]]\nmode = 0o600", []string{"file[0].secret_id: required", "file[0].path: required"}},
		{"file decimal mode", "[[file]]\nsecret_id = \"s\"\npath = \"/x\"\nmode = 600", []string{"file[0].mode: 600 is not a permission mode"}},
		{"file bad mode string", "[[file]]\nsecret_id = \"s\"\npath = \"/x\"\nmode = \"rw\"", []string{`file[0].mode: "rw" is not an octal mode`}},
		{"file template", "[[file]]\nsecret_id = \"s\"\npath = \"/x\"\ntemplate = \"{{.a\"", []string{"file[0].template:"}},
		{"file empty command", "[[file]]\nsecret_id = \"s\"\npath = \"/x\"\ncommand = []", []string{"file[0].command: must be an argument vector"}},
		{"file command timeout", "[[file]]\nsecret_id = \"s\"\npath = \"/x\"\ncommand_timeout_seconds = 0", []string{"file[0].command_timeout_seconds: 0 is out of range"}},
		{"file duplicate path", "[[file]]\nsecret_id = \"a\"\npath = \"/x\"\n[[file]]\nsecret_id = \"b\"\npath = \"/x\"", []string{"file[1].path: /x is also the path of file[0]"}},
		{"all errors joined", "ttl_seconds = 9999\ncache_size = 0\nbogus = 1", []string{"ttl_seconds", "cache_size", `unknown key "bogus"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig(tt.toml)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadConfigNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.toml")
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), "agent.toml") {
		t.Errorf("missing file: %v", err)
	}
}

// TestConfigDocExample: the example of the package documentation parses and
// renders.
func TestConfigDocExample(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "agent.go", nil, parser.PackageClauseOnly|parser.ParseComments)
	if err != nil || f.Doc == nil {
		t.Fatalf("read the package documentation: %v", err)
	}
	doc := f.Doc.Text()
	start := strings.Index(doc, "[[file]]   # a .pgpass line")
	end := strings.Index(doc, "Neither a secret's value")
	if start < 0 || end < start {
		t.Fatal("the example is missing from the package documentation")
	}
	var b strings.Builder
	for line := range strings.SplitSeq(doc[start:end], "\n") {
		b.WriteString(strings.TrimPrefix(line, "\t") + "\n")
	}
	cfg := mustConfig(t, b.String())
	if len(cfg.Files) != 3 {
		t.Fatalf("%d files, want 3", len(cfg.Files))
	}
	s := &client.Secret{VersionID: "v1", SecretString: `{"host":"h","port":5432,"dbname":"d","username":"u","password":"p'w"}`}
	want := []string{"h:5432:d:u:p'w\n", "PGHOST='h'\nPGUSER='u'\nPGPASSWORD='p'\\''w'\n", `{"user":"u","password":"p'w","version":"v1"}`}
	for i, f := range cfg.Files {
		got, err := render(&f, s)
		if err != nil || string(got) != want[i] {
			t.Errorf("file[%d] renders %q, %v; want %q", i, got, err, want[i])
		}
	}
}

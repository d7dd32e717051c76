package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/BurntSushi/toml"
)

// Defaults and bounds of the configuration, as the AWS Secrets Manager Agent
// has them.
const (
	DefaultHTTPAddress = "127.0.0.1"
	DefaultHTTPPort    = 2773
	DefaultTTL         = 300 * time.Second
	MaxTTL             = 3600 * time.Second
	DefaultCacheSize   = 1000
	MaxCacheSize       = 1000
	DefaultMaxConn     = 800
	MaxMaxConn         = 1000
	DefaultPathPrefix  = "/v1/"

	// DefaultFileMode is the mode of a rendered file.
	DefaultFileMode fs.FileMode = 0o600
	// DefaultCommandTimeout bounds a file's command.
	DefaultCommandTimeout = 30 * time.Second
)

// DefaultSSRFHeaders are the request headers that may carry the SSRF token.
var DefaultSSRFHeaders = []string{"X-Aws-Parameters-Secrets-Token", "X-Vault-Token"}

// DefaultSSRFEnvVariables are the environment variables the SSRF token is
// read from, the first one set winning.
var DefaultSSRFEnvVariables = []string{"AWS_TOKEN", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN"}

// Config is the agent's configuration. Decode it with ParseConfig or
// LoadConfig, which fill in the defaults and validate it; the zero Config is
// not valid.
type Config struct {
	// LogLevel is nil for "none": nothing is logged.
	LogLevel    *slog.Level
	HTTPAddress string
	HTTPPort    int // 0: any free port
	Region      string
	// TTL is how long a value is served from the cache; 0 disables the
	// cache for HTTP requests.
	TTL              time.Duration
	CacheSize        int
	MaxConn          int
	SSRFHeaders      []string
	SSRFEnvVariables []string
	PathPrefix       string

	// Endpoint is the Secrets Manager endpoint; "" lets the SDK's
	// configuration decide.
	Endpoint string
	// Push subscribes to Rotor's stream of label changes, so that a
	// rotation reaches the agent within a second instead of a TTL.
	Push  bool
	Files []FileConfig
}

// FileConfig is one [[file]] output.
type FileConfig struct {
	SecretID     string
	VersionStage string
	Path         string
	// Template is the parsed template; nil writes the secret's value as
	// it is (SecretString, or SecretBinary's bytes).
	Template       *template.Template
	Mode           fs.FileMode
	Command        []string
	CommandTimeout time.Duration
}

// Addr is the address the HTTP endpoint listens on.
func (c *Config) Addr() string {
	return net.JoinHostPort(c.HTTPAddress, strconv.Itoa(c.HTTPPort))
}

// LoadConfig reads and decodes the TOML file at path.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read agent config: %w", err)
	}
	cfg, err := ParseConfig(string(b))
	if err != nil {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	return cfg, nil
}

// DefaultConfig is the configuration of an agent without a config file.
func DefaultConfig() *Config {
	cfg, err := ParseConfig("")
	if err != nil {
		panic("agent: the defaults do not validate: " + err.Error())
	}
	return cfg
}

// rawConfig is the file as written. Numbers may be TOML integers or strings,
// because the AWS agent's documented examples quote them.
type rawConfig struct {
	LogLevel         *string   `toml:"log_level"`
	LogToFile        *bool     `toml:"log_to_file"`
	HTTPAddress      *string   `toml:"http_address"`
	HTTPPort         *number   `toml:"http_port"`
	Region           *string   `toml:"region"`
	TTLSeconds       *number   `toml:"ttl_seconds"`
	CacheSize        *number   `toml:"cache_size"`
	MaxConn          *number   `toml:"max_conn"`
	SSRFHeaders      *[]string `toml:"ssrf_headers"`
	SSRFEnvVariables *[]string `toml:"ssrf_env_variables"`
	PathPrefix       *string   `toml:"path_prefix"`

	// Accepted so that AWS agent configs load; they change nothing here.
	IgnoreTransientErrors *bool   `toml:"ignore_transient_errors"`
	ValidateCredentials   *bool   `toml:"validate_credentials"`
	CredentialsFilePath   *string `toml:"credentials_file_path"`

	Endpoint *string   `toml:"endpoint"`
	Push     *bool     `toml:"push"`
	Files    []rawFile `toml:"file"`
}

type rawFile struct {
	SecretID              string   `toml:"secret_id"`
	VersionStage          string   `toml:"version_stage"`
	Path                  string   `toml:"path"`
	Template              *string  `toml:"template"`
	Mode                  *mode    `toml:"mode"`
	Command               []string `toml:"command"`
	CommandTimeoutSeconds *number  `toml:"command_timeout_seconds"`
}

// number is an integer written as a TOML integer or a decimal string. A
// wrong value is kept in err, so that validation reports it with the key's
// name and alongside the other errors.
type number struct {
	v   int64
	err error
}

func (n *number) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		n.v = v
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			n.err = fmt.Errorf("%q is not an integer", v)
		}
		n.v = i
	default:
		n.err = fmt.Errorf("want an integer, got %T", v)
	}
	return nil
}

// mode is a file mode written as a TOML octal integer (0o600) or an octal
// string ("0600").
type mode struct {
	v   fs.FileMode
	err error // reported with the field's name by validation
}

func (m *mode) UnmarshalTOML(v any) error {
	var i int64
	switch v := v.(type) {
	case int64:
		i = v
	case string:
		p, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
		if err != nil {
			m.err = fmt.Errorf("%q is not an octal mode such as \"0600\"", v)
			return nil
		}
		i = p
	default:
		m.err = fmt.Errorf("want an octal integer (0o600) or string (\"0600\"), got %T", v)
		return nil
	}
	if i < 0 || i > 0o777 {
		m.err = fmt.Errorf("%d is not a permission mode (write 0o600 or \"0600\"; a decimal 600 is not octal)", i)
		return nil
	}
	m.v = fs.FileMode(i)
	return nil
}

// ParseConfig decodes a TOML configuration, fills in the defaults and
// validates it. Unknown keys are errors; all errors found are joined.
func ParseConfig(data string) (*Config, error) {
	var raw rawConfig
	md, err := toml.Decode(data, &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s", pe.ErrorWithPosition())
		}
		return nil, err
	}
	var errs []error
	for _, k := range md.Undecoded() {
		errs = append(errs, fmt.Errorf("unknown key %q", k.String()))
	}
	cfg, verrs := raw.build()
	errs = append(errs, verrs...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

func (raw *rawConfig) build() (*Config, []error) {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	intIn := func(key string, n *number, def, lo, hi int64) int {
		if n == nil {
			return int(def)
		}
		if n.err != nil {
			fail(key, "%v", n.err)
			return int(def)
		}
		if n.v < lo || n.v > hi {
			fail(key, "%d is out of range [%d, %d]", n.v, lo, hi)
			return int(def)
		}
		return int(n.v)
	}

	cfg := &Config{
		HTTPAddress:      DefaultHTTPAddress,
		SSRFHeaders:      slices.Clone(DefaultSSRFHeaders),
		SSRFEnvVariables: slices.Clone(DefaultSSRFEnvVariables),
		PathPrefix:       DefaultPathPrefix,
		Push:             true,
	}

	level := slog.LevelInfo
	cfg.LogLevel = &level
	if raw.LogLevel != nil {
		switch strings.ToLower(*raw.LogLevel) {
		case "debug":
			level = slog.LevelDebug
		case "info":
		case "warn", "warning":
			level = slog.LevelWarn
		case "error":
			level = slog.LevelError
		case "none":
			cfg.LogLevel = nil
		default:
			fail("log_level", "%q is not debug, info, warn, error or none", *raw.LogLevel)
		}
	}

	if raw.HTTPAddress != nil {
		if ip := net.ParseIP(*raw.HTTPAddress); ip == nil {
			fail("http_address", "%q is not an IP address", *raw.HTTPAddress)
		} else {
			cfg.HTTPAddress = ip.String()
		}
	}
	cfg.HTTPPort = intIn("http_port", raw.HTTPPort, DefaultHTTPPort, 0, math.MaxUint16)
	if cfg.HTTPPort > 0 && cfg.HTTPPort < 1024 {
		fail("http_port", "%d is a privileged port; choose 1024 or above (0: any free port)", cfg.HTTPPort)
	}
	if raw.Region != nil {
		cfg.Region = *raw.Region
	}
	cfg.TTL = time.Duration(intIn("ttl_seconds", raw.TTLSeconds, int64(DefaultTTL/time.Second), 0, int64(MaxTTL/time.Second))) * time.Second
	cfg.CacheSize = intIn("cache_size", raw.CacheSize, DefaultCacheSize, 1, MaxCacheSize)
	cfg.MaxConn = intIn("max_conn", raw.MaxConn, DefaultMaxConn, 1, MaxMaxConn)

	if raw.SSRFHeaders != nil {
		cfg.SSRFHeaders = nil
		for _, h := range *raw.SSRFHeaders {
			if h = strings.TrimSpace(h); h == "" || strings.ContainsAny(h, " :\t\r\n") {
				fail("ssrf_headers", "%q is not a header name", h)
				continue
			}
			cfg.SSRFHeaders = append(cfg.SSRFHeaders, h)
		}
		if len(*raw.SSRFHeaders) == 0 {
			fail("ssrf_headers", "must name at least one header")
		}
	}
	if raw.SSRFEnvVariables != nil {
		cfg.SSRFEnvVariables = *raw.SSRFEnvVariables
		if len(cfg.SSRFEnvVariables) == 0 {
			fail("ssrf_env_variables", "must name at least one variable")
		}
		if slices.Contains(cfg.SSRFEnvVariables, "") {
			fail("ssrf_env_variables", "a variable name is empty")
		}
	}
	if raw.PathPrefix != nil {
		cfg.PathPrefix = *raw.PathPrefix
		switch p := cfg.PathPrefix; {
		case !strings.HasPrefix(p, "/"):
			fail("path_prefix", "%q must begin with /", p)
		case p == "/" || strings.HasPrefix("/secretsmanager/get", p) || p == "/ping" || strings.HasPrefix(p, "/ping/"):
			fail("path_prefix", "%q would hide /ping or /secretsmanager/get", p)
		}
	}
	if raw.LogToFile != nil && *raw.LogToFile {
		fail("log_to_file", "rotor agent logs to stderr only; remove the key or set it to false")
	}
	if raw.CredentialsFilePath != nil {
		fail("credentials_file_path", "not supported; set AWS_SHARED_CREDENTIALS_FILE instead")
	}

	if raw.Endpoint != nil && *raw.Endpoint != "" {
		u, err := url.Parse(*raw.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fail("endpoint", "%q is not an http or https URL", *raw.Endpoint)
		} else {
			cfg.Endpoint = *raw.Endpoint
		}
	}
	if raw.Push != nil {
		cfg.Push = *raw.Push
	}

	paths := map[string]int{}
	for i, rf := range raw.Files {
		key := fmt.Sprintf("file[%d]", i)
		f := FileConfig{
			SecretID:       rf.SecretID,
			VersionStage:   rf.VersionStage,
			Mode:           DefaultFileMode,
			Command:        rf.Command,
			CommandTimeout: DefaultCommandTimeout,
		}
		if f.VersionStage == "" {
			f.VersionStage = "AWSCURRENT"
		}
		if f.SecretID == "" {
			fail(key+".secret_id", "required")
		}
		if rf.Path == "" {
			fail(key+".path", "required")
		} else {
			abs, err := filepath.Abs(rf.Path)
			if err != nil {
				fail(key+".path", "%v", err)
			}
			f.Path = abs
			if j, dup := paths[abs]; dup {
				fail(key+".path", "%s is also the path of file[%d]", abs, j)
			}
			paths[abs] = i
		}
		if rf.Template != nil {
			t, err := parseTemplate(rf.Path, *rf.Template)
			if err != nil {
				fail(key+".template", "%v", err)
			}
			f.Template = t
		}
		if rf.Mode != nil {
			if rf.Mode.err != nil {
				fail(key+".mode", "%v", rf.Mode.err)
			} else {
				f.Mode = rf.Mode.v
			}
		}
		if rf.Command != nil && (len(rf.Command) == 0 || rf.Command[0] == "") {
			fail(key+".command", "must be an argument vector such as [\"systemctl\", \"reload\", \"app\"]")
		}
		if rf.CommandTimeoutSeconds != nil {
			f.CommandTimeout = time.Duration(intIn(key+".command_timeout_seconds", rf.CommandTimeoutSeconds, int64(DefaultCommandTimeout/time.Second), 1, 3600)) * time.Second
		}
		cfg.Files = append(cfg.Files, f)
	}
	return cfg, errs
}

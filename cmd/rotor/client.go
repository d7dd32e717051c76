package main

// The connection behind `rotor secret …`: where the server is, which
// credentials sign the requests, and how a failed call reads on a terminal.
//
// Settings are found the way the AWS CLI finds them, through
// config.LoadDefaultConfig, with defaults for a local Rotor when the user
// configured nothing. Every variable the CLI decides on is read through the
// injected getenv and handed to the SDK as an explicit option, so the SDK's own
// reading of the process environment cannot override it. The SDK still reads
// the process environment for what it alone uses: AWS_CA_BUNDLE,
// AWS_MAX_ATTEMPTS, AWS_RETRY_MODE, AWS_EC2_METADATA_*, AWS_CONTAINER_*,
// AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN, AWS_SDK_UA_APP_ID and the like,
// and the home directory when getenv has no HOME. Tests therefore clear the
// process's AWS_* variables as well as injecting their own.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

const (
	defaultEndpoint = "http://127.0.0.1:7300"
	defaultRegion   = "us-east-1"
	defaultDataDir  = "rotor-data"
	defaultTimeout  = 30 * time.Second
	rotorProfile    = "rotor"

	// The standard retryer may wait up to 20s between attempts; a person at a
	// terminal should hear about a failure sooner.
	maxRetryBackoff = 2 * time.Second

	// serviceSDKID names Secrets Manager in AWS_ENDPOINT_URL_<ID> and in the
	// [services] sections of the shared config file.
	serviceSDKID = "Secrets Manager"
)

// connFlags are the connection flags every secret subcommand accepts.
type connFlags struct {
	endpointURL string
	region      string
	profile     string
	timeout     time.Duration
}

// clientConn is a resolved connection to a Secrets Manager endpoint.
type clientConn struct {
	client  *secretsmanager.Client
	creds   aws.CredentialsProvider
	timeout time.Duration

	// What the settings were resolved from, for messages and hints.
	endpoint     string // "" when the SDK resolves AWS's own endpoint
	endpointFrom string
	region       string
	credsFrom    string
}

// openClient resolves the endpoint, region and credentials and builds a client.
// It reads the shared config files but makes no network calls.
func openClient(ctx context.Context, getenv func(string) string, f connFlags) (*clientConn, error) {
	c := &clientConn{timeout: f.timeout}
	if c.timeout <= 0 {
		c.timeout = defaultTimeout
	}

	var opts []func(*config.LoadOptions) error
	configFile, credsFile := sharedFiles(getenv)
	if configFile != "" {
		opts = append(opts, config.WithSharedConfigFiles([]string{configFile}))
	}
	if credsFile != "" {
		opts = append(opts, config.WithSharedCredentialsFiles([]string{credsFile}))
	}

	profile := cmp.Or(f.profile, getenv("AWS_PROFILE"), getenv("AWS_DEFAULT_PROFILE"))
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
		c.credsFrom = fmt.Sprintf("profile %q", profile)
	}
	// As in the AWS CLI, keys in the environment beat AWS_PROFILE, and
	// --profile beats both.
	if f.profile == "" {
		id := cmp.Or(getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_ACCESS_KEY"))
		secret := cmp.Or(getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SECRET_KEY"))
		if id != "" && secret != "" {
			opts = append(opts, config.WithCredentialsProvider(
				credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN"))))
			c.credsFrom = "the environment (AWS_ACCESS_KEY_ID)"
		}
	}
	if region := cmp.Or(f.region, getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION")); region != "" {
		opts = append(opts, config.WithRegion(region))
	}

	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		var notExist config.SharedConfigProfileNotExistError
		if errors.As(err, &notExist) {
			return nil, &hintError{
				msg:  fmt.Sprintf("profile %q not found in the shared config or credentials file", profile),
				hint: "define it, or choose another with --profile or AWS_PROFILE",
				err:  err,
			}
		}
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	c.region = cfg.Region

	var shared config.SharedConfig
	for _, src := range cfg.ConfigSources {
		if sc, ok := src.(config.SharedConfig); ok {
			shared = sc
			break
		}
	}
	if err := c.resolveEndpoint(ctx, getenv, f, shared); err != nil {
		return nil, err
	}
	if err := c.resolveCredentials(ctx, getenv, &cfg); err != nil {
		return nil, err
	}

	c.creds = cfg.Credentials
	endpoint := c.endpoint
	c.client = secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		// Set even when empty: the client would otherwise consult the
		// process environment for AWS_ENDPOINT_URL* itself.
		o.BaseEndpoint = nil
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		if o.Retryer == nil && o.RetryMode != aws.RetryModeAdaptive {
			o.Retryer = newRetryer()
		}
	})
	return c, nil
}

// sharedFiles names the shared config and credentials files, so that the SDK
// does not look up the home directory in the process environment.
func sharedFiles(getenv func(string) string) (configFile, credsFile string) {
	home := getenv("HOME")
	if runtime.GOOS == "windows" {
		home = cmp.Or(getenv("USERPROFILE"), home)
	}
	configFile, credsFile = getenv("AWS_CONFIG_FILE"), getenv("AWS_SHARED_CREDENTIALS_FILE")
	if home != "" {
		if configFile == "" {
			configFile = filepath.Join(home, ".aws", "config")
		}
		if credsFile == "" {
			credsFile = filepath.Join(home, ".aws", "credentials")
		}
	}
	return configFile, credsFile
}

// resolveEndpoint applies the AWS CLI's precedence: flag, service-specific
// variable, global variable, the profile's services section, the profile's
// endpoint_url, and finally a local Rotor.
//
// cfg.BaseEndpoint is not enough here: it holds only the global setting (and
// comes from the process environment), while the service-specific ones are
// resolved when the client is built.
func (c *clientConn) resolveEndpoint(ctx context.Context, getenv func(string) string, f connFlags, shared config.SharedConfig) error {
	ignore := false
	if v := getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: want true or false, got %q", v)
		}
		ignore = b
	} else if shared.IgnoreConfiguredEndpoints != nil {
		ignore = *shared.IgnoreConfiguredEndpoints
	}

	svc, svcFound, _ := shared.GetServiceBaseEndpoint(ctx, serviceSDKID)
	const svcVar = "AWS_ENDPOINT_URL_SECRETS_MANAGER"
	switch {
	case f.endpointURL != "":
		c.endpoint, c.endpointFrom = f.endpointURL, "--endpoint-url"
	case ignore:
		// The user asked for AWS's own endpoints.
		c.endpoint, c.endpointFrom = "", "the SDK's default for region "+c.region
		return nil
	case getenv(svcVar) != "":
		c.endpoint, c.endpointFrom = getenv(svcVar), svcVar
	case getenv("AWS_ENDPOINT_URL") != "":
		c.endpoint, c.endpointFrom = getenv("AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL"
	case svcFound && svc != "":
		c.endpoint, c.endpointFrom = svc, fmt.Sprintf("the services section of profile %q", shared.Profile)
	case shared.BaseEndpoint != "":
		c.endpoint, c.endpointFrom = shared.BaseEndpoint, fmt.Sprintf("endpoint_url of profile %q", shared.Profile)
	default:
		c.endpoint, c.endpointFrom = defaultEndpoint, "default"
	}

	u, err := url.Parse(c.endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		err := &hintError{
			msg:  fmt.Sprintf("invalid endpoint URL %q from %s", c.endpoint, c.endpointFrom),
			hint: "an endpoint looks like http://127.0.0.1:7300 or https://rotor.example.com",
		}
		if c.endpointFrom == "--endpoint-url" {
			return &exitError{code: 2, err: err}
		}
		return err
	}
	return nil
}

// resolveCredentials falls back to the credentials a local Rotor server writes
// into its data directory when the default chain found nothing but instance
// metadata (which LoadDefaultConfig selects when all else is absent).
func (c *clientConn) resolveCredentials(ctx context.Context, getenv func(string) string, cfg *aws.Config) error {
	if cfg.Credentials != nil && !aws.IsCredentialsProvider(cfg.Credentials, (*ec2rolecreds.Provider)(nil)) {
		if c.credsFrom == "" {
			c.credsFrom = "the default profile"
		}
		return nil
	}
	path := rotorCredentialsFile(getenv)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if c.endpointFrom == "default" {
			return &hintError{
				msg: "no credentials found",
				hint: fmt.Sprintf("start a server with `rotor server` (it writes %s), point ROTOR_DATA_DIR at its data directory, "+
					"or set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", path),
			}
		}
		// An explicitly configured endpoint may be AWS itself, reached from an
		// instance with a role.
		c.credsFrom = "EC2 instance metadata"
		return nil
	}
	sc, err := config.LoadSharedConfigProfile(ctx, rotorProfile, func(o *config.LoadSharedConfigOptions) {
		o.CredentialsFiles = []string{path}
		o.ConfigFiles = []string{}
	})
	if err != nil || !sc.Credentials.HasKeys() {
		return &hintError{
			msg:  fmt.Sprintf("no access key in profile %q of %s", rotorProfile, path),
			hint: "the file should hold [rotor] with aws_access_key_id and aws_secret_access_key",
			err:  err,
		}
	}
	cfg.Credentials = aws.NewCredentialsCache(credentials.StaticCredentialsProvider{Value: sc.Credentials})
	c.credsFrom = fmt.Sprintf("%s (profile %s)", path, rotorProfile)
	return nil
}

func rotorCredentialsFile(getenv func(string) string) string {
	return filepath.Join(cmp.Or(getenv("ROTOR_DATA_DIR"), defaultDataDir), "credentials")
}

// newRetryer is the SDK's standard retryer with shorter waits, and without
// retrying a refused connection: nothing listens, and waiting will not change
// that.
func newRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxBackoff = maxRetryBackoff
		o.Retryables = append([]retry.IsErrorRetryable{
			retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
				if errors.Is(err, syscall.ECONNREFUSED) {
					return aws.FalseTernary
				}
				return aws.UnknownTernary
			}),
		}, o.Retryables...)
	})
}

// callAPI runs one API operation under the connection's timeout and turns its
// failure into one line for the terminal.
func callAPI[In, Out any](ctx context.Context, c *clientConn, op func(context.Context, In, ...func(*secretsmanager.Options)) (Out, error), in In) (Out, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var zero Out
	// Fetched first so that a missing key reads as such, not as a failed
	// request; the provider caches what it fetched.
	if _, err := c.creds.Retrieve(ctx); err != nil {
		return zero, c.explain(&credentialsError{err: err})
	}
	out, err := op(ctx, in)
	if err != nil {
		return zero, c.explain(err)
	}
	return out, nil
}

// credentialsError marks a failure to obtain credentials.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "get credentials: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// hintError is an error with an operator hint, which printError shows on its
// own line.
type hintError struct {
	msg  string
	hint string
	err  error
}

func (e *hintError) Error() string { return e.msg }
func (e *hintError) Hint() string  { return e.hint }
func (e *hintError) Unwrap() error { return e.err }

// explain turns an SDK failure into one line: `Code: message` for an API
// error, or what went wrong on the way to the server.
func (c *clientConn) explain(err error) error {
	where := c.endpoint
	if where == "" {
		where = "Secrets Manager in " + c.region
	}
	var (
		apiErr  smithy.APIError
		respErr *awshttp.ResponseError
		credErr *credentialsError
		dnsErr  *net.DNSError
	)
	switch {
	case errors.Is(err, context.Canceled):
		return &hintError{msg: "interrupted", err: err}
	case errors.As(err, &credErr):
		msg := "cannot get credentials from " + c.credsFrom
		if errors.Is(err, context.DeadlineExceeded) {
			msg += fmt.Sprintf(": no answer within %s", c.timeout)
		}
		return &hintError{
			msg:  msg,
			hint: "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or ROTOR_DATA_DIR for a local server's credentials",
			err:  err,
		}
	case errors.As(err, &apiErr) && apiErr.ErrorCode() != "UnknownError":
		msg := apiErr.ErrorCode()
		if m := apiErr.ErrorMessage(); m != "" {
			msg += ": " + m
		}
		return &hintError{msg: msg, hint: c.apiHint(apiErr.ErrorCode(), apiErr.ErrorMessage()), err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &hintError{
			msg:  fmt.Sprintf("no answer from %s within %s", where, c.timeout),
			hint: "check that the server is healthy, or allow more time with --timeout",
			err:  err,
		}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &hintError{
			msg:  fmt.Sprintf("cannot connect to %s: connection refused", where),
			hint: "is the server running? start it with `rotor server` or set AWS_ENDPOINT_URL_SECRETS_MANAGER",
			err:  err,
		}
	case errors.As(err, &dnsErr):
		return &hintError{
			msg:  fmt.Sprintf("cannot resolve host %s of %s", dnsErr.Name, where),
			hint: fmt.Sprintf("check the endpoint URL, which came from %s", c.endpointFrom),
			err:  err,
		}
	case errors.As(err, &respErr) && respErr.HTTPStatusCode() != 0:
		return &hintError{
			msg:  fmt.Sprintf("unexpected HTTP %d response from %s", respErr.HTTPStatusCode(), where),
			hint: fmt.Sprintf("is this a Rotor or Secrets Manager endpoint? it came from %s", c.endpointFrom),
			err:  err,
		}
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return &hintError{msg: fmt.Sprintf("cannot reach %s: %v", where, urlErr.Err), err: err}
	}
	var opErr *smithy.OperationError
	if errors.As(err, &opErr) {
		return &hintError{msg: opErr.Err.Error(), err: err}
	}
	return err
}

// apiHint says what the user can do about an API error, where anything.
func (c *clientConn) apiHint(code, message string) string {
	switch code {
	case "UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException",
		"SignatureDoesNotMatch", "IncompleteSignature", "IncompleteSignatureException", "MissingAuthenticationToken", "ExpiredTokenException":
		return fmt.Sprintf("the request was signed with credentials from %s; check them, or choose others with --profile or AWS_PROFILE", c.credsFrom)
	case "ResourceExistsException":
		if !strings.Contains(message, "secret") {
			return ""
		}
		return "to store a new value in an existing secret, use `rotor secret put`"
	}
	return ""
}

// Package custom runs rotation functions that are not built in, so that
// rotation code written for AWS Lambda runs unchanged against Rotor:
//
//   - exec: an executable in the server's function directory
//     (--function-dir, as Vault's plugin_directory: nothing outside it can
//     be registered). For each step it runs with the Lambda event JSON
//     ({"Step", "SecretId", "ClientRequestToken", "RotationToken"}) on
//     stdin and, in its environment, the endpoint (SECRETS_MANAGER_ENDPOINT,
//     AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL), the region
//     (AWS_REGION, AWS_DEFAULT_REGION) and temporary credentials
//     (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; no session token) whose
//     policy allows only what a rotation function does on that one secret,
//     revoked when the step ends. RotationToken is the ClientRequestToken.
//     Exit status 0 is success, and whatever it left running is killed;
//     otherwise standard error (its end, with the secret's values,
//     password-like fields and the credentials redacted) is the failure's
//     message, which the rotation status shows.
//   - webhook: the same event POSTed as JSON to a URL, signed like Rotor's
//     event webhooks (X-Rotor-Signature: v1=HMAC-SHA256(key,
//     timestamp + "." + body), X-Rotor-Timestamp) with a key made at
//     registration and shown once; a 2xx answer is success.
//
// Both are killed (exec: the whole process group) or abandoned (webhook)
// at their timeout, and the step is recorded as failed: the engine's
// retries and backoff apply as to built-in functions.
//
// Definitions live in the store (Catalog), so every node sharing it knows
// them; a function is addressed by its Lambda ARN
// arn:aws:lambda:REGION:ACCOUNT:function:NAME like the built-ins.
package custom

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/store"
)

// Kinds of custom function.
const (
	KindExec    = "exec"
	KindWebhook = "webhook"
)

// Limits.
const (
	DefaultTimeout = 2 * time.Minute
	MaxTimeout     = 15 * time.Minute // Lambda's limit
	maxArgs        = 32
	maxArgLen      = 1024
	maxFunctions   = 1000
)

// Definition is a registered function.
type Definition struct {
	Name    string
	Kind    string
	Command string   `json:",omitempty"` // exec: file name in the function directory
	Args    []string `json:",omitempty"` // exec: arguments after the command
	URL     string   `json:",omitempty"` // webhook
	Timeout time.Duration
	Created time.Time
	// SealedKey is the webhook's signing key, sealed by the keyring.
	SealedKey []byte `json:",omitempty"`
}

// InvalidError reports a definition that cannot be registered.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// Errors of the Catalog.
var (
	ErrNotFound = errors.New("custom: no such function")
	ErrExists   = errors.New("custom: a function with this name exists")
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ReservedPrefix names the built-in functions; custom names may not use it.
const ReservedPrefix = "rotor-"

// catalogMeta is the store meta key holding every definition (JSON).
const catalogMeta = "rotation.functions"

// Catalog keeps definitions in the store.
type Catalog struct {
	Store   store.Store
	Keyring *keyring.Keyring
	// Dir is the function directory; "" disables exec functions.
	Dir string
	Now func() time.Time
}

func (c *Catalog) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC().Truncate(time.Millisecond)
	}
	return time.Now().UTC().Truncate(time.Millisecond)
}

// validate checks d and fills defaults.
func (c *Catalog) validate(d *Definition) error {
	if !namePattern.MatchString(d.Name) {
		return &InvalidError{"Name must be 1-64 letters, digits, '-' or '_' (a Lambda function name)."}
	}
	if strings.HasPrefix(d.Name, ReservedPrefix) {
		return &InvalidError{"Names starting with " + ReservedPrefix + " are Rotor's built-in functions."}
	}
	if d.Timeout == 0 {
		d.Timeout = DefaultTimeout
	}
	if d.Timeout < time.Second || d.Timeout > MaxTimeout {
		return &InvalidError{fmt.Sprintf("Timeout must be between 1 and %d seconds.", int(MaxTimeout.Seconds()))}
	}
	switch d.Kind {
	case KindExec:
		if d.URL != "" {
			return &InvalidError{"An exec function has no Url."}
		}
		if _, err := c.executable(d.Command); err != nil {
			return err
		}
		if len(d.Args) > maxArgs {
			return &InvalidError{fmt.Sprintf("At most %d Args.", maxArgs)}
		}
		for _, a := range d.Args {
			if len(a) > maxArgLen || strings.ContainsRune(a, 0) {
				return &InvalidError{fmt.Sprintf("Each of Args has at most %d characters and no NUL.", maxArgLen)}
			}
		}
	case KindWebhook:
		if d.Command != "" || len(d.Args) > 0 {
			return &InvalidError{"A webhook function has no Command or Args."}
		}
		u, err := url.Parse(d.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return &InvalidError{"Url must be an http or https URL without credentials."}
		}
	default:
		return &InvalidError{"Type must be exec or webhook."}
	}
	return nil
}

// executable resolves an exec function's command in the function
// directory: a plain file name, an executable regular file there.
func (c *Catalog) executable(command string) (string, error) {
	if c.Dir == "" {
		return "", &InvalidError{"Exec functions are disabled: start the server with --function-dir DIR and put the executables there."}
	}
	if command == "" || command != filepath.Base(command) || command == "." || command == ".." {
		return "", &InvalidError{"Command must be the name of an executable in the function directory, without a path."}
	}
	path := filepath.Join(c.Dir, command)
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", &InvalidError{fmt.Sprintf("Command %q is not an executable file in the function directory.", command)}
	}
	return path, nil
}

func (c *Catalog) load(ctx context.Context, tx store.Tx) (map[string]Definition, error) {
	v, err := tx.Meta(ctx, catalogMeta)
	if errors.Is(err, store.ErrNotFound) {
		return map[string]Definition{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]Definition{}
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return nil, fmt.Errorf("custom: stored functions: %w", err)
	}
	return m, nil
}

func save(ctx context.Context, tx store.Tx, m map[string]Definition) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return tx.PutMeta(ctx, catalogMeta, string(b))
}

// Register stores d. A webhook gets a new signing key, returned (base64)
// only here.
func (c *Catalog) Register(ctx context.Context, d Definition) (Definition, string, error) {
	if err := c.validate(&d); err != nil {
		return Definition{}, "", err
	}
	d.Created = c.now()
	var key string
	if d.Kind == KindWebhook {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return Definition{}, "", err
		}
		sealed, _, err := c.Keyring.Seal(raw, keyAAD(d.Name))
		if err != nil {
			return Definition{}, "", err
		}
		d.SealedKey, key = sealed, base64.StdEncoding.EncodeToString(raw)
	}
	err := c.Store.Write(ctx, func(tx store.Tx) error {
		m, err := c.load(ctx, tx)
		if err != nil {
			return err
		}
		if _, ok := m[d.Name]; ok {
			return ErrExists
		}
		if len(m) >= maxFunctions {
			return &InvalidError{fmt.Sprintf("At most %d functions.", maxFunctions)}
		}
		m[d.Name] = d
		return save(ctx, tx, m)
	})
	if err != nil {
		return Definition{}, "", err
	}
	return d, key, nil
}

// Delete removes the function name.
func (c *Catalog) Delete(ctx context.Context, name string) error {
	return c.Store.Write(ctx, func(tx store.Tx) error {
		m, err := c.load(ctx, tx)
		if err != nil {
			return err
		}
		if _, ok := m[name]; !ok {
			return ErrNotFound
		}
		delete(m, name)
		return save(ctx, tx, m)
	})
}

// List returns every definition, by name.
func (c *Catalog) List(ctx context.Context) ([]Definition, error) {
	var m map[string]Definition
	err := c.Store.Read(ctx, func(tx store.Tx) (err error) {
		m, err = c.load(ctx, tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Definition, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Get returns the definition of name.
func (c *Catalog) Get(ctx context.Context, name string) (Definition, error) {
	var d Definition
	err := c.Store.Read(ctx, func(tx store.Tx) error {
		m, err := c.load(ctx, tx)
		if err != nil {
			return err
		}
		var ok bool
		if d, ok = m[name]; !ok {
			return ErrNotFound
		}
		return nil
	})
	return d, err
}

// signingKey opens a webhook's key.
func (c *Catalog) signingKey(d Definition) ([]byte, error) {
	return c.Keyring.Open(d.SealedKey, keyAAD(d.Name))
}

func keyAAD(name string) []byte { return []byte("rotor/function-key/" + name) }

// SessionPolicy is the identity policy of a step's temporary credentials:
// what AWS's rotation templates do, on the one secret (and
// GetRandomPassword, which names no secret).
func SessionPolicy(secretARN string) string {
	arn, _ := json.Marshal(secretARN)
	return `{"Version":"2012-10-17","Statement":[` +
		`{"Effect":"Allow","Action":["secretsmanager:DescribeSecret","secretsmanager:GetSecretValue",` +
		`"secretsmanager:PutSecretValue","secretsmanager:UpdateSecretVersionStage","secretsmanager:ListSecretVersionIds"],` +
		`"Resource":` + string(arn) + `},` +
		`{"Effect":"Allow","Action":"secretsmanager:GetRandomPassword","Resource":"*"}]}`
}

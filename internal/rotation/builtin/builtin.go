// Package builtin turns a rotator.Rotator into a rotation.Function: the four
// steps of AWS's rotation templates for RDS-shaped database secrets
// ({"engine","host","port","username","password","dbname","masterarn",…}),
// done with the secrets API as a Lambda would, and the database work
// delegated to the rotator.
//
// Every step first checks the version it is given, as the templates do: the
// version must exist and carry AWSPENDING, and a version already AWSCURRENT
// means the step is done. Each step is idempotent:
//
//   - createSecret: if the pending version has a value, done; otherwise
//     generate a password (and, for alternating users, switch to the other
//     user) and store it as AWSPENDING.
//   - setSecret: Rotator.Set with the pending, current, previous and master
//     credentials.
//   - testSecret: Rotator.Test with the pending credentials (the current
//     ones when the pending version has no value: a test rotation).
//   - finishSecret: move AWSCURRENT to the pending version (the old one
//     becomes AWSPREVIOUS), then Finisher.Finish if the rotator has one,
//     with the new current credentials, the previous ones (of the same
//     user) and the master's. A repeated finishSecret finds AWSCURRENT
//     moved and calls Finish again, so a Finish that failed is retried.
//
// TLS comes from the secret's "sslmode", else from a boolean "ssl" (or
// "tls", its synonym): true is sslmode require, false disable; each rotator
// documents what its sslmodes mean.
//
// Errors never contain a secret value.
package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rotor-secrets/rotor/internal/password"
	"github.com/rotor-secrets/rotor/internal/rotation"
	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

// ErrNotFound is returned by Secrets.Value when the secret or the version
// does not exist or has no value.
var ErrNotFound = errors.New("builtin: secret value not found")

// Description is what the steps need of DescribeSecret.
type Description struct {
	ARN             string
	RotationEnabled bool
	Versions        map[string][]string // labelled version id → labels
}

// Secrets is the secrets API as rotation functions use it.
type Secrets interface {
	Describe(ctx context.Context, secretID string) (Description, error)
	// Value returns a version's SecretString, selected by id, stage or both.
	Value(ctx context.Context, secretID, versionID, stage string) (string, error)
	// PutPending stores value as version token with the label AWSPENDING.
	PutPending(ctx context.Context, secretID, token, value string) error
	// MoveCurrent moves AWSCURRENT from version from to version token.
	MoveCurrent(ctx context.Context, secretID, token, from string) error
}

// Config describes one built-in function.
type Config struct {
	Secrets  Secrets
	Rotator  rotator.Rotator
	Strategy rotator.Strategy
	// Engines are the accepted values of the secret's "engine" field.
	Engines []string
	// DefaultPort is used when the secret has no "port".
	DefaultPort int
	// MaxUserLen bounds user names (for the alternate user).
	MaxUserLen int
	// Password generates new passwords (ExcludeCharacters: what breaks
	// connection strings for the engine).
	Password password.Options
}

// Function is a built-in rotation function.
type Function struct{ cfg Config }

// New returns a Function.
func New(cfg Config) *Function { return &Function{cfg: cfg} }

var _ rotation.Function = (*Function)(nil)

const (
	stageCurrent  = "AWSCURRENT"
	stagePending  = "AWSPENDING"
	stagePrevious = "AWSPREVIOUS"
)

// Invoke runs one step.
func (f *Function) Invoke(ctx context.Context, ev rotation.Event) error {
	d, err := f.cfg.Secrets.Describe(ctx, ev.SecretID)
	if err != nil {
		return fmt.Errorf("describe secret: %w", err)
	}
	stages, ok := d.Versions[ev.ClientRequestToken]
	switch {
	case !ok:
		return fmt.Errorf("secret version %s has no stage for rotation", ev.ClientRequestToken)
	case slices.Contains(stages, stageCurrent) && ev.Step != rotation.StepFinish:
		return nil // already rotated to this version
	case !slices.Contains(stages, stagePending) && !slices.Contains(stages, stageCurrent):
		return fmt.Errorf("secret version %s is not AWSPENDING", ev.ClientRequestToken)
	}
	switch ev.Step {
	case rotation.StepCreate:
		return f.create(ctx, ev)
	case rotation.StepSet:
		return f.set(ctx, ev)
	case rotation.StepTest:
		return f.test(ctx, ev)
	case rotation.StepFinish:
		return f.finish(ctx, ev, d)
	}
	return fmt.Errorf("unknown step %q", ev.Step)
}

func (f *Function) create(ctx context.Context, ev rotation.Event) error {
	if _, err := f.cfg.Secrets.Value(ctx, ev.SecretID, ev.ClientRequestToken, stagePending); err == nil {
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("read pending value: %w", err)
	}
	curText, err := f.cfg.Secrets.Value(ctx, ev.SecretID, "", stageCurrent)
	if err != nil {
		return fmt.Errorf("read current value: %w", err)
	}
	fields, cur, err := f.parse(curText, "AWSCURRENT")
	if err != nil {
		return err
	}
	pw, err := password.Generate(nil, f.cfg.Password)
	if err != nil {
		return fmt.Errorf("generate password: %w", err)
	}
	fields["password"] = pw
	if f.cfg.Strategy == rotator.AlternatingUsers {
		alt, err := rotator.AlternateUser(cur.Username, f.cfg.MaxUserLen)
		if err != nil {
			return err
		}
		fields["username"] = alt
	}
	b, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("encode pending value: %v", err)
	}
	if err := f.cfg.Secrets.PutPending(ctx, ev.SecretID, ev.ClientRequestToken, string(b)); err != nil {
		return fmt.Errorf("store pending value: %w", err)
	}
	return nil
}

func (f *Function) set(ctx context.Context, ev rotation.Event) error {
	req := rotator.SetRequest{Strategy: f.cfg.Strategy}
	pendingText, err := f.cfg.Secrets.Value(ctx, ev.SecretID, ev.ClientRequestToken, stagePending)
	if err != nil {
		return fmt.Errorf("read pending value: %w", err)
	}
	_, req.Pending, err = f.parse(pendingText, "AWSPENDING")
	if err != nil {
		return err
	}
	curText, err := f.cfg.Secrets.Value(ctx, ev.SecretID, "", stageCurrent)
	if err != nil {
		return fmt.Errorf("read current value: %w", err)
	}
	curFields, cur, err := f.parse(curText, "AWSCURRENT")
	if err != nil {
		return err
	}
	req.Current = cur
	if req.Pending.Host != cur.Host || req.Pending.Port != cur.Port || req.Pending.Engine != cur.Engine {
		return rotator.Errorf(rotator.KindInvalid, nil, "the pending version points at another database (%s) than the current one (%s)", req.Pending.Addr(), cur.Addr())
	}
	if f.cfg.Strategy == rotator.SingleUser && req.Pending.Username != cur.Username {
		return rotator.Errorf(rotator.KindInvalid, nil, "single-user rotation cannot change the user name (%q to %q)", cur.Username, req.Pending.Username)
	}
	if req.Previous, err = f.previous(ctx, ev.SecretID, cur); err != nil {
		return err
	}
	if req.Master, err = f.master(ctx, curFields, cur); err != nil {
		return err
	}
	if req.Master == nil && f.cfg.Strategy == rotator.AlternatingUsers {
		return rotator.Errorf(rotator.KindInvalid, nil, "alternating-users rotation needs \"masterarn\" in the secret: the ARN of a secret holding admin credentials")
	}
	return f.cfg.Rotator.Set(ctx, req)
}

// previous returns the AWSPREVIOUS credentials when they are of cur's
// user, nil when there are none (or they are unreadable, or of another
// user: the secret was alternating before).
func (f *Function) previous(ctx context.Context, secretID string, cur rotator.Credentials) (*rotator.Credentials, error) {
	text, err := f.cfg.Secrets.Value(ctx, secretID, "", stagePrevious)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read previous value: %w", err)
	}
	if _, prev, err := f.parse(text, "AWSPREVIOUS"); err == nil && prev.Username == cur.Username {
		return &prev, nil
	}
	return nil, nil
}

// master returns the credentials of the secret named by the "masterarn"
// of fields, nil when there is none.
func (f *Function) master(ctx context.Context, fields map[string]any, cur rotator.Credentials) (*rotator.Credentials, error) {
	arn, _ := fields["masterarn"].(string)
	if arn == "" {
		return nil, nil
	}
	text, err := f.cfg.Secrets.Value(ctx, arn, "", stageCurrent)
	if err != nil {
		return nil, fmt.Errorf("read master secret %s: %w", arn, err)
	}
	// A master secret may hold only username and password (as RDS-managed
	// ones do): it then logs in to the same database server.
	_, m, err := f.parseWith(text, "master secret's AWSCURRENT", &cur)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

func (f *Function) test(ctx context.Context, ev rotation.Event) error {
	text, err := f.cfg.Secrets.Value(ctx, ev.SecretID, ev.ClientRequestToken, stagePending)
	which := "AWSPENDING"
	if errors.Is(err, ErrNotFound) {
		// A test rotation's placeholder has no value: test the current credentials.
		text, err = f.cfg.Secrets.Value(ctx, ev.SecretID, "", stageCurrent)
		which = "AWSCURRENT"
	}
	if err != nil {
		return fmt.Errorf("read %s value: %w", which, err)
	}
	_, creds, err := f.parse(text, which)
	if err != nil {
		return err
	}
	return f.cfg.Rotator.Test(ctx, rotator.TestRequest{Credentials: creds})
}

func (f *Function) finish(ctx context.Context, ev rotation.Event, d Description) error {
	current := ""
	for id, stages := range d.Versions {
		if slices.Contains(stages, stageCurrent) {
			current = id
		}
	}
	if current != ev.ClientRequestToken {
		if err := f.cfg.Secrets.MoveCurrent(ctx, ev.SecretID, ev.ClientRequestToken, current); err != nil {
			return fmt.Errorf("move AWSCURRENT: %w", err)
		}
	}
	fin, ok := f.cfg.Rotator.(rotator.Finisher)
	if !ok {
		return nil
	}
	text, err := f.cfg.Secrets.Value(ctx, ev.SecretID, ev.ClientRequestToken, "")
	if err != nil {
		return fmt.Errorf("read new current value: %w", err)
	}
	fields, cur, err := f.parse(text, "AWSCURRENT")
	if err != nil {
		return err
	}
	req := rotator.FinishRequest{Strategy: f.cfg.Strategy, Current: cur}
	// AWSPREVIOUS is now the version AWSCURRENT left.
	if req.Previous, err = f.previous(ctx, ev.SecretID, cur); err != nil {
		return err
	}
	if req.Master, err = f.master(ctx, fields, cur); err != nil {
		return err
	}
	return fin.Finish(ctx, req)
}

// parse reads an RDS-shaped secret value. which names the version in
// errors, which never quote the value.
func (f *Function) parse(text, which string) (map[string]any, rotator.Credentials, error) {
	return f.parseWith(text, which, nil)
}

// parseWith is parse where a missing host, port and engine are taken from
// defaults (when not nil), and, with them, the TLS mode when the value sets
// none: a master secret with only a login reaches the same server the same
// way.
func (f *Function) parseWith(text, which string, defaults *rotator.Credentials) (map[string]any, rotator.Credentials, error) {
	var fields map[string]any
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return nil, rotator.Credentials{}, rotator.Errorf(rotator.KindInvalid, nil, "the %s value is not a JSON object", which)
	}
	str := func(k string) string { v, _ := fields[k].(string); return v }
	c := rotator.Credentials{
		Engine: str("engine"), Host: str("host"), Username: str("username"),
		Password: str("password"), DBName: str("dbname"), SSLMode: str("sslmode"),
	}
	switch p := fields["port"].(type) {
	case nil:
		c.Port = f.cfg.DefaultPort
	case json.Number:
		n, err := strconv.Atoi(p.String())
		if err != nil {
			return nil, c, rotator.Errorf(rotator.KindInvalid, nil, "the %s value has a non-integer \"port\"", which)
		}
		c.Port = n
	case string:
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, c, rotator.Errorf(rotator.KindInvalid, nil, "the %s value has a non-integer \"port\"", which)
		}
		c.Port = n
	default:
		return nil, c, rotator.Errorf(rotator.KindInvalid, nil, "the %s value has a non-integer \"port\"", which)
	}
	if c.SSLMode == "" {
		ssl, ok := fields["ssl"]
		if !ok {
			ssl = fields["tls"]
		}
		switch v := ssl.(type) {
		case bool:
			c.SSLMode = map[bool]string{true: "require", false: "disable"}[v]
		case string:
			if b, err := strconv.ParseBool(v); err == nil {
				c.SSLMode = map[bool]string{true: "require", false: "disable"}[b]
			}
		}
	}
	if defaults != nil && c.Host == "" {
		c.Host, c.Port = defaults.Host, defaults.Port
		if c.Engine == "" {
			c.Engine = defaults.Engine
		}
		if c.SSLMode == "" {
			c.SSLMode = defaults.SSLMode
		}
	}
	required := []string{"host", "username", "password"}
	if defaults != nil {
		required = required[1:]
	}
	for _, k := range required {
		if str(k) == "" {
			return nil, c, rotator.Errorf(rotator.KindInvalid, nil, "the %s value has no %q", which, k)
		}
	}
	if c.Engine != "" && !slices.Contains(f.cfg.Engines, c.Engine) {
		return nil, c, rotator.Errorf(rotator.KindInvalid, nil, "the %s value has engine %q; this function rotates %s", which, c.Engine, strings.Join(f.cfg.Engines, ", "))
	}
	return fields, c, nil
}

package custom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/rotor-secrets/rotor/internal/rotation"
	"github.com/rotor-secrets/rotor/internal/webhook"
)

// Credentials are a step's temporary access key pair.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
}

// Runtime runs registered functions.
type Runtime struct {
	Catalog *Catalog
	// Endpoint is this node's API URL, given to exec functions.
	Endpoint func() string
	Region   string
	// Issue returns credentials for function name that may act only on
	// secretARN, as a rotation function does, for at most ttl, and a
	// function revoking them.
	Issue func(name, secretARN string, ttl time.Duration) (Credentials, func(), error)
	// Values returns what must never appear in a failure message: the
	// secret's current, pending and previous values.
	Values func(ctx context.Context, secretARN string) []string
	Client *http.Client // webhooks; a default with no redirects if nil
	Logger *slog.Logger
}

// Lookup returns the registered function name (rotation.Registry's
// fallback).
func (r *Runtime) Lookup(name string) (rotation.Function, bool) {
	if !namePattern.MatchString(name) || strings.HasPrefix(name, ReservedPrefix) {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := r.Catalog.Get(ctx, name)
	if err != nil {
		if !errors.Is(err, ErrNotFound) && r.Logger != nil {
			r.Logger.Error("read custom rotation function", "function", name, "err", err)
		}
		return nil, false
	}
	return &function{rt: r, def: d}, true
}

type function struct {
	rt  *Runtime
	def Definition
}

// Invoke runs one step within the function's timeout.
func (f *function) Invoke(ctx context.Context, ev rotation.Event) error {
	ctx, cancel := context.WithTimeout(ctx, f.def.Timeout)
	defer cancel()
	if ev.RotationToken == "" {
		// Lambda code passes it on to PutSecretValue; any valid one does.
		ev.RotationToken = ev.ClientRequestToken
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if f.def.Kind == KindWebhook {
		return f.post(ctx, ev, body)
	}
	return f.exec(ctx, ev, body)
}

// Output bounds: of a failed function's standard error, the last
// outputRead bytes are read and redacted, and the last outputKept of the
// result go in the failure message (which the engine stores up to 1000
// characters). A value cut at the start of what was read cannot reach
// the message.
const (
	outputRead = 16 << 10
	outputKept = 768
)

func (f *function) exec(ctx context.Context, ev rotation.Event, event []byte) error {
	path, err := f.rt.Catalog.executable(f.def.Command)
	if err != nil {
		return fmt.Errorf("function %s: %w", f.def.Name, err)
	}
	creds, revoke, err := f.rt.Issue(f.def.Name, ev.SecretID, f.def.Timeout+time.Minute)
	if err != nil {
		return fmt.Errorf("function %s: temporary credentials: %w", f.def.Name, err)
	}
	defer revoke()
	home, err := os.MkdirTemp("", "rotor-fn-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(home)
	// Standard error goes to a file, not a pipe: a background child that
	// keeps it open must not hold the step up once the function exited.
	stderr, err := os.CreateTemp("", "rotor-fn-stderr-")
	if err != nil {
		return err
	}
	defer os.Remove(stderr.Name())
	defer stderr.Close()

	endpoint := f.rt.Endpoint()
	cmd := exec.Command(path, f.def.Args...)
	cmd.Dir = home
	cmd.Stdin = bytes.NewReader(event)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home, // no ~/.aws of the server's user
		"LANG=C.UTF-8",
		"SECRETS_MANAGER_ENDPOINT=" + endpoint,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + endpoint,
		"AWS_ENDPOINT_URL=" + endpoint,
		"AWS_REGION=" + f.rt.Region,
		"AWS_DEFAULT_REGION=" + f.rt.Region,
		"AWS_ACCESS_KEY_ID=" + creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + creds.SecretAccessKey,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
		"AWS_LAMBDA_FUNCTION_NAME=" + f.def.Name,
		"ROTOR_FUNCTION_STEP=" + string(ev.Step),
	}
	cmd.Stdout = nil // /dev/null: it may print anything, values included
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("function %s: start %s: %w", f.def.Name, f.def.Command, err)
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
		// What it left running in the background goes with it, as a
		// Lambda's environment is frozen when the handler returns.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	case <-ctx.Done():
		// The whole process group: a script's children too.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("function %s did not finish step %s within %v: killed%s",
			f.def.Name, ev.Step, f.def.Timeout, f.output(ev, creds, readTail(stderr)))
	}
	if err != nil {
		return fmt.Errorf("function %s failed at step %s (%v)%s", f.def.Name, ev.Step, err, f.output(ev, creds, readTail(stderr)))
	}
	return nil
}

// readTail returns the last outputRead bytes of f, from its first whole
// line when it had more.
func readTail(f *os.File) string {
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-outputRead, 0)
	b := make([]byte, fi.Size()-off)
	n, _ := f.ReadAt(b, off)
	b = b[:n]
	if off > 0 {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
		return "…" + string(b)
	}
	return string(b)
}

func (f *function) post(ctx context.Context, ev rotation.Event, body []byte) error {
	key, err := f.rt.Catalog.signingKey(f.def)
	if err != nil {
		return fmt.Errorf("function %s: signing key: %w", f.def.Name, err)
	}
	defer clear(key)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.def.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("function %s: %w", f.def.Name, err)
	}
	now := time.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "rotor-function/1")
	req.Header.Set("X-Rotor-Timestamp", fmt.Sprint(now.Unix()))
	req.Header.Set("X-Rotor-Signature", webhook.Sign(key, now, body))
	client := f.rt.Client
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("function %s did not answer step %s within %v", f.def.Name, ev.Step, f.def.Timeout)
		}
		return fmt.Errorf("function %s: POST step %s: %w", f.def.Name, ev.Step, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, outputRead))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("function %s answered step %s with %s%s", f.def.Name, ev.Step, resp.Status, f.output(ev, Credentials{}, string(msg)))
	}
	return nil
}

// output is a failure's captured output, redacted, for its message.
func (f *function) output(ev rotation.Event, creds Credentials, out string) string {
	out = strings.TrimSpace(out)
	if out == "" {
		return ""
	}
	var values []string
	if f.rt.Values != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		values = f.rt.Values(ctx, ev.SecretID)
		cancel()
	}
	if creds.SecretAccessKey != "" {
		values = append(values, creds.SecretAccessKey)
	}
	out = Redact(out, values)
	if len(out) > outputKept {
		cut := len(out) - outputKept
		for cut < len(out) && !utf8.RuneStart(out[cut]) {
			cut++
		}
		out = "…" + out[cut:]
	}
	return ": " + out
}

// Redacted replaces what Redact hides.
const Redacted = "[REDACTED]"

var sensitiveKey = regexp.MustCompile(`(?i)pass|secret|token|key`)

// passwordField: a password-like name, not the "secret:" of an ARN,
// followed by a value.
var passwordField = regexp.MustCompile(`(?i)(^|[^:A-Za-z0-9])("?(?:password|passwd|secret|token)"?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,}]+)`)

// Redact hides values in s — each, and the password-like fields of those
// that are JSON objects (a database secret's "password") — and anything
// that looks like a password assignment.
func Redact(s string, values []string) string {
	var hide []string
	for _, v := range values {
		hide = append(hide, v)
		var m map[string]any
		if json.Unmarshal([]byte(v), &m) == nil {
			for k, x := range m {
				if str, ok := x.(string); ok && sensitiveKey.MatchString(k) {
					hide = append(hide, str)
				}
			}
		}
	}
	// Longest first, so that a value containing another goes whole.
	sort.Slice(hide, func(i, j int) bool { return len(hide[i]) > len(hide[j]) })
	for _, h := range hide {
		if len(h) >= 4 {
			s = strings.ReplaceAll(s, h, Redacted)
		}
	}
	return passwordField.ReplaceAllString(s, "${1}${2}"+Redacted)
}

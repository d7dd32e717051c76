// Package rotator is the driver interface between Rotor's rotation engine
// and the systems whose credentials it rotates (PostgreSQL, MySQL/MariaDB,
// …), as database/sql/driver is to database/sql.
//
// The engine owns the secret's versions and labels and runs AWS's four
// steps; a Rotator only touches the target system: Set makes it accept the
// pending credentials, Test logs in with credentials and runs a query.
// Both are idempotent — the engine repeats a step after a crash or a
// failure, with the same pending credentials — and take one request struct
// so fields can be added without breaking drivers. Optional capabilities are
// extra interfaces (Finisher).
//
// Errors are *Error values with a Kind the engine acts on (retry, give up)
// and a message safe to store and show: a driver never puts a password in an
// error, a log line or a panic. Every driver passes the conformance suite in
// rotation/rotatortest against a real server.
package rotator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
)

// Credentials are one database login, as the RDS-shaped secret JSON holds it.
// They redact the password in every printing path.
type Credentials struct {
	Engine   string // postgres, mysql, mariadb, …
	Host     string
	Port     int
	Username string
	Password string
	DBName   string // database to connect to; "" = the engine's default
	SSLMode  string // "" = the engine's default for this deployment (see each driver)
}

func (c Credentials) redacted() string {
	pw := ""
	if c.Password != "" {
		pw = "[REDACTED]"
	}
	return fmt.Sprintf("{%s %s@%s:%d/%s password:%s}", c.Engine, c.Username, c.Host, c.Port, c.DBName, pw)
}

func (c Credentials) String() string   { return c.redacted() }
func (c Credentials) GoString() string { return c.redacted() }

// LogValue logs everything but the password.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("engine", c.Engine), slog.String("host", c.Host), slog.Int("port", c.Port),
		slog.String("username", c.Username), slog.String("dbname", c.DBName))
}

// Addr is host:port.
func (c Credentials) Addr() string { return c.Host + ":" + strconv.Itoa(c.Port) }

// Strategy is how a rotation changes credentials.
type Strategy int

const (
	// SingleUser changes the password of the one user the secret holds; old
	// logins fail from Set until clients read the new AWSCURRENT.
	SingleUser Strategy = iota + 1
	// AlternatingUsers keeps two users (NAME and NAME_clone) and changes the
	// password of the one not in use, so the credentials clients hold stay
	// valid for a whole rotation period.
	AlternatingUsers
)

func (s Strategy) String() string {
	switch s {
	case SingleUser:
		return "single-user"
	case AlternatingUsers:
		return "alternating-users"
	}
	return "unknown"
}

// SetRequest asks a Rotator to make the target accept Pending.
type SetRequest struct {
	Strategy Strategy
	// Pending are the credentials the target must accept afterwards. For
	// AlternatingUsers, Pending.Username is the user not in Current.
	Pending Credentials
	// Current are the AWSCURRENT credentials (what clients use now).
	Current Credentials
	// Previous are the AWSPREVIOUS credentials, if any: single-user Set may
	// need them to log in after a crash left the target on the pending
	// password of an earlier attempt.
	Previous *Credentials
	// Master are admin credentials (the secret named by masterarn);
	// required for AlternatingUsers, optional for SingleUser.
	Master *Credentials
}

// TestRequest asks a Rotator to log in with Credentials and run a query.
type TestRequest struct {
	Credentials Credentials
}

// Rotator changes and checks credentials on one kind of target.
type Rotator interface {
	// Set makes the target accept req.Pending; repeating it is harmless.
	// Single-user: prove that the secret knows the user's password
	// (Pending, Current or Previous) — by logging in as the user, or
	// against the stored hash through Master — and change it; if Pending
	// is already the password, change nothing. Alternating: as Master,
	// prove Current's password the same way, create the alternate user on
	// first use with the same privileges as Current's user, re-sync them,
	// and set its password. Drivers may keep Master's connections between
	// calls, never the users' own.
	Set(ctx context.Context, req SetRequest) error
	// Test logs in with req.Credentials and runs a trivial query.
	Test(ctx context.Context, req TestRequest) error
}

// FinishRequest is given to a Finisher after AWSCURRENT moved to Current.
type FinishRequest struct {
	Strategy Strategy
	Current  Credentials // the new AWSCURRENT
	Previous *Credentials
	Master   *Credentials
}

// Finisher is implemented by rotators with work after finishSecret, such as
// dropping the older of two live passwords.
type Finisher interface {
	Finish(ctx context.Context, req FinishRequest) error
}

// Kind classifies a rotator failure.
type Kind int

// The kinds of failure.
const (
	// KindUnreachable: the target cannot be reached (connection refused,
	// timeout, DNS). Transient: retry.
	KindUnreachable Kind = iota + 1
	// KindAuth: a login was refused (wrong password, unknown user).
	KindAuth
	// KindPermission: logged in, but not allowed to do what rotation needs.
	KindPermission
	// KindInvalid: the secret's contents are unusable (missing field,
	// unsupported engine or strategy, name too long).
	KindInvalid
	// KindTarget: any other error reported by the target.
	KindTarget
)

func (k Kind) String() string {
	switch k {
	case KindUnreachable:
		return "unreachable"
	case KindAuth:
		return "authentication failed"
	case KindPermission:
		return "permission denied"
	case KindInvalid:
		return "invalid secret"
	case KindTarget:
		return "target error"
	}
	return "unknown"
}

// Error is a rotator failure. Msg says what failed in terms an operator can
// act on and never contains a password; Err is the cause, for logs, and must
// not contain one either (drivers scrub it).
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Kind.String() + ": " + e.Msg + ": " + e.Err.Error()
	}
	return e.Kind.String() + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind k.
func Errorf(k Kind, cause error, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...), Err: cause}
}

// KindOf returns the Kind of a wrapped *Error, or KindTarget.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindTarget
}

// CloneSuffix marks the alternate user of AlternatingUsers.
const CloneSuffix = "_clone"

// AlternateUser returns the other user of an alternating pair: NAME_clone
// for NAME and NAME for NAME_clone. It fails when NAME_clone would exceed
// maxLen bytes (PostgreSQL: 63, MySQL: 32, MariaDB: 80).
func AlternateUser(name string, maxLen int) (string, error) {
	if base, ok := cutSuffix(name, CloneSuffix); ok && base != "" {
		return base, nil
	}
	alt := name + CloneSuffix
	if len(alt) > maxLen {
		return "", Errorf(KindInvalid, nil, "user name %q is too long for an alternate user %q: at most %d bytes", name, alt, maxLen)
	}
	return alt, nil
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}

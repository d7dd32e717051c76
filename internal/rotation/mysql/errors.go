package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

// ServerError is an error the server reported, with every password and
// password hash of the request removed from Message. It is the Err of a
// *rotator.Error.
type ServerError struct {
	Number   uint16 // MySQL error number, such as 1045
	SQLState string
	Message  string
}

func (e *ServerError) Error() string {
	if e.SQLState != "" {
		return fmt.Sprintf("error %d (%s): %s", e.Number, e.SQLState, e.Message)
	}
	return fmt.Sprintf("error %d: %s", e.Number, e.Message)
}

// causeError is a scrubbed client-side cause. It unwraps to the context's
// error when there is one, so errors.Is(err, context.DeadlineExceeded)
// works.
type causeError struct {
	msg string
	ctx error
}

func (e *causeError) Error() string { return e.msg }
func (e *causeError) Unwrap() error { return e.ctx }

// scrubber removes the request's secrets from messages.
type scrubber struct{ secrets []string }

// newScrubber returns a scrubber for the given passwords.
func newScrubber(passwords ...string) *scrubber {
	s := &scrubber{}
	for _, pw := range passwords {
		s.add(pw)
	}
	return s
}

// add registers pw and every form in which it could reach a message: the
// hashes this package sends and its escaped literals.
func (s *scrubber) add(pw string) {
	if pw == "" {
		return
	}
	s.secrets = append(s.secrets, pw, nativeHash(pw), nativeHash(pw)[1:], ed25519Hash(pw))
	for _, nbe := range []bool{false, true} {
		q := quoteString(pw, nbe)
		s.secrets = append(s.secrets, q[1:len(q)-1])
	}
}

// clean replaces every secret in msg, longest first, and case-insensitively
// for hex hashes.
func (s *scrubber) clean(msg string) string {
	if s == nil {
		return msg
	}
	// Longer secrets first, so a password that contains another is removed
	// whole.
	order := make([]string, len(s.secrets))
	copy(order, s.secrets)
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && len(order[j]) > len(order[j-1]); j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	for _, sec := range order {
		if sec == "" {
			continue
		}
		msg = replaceFold(msg, sec, "[REDACTED]")
	}
	return msg
}

// replaceFold replaces old in s, ignoring ASCII case for hex-looking
// secrets (MySQL prints hashes in either case) and exactly otherwise.
func replaceFold(s, old, repl string) string {
	if !isHexish(old) {
		return strings.ReplaceAll(s, old, repl)
	}
	lower := strings.ToLower(s)
	lold := strings.ToLower(old)
	var b strings.Builder
	for {
		i := strings.Index(lower, lold)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(repl)
		s, lower = s[i+len(old):], lower[i+len(old):]
	}
}

func isHexish(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '*') {
			return false
		}
	}
	return true
}

// wrap turns err into a *rotator.Error whose Msg is format (scrubbed) and
// whose cause is err scrubbed; an err that already is a *rotator.Error is
// returned unchanged.
func (s *scrubber) wrap(err error, format string, args ...any) error {
	var re *rotator.Error
	if errors.As(err, &re) {
		return err
	}
	kind, cause := s.classify(err)
	return &rotator.Error{Kind: kind, Msg: s.clean(fmt.Sprintf(format, args...)), Err: cause}
}

// classify maps err to a Kind and a cause safe to store.
func (s *scrubber) classify(err error) (rotator.Kind, error) {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		msg := me.Message
		if me.Number == 1064 || me.Number == 1149 {
			// The message quotes the statement, which may hold a password.
			msg = "syntax error in a statement rotor built (the statement is not shown because it may contain a password)"
		}
		cause := &ServerError{Number: me.Number, Message: s.clean(msg)}
		if me.SQLState != [5]byte{} {
			cause.SQLState = string(me.SQLState[:])
		}
		return kindOfNumber(me.Number), cause
	}
	if ctxErr := contextError(err); ctxErr != nil {
		return rotator.KindUnreachable, &causeError{msg: s.clean(err.Error()), ctx: ctxErr}
	}
	cause := &causeError{msg: s.clean(err.Error())}
	var netErr net.Error
	var recErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &netErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, mysql.ErrMalformPkt),
		errors.Is(err, mysql.ErrNoTLS),
		errors.As(err, &recErr), errors.As(err, &certErr), errors.As(err, &unknownAuth),
		errors.As(err, &hostErr), errors.As(err, &invalid):
		return rotator.KindUnreachable, cause
	case errors.Is(err, mysql.ErrCleartextPassword), errors.Is(err, mysql.ErrOldPassword),
		errors.Is(err, mysql.ErrUnknownPlugin), errors.Is(err, mysql.ErrNativePassword):
		return rotator.KindAuth, cause
	}
	return rotator.KindTarget, cause
}

func contextError(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return context.Canceled
	}
	return nil
}

// kindOfNumber classifies a server error number.
func kindOfNumber(n uint16) rotator.Kind {
	switch n {
	case 1045, // ER_ACCESS_DENIED_ERROR: wrong password or unknown user
		1698, // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
		1130, // ER_HOST_NOT_PRIVILEGED: no account for the client's host
		1820, // ER_MUST_CHANGE_PASSWORD: expired password, sandbox mode
		1862: // ER_MUST_CHANGE_PASSWORD_LOGIN: expired password
		return rotator.KindAuth
	case 1044, // ER_DBACCESS_DENIED_ERROR
		1142, // ER_TABLEACCESS_DENIED_ERROR
		1143, // ER_COLUMNACCESS_DENIED_ERROR
		1227, // ER_SPECIFIC_ACCESS_DENIED_ERROR
		1370: // ER_PROCACCESS_DENIED_ERROR
		return rotator.KindPermission
	case 1040, // ER_CON_COUNT_ERROR: too many connections
		1053, // ER_SERVER_SHUTDOWN
		1129, // ER_HOST_IS_BLOCKED
		1203, // ER_TOO_MANY_USER_CONNECTIONS
		1226: // ER_USER_LIMIT_REACHED
		return rotator.KindUnreachable
	case 1819: // ER_NOT_VALID_PASSWORD: the password policy refuses it
		return rotator.KindInvalid
	}
	return rotator.KindTarget
}

// isAuthFailure reports whether err is a refused login, after which the
// next candidate password may be tried.
func isAuthFailure(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && kindOfNumber(me.Number) == rotator.KindAuth
}

// isExpired reports whether err says that the password was right but has
// expired: refused at login (1862, disconnect_on_expired_password) or
// accepted into sandbox mode, where statements fail with 1820.
func isExpired(err error) bool {
	n := serverErrorNumber(err)
	return n == 1862 || n == 1820
}

// serverErrorNumber returns the server's error number in err, or 0.
func serverErrorNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

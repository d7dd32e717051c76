package redis

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

// ServerError is an error reply of the server (such as "NOPERM this user
// has no permissions to run the 'acl|setuser' command"), with every
// password of the request and every SHA-256 hash of one removed. It is the
// Err of a *rotator.Error.
type ServerError struct {
	Message string
}

func (e *ServerError) Error() string { return e.Message }

// causeError is a scrubbed client-side cause. It unwraps to the context's
// error when there is one, so errors.Is(err, context.DeadlineExceeded)
// works.
type causeError struct {
	msg string
	ctx error
}

func (e *causeError) Error() string { return e.msg }
func (e *causeError) Unwrap() error { return e.ctx }

// scrubber holds the secrets of one call — every password of the request
// and its SHA-256 hash, which Redis quotes when it refuses an ACL SETUSER
// modifier — and keeps them out of error texts.
type scrubber []string

func newScrubber(passwords ...string) scrubber {
	var s scrubber
	for _, pw := range passwords {
		s = s.add(pw)
	}
	return s
}

func (s scrubber) add(pw string) scrubber {
	if pw == "" {
		return s
	}
	s = append(s, pw, passwordHash(pw))
	// Longest first, so that a password containing another goes whole.
	sort.SliceStable(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
	return s
}

func (s scrubber) clean(text string) string {
	for _, secret := range s {
		text = strings.ReplaceAll(text, secret, "[REDACTED]")
	}
	return text
}

// fail returns err, the failure of what (a format and its args), as a
// *rotator.Error whose cause is rebuilt from err's text with the secrets
// removed; an err that already is a *rotator.Error is returned unchanged.
func (s scrubber) fail(err error, format string, args ...any) error {
	var re *rotator.Error
	if errors.As(err, &re) {
		return err
	}
	kind, cause := s.classify(err)
	return &rotator.Error{Kind: kind, Msg: s.clean(fmt.Sprintf(format, args...)), Err: cause}
}

// cause is err rebuilt as a cause safe to store and show.
func (s scrubber) cause(err error) error {
	_, c := s.classify(err)
	return c
}

// classify returns err's kind and a cause safe to store and show.
func (s scrubber) classify(err error) (rotator.Kind, error) {
	var reply goredis.Error
	if errors.As(err, &reply) {
		msg := reply.Error()
		return kindOfReply(msg), &ServerError{Message: s.clean(msg)}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return rotator.KindUnreachable, &causeError{msg: s.clean(err.Error()), ctx: context.DeadlineExceeded}
	case errors.Is(err, context.Canceled):
		return rotator.KindUnreachable, &causeError{msg: s.clean(err.Error()), ctx: context.Canceled}
	}
	cause := &causeError{msg: s.clean(err.Error())}
	var netErr net.Error
	var recErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &netErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, goredis.ErrClosed),
		errors.Is(err, goredis.ErrPoolTimeout), errors.Is(err, goredis.ErrPoolExhausted),
		errors.As(err, &recErr), errors.As(err, &certErr), errors.As(err, &alert),
		errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &invalid):
		return rotator.KindUnreachable, cause
	}
	return rotator.KindTarget, cause
}

// kindOfReply classifies an error reply by its code (its first word).
//
//   - WRONGPASS (wrong password, unknown or disabled user) and NOAUTH are
//     KindAuth.
//   - NOPERM (the user may not run the command) is KindPermission.
//   - LOADING, BUSY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN and "max number of
//     clients reached" are KindUnreachable: transient.
//   - An unknown command or subcommand (ACL before Redis 6) is
//     KindInvalid: the secret names a server this package cannot rotate.
//   - Anything else is KindTarget.
func kindOfReply(msg string) rotator.Kind {
	code, _, _ := strings.Cut(msg, " ")
	switch code {
	case "WRONGPASS", "NOAUTH":
		return rotator.KindAuth
	case "NOPERM":
		return rotator.KindPermission
	case "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN":
		return rotator.KindUnreachable
	}
	switch {
	case strings.Contains(msg, "max number of clients reached"):
		return rotator.KindUnreachable
	case strings.HasPrefix(msg, "ERR unknown command"), strings.HasPrefix(msg, "ERR unknown subcommand"):
		return rotator.KindInvalid
	}
	return rotator.KindTarget
}

// authCause is the cause of a refused login, for an error that says more.
func authCause(err error) error {
	var re *rotator.Error
	if errors.As(err, &re) {
		return re.Err
	}
	return nil
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

// scrubber holds the secrets of one call — every password of the request
// and the verifier — and keeps them out of error texts.
type scrubber []string

func newScrubber(req rotator.SetRequest) scrubber {
	s := scrubber{req.Pending.Password, req.Current.Password}
	if req.Previous != nil {
		s = append(s, req.Previous.Password)
	}
	if req.Master != nil {
		s = append(s, req.Master.Password)
	}
	return s
}

func (s scrubber) clean(text string) string {
	for _, secret := range s {
		if secret != "" {
			text = strings.ReplaceAll(text, secret, "[REDACTED]")
		}
	}
	return text
}

// fail returns err, the failure of what (a format and its args), as a
// *rotator.Error. Its cause is rebuilt from the parts of err known to be
// free of secrets, never err itself: pgx's connection errors quote their
// configuration, and a server message may quote the statement it failed on.
func (s scrubber) fail(err error, format string, args ...any) error {
	var re *rotator.Error
	if errors.As(err, &re) {
		return err
	}
	kind, cause := s.classify(err)
	return rotator.Errorf(kind, cause, format, args...)
}

// classify returns err's kind and a cause safe to store and show.
func (s scrubber) classify(err error) (rotator.Kind, error) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return kindOf(pgErr.Code), &pgconn.PgError{
			Severity:            pgErr.Severity,
			SeverityUnlocalized: pgErr.SeverityUnlocalized,
			Code:                pgErr.Code,
			Message:             s.clean(pgErr.Message),
			Detail:              s.clean(pgErr.Detail),
			Hint:                s.clean(pgErr.Hint),
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		return rotator.KindUnreachable, context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return rotator.KindUnreachable, context.Canceled
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		// "dial tcp 127.0.0.1:5432: connect: connection refused"
		return rotator.KindUnreachable, errors.New(s.clean(opErr.Error()))
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return rotator.KindUnreachable, errors.New(s.clean(dnsErr.Error()))
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		// TLS refused or failed, the server hung up, a protocol error:
		// the cause's innermost message, without pgx's prefix (which
		// names the configuration).
		return rotator.KindUnreachable, fmt.Errorf("connection failed: %s", s.clean(leaf(err).Error()))
	}
	if pgconn.SafeToRetry(err) {
		return rotator.KindUnreachable, errors.New(s.clean(leaf(err).Error()))
	}
	return rotator.KindTarget, errors.New(s.clean(leaf(err).Error()))
}

// leaf is the innermost error of err's chain, following the first branch of
// joined errors.
func leaf(err error) error {
	for {
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			next := u.Unwrap()
			if next == nil {
				return err
			}
			err = next
		case interface{ Unwrap() []error }:
			errs := u.Unwrap()
			if len(errs) == 0 || errs[0] == nil {
				return err
			}
			err = errs[0]
		default:
			return err
		}
	}
}

// kindOf maps a SQLSTATE to a kind.
//
//   - Class 28 (invalid authorization: wrong password, unknown user, no
//     LOGIN, rejected by pg_hba.conf) is KindAuth.
//   - 42501 (insufficient privilege) is KindPermission.
//   - 42704 (undefined object: a role named by the secret does not exist
//     once logged in) and 3D000 (the database does not exist) are
//     KindInvalid: the secret names something the server does not have,
//     and retrying will not change that. An unknown user at login is
//     class 28, as PostgreSQL does not tell it from a wrong password.
//   - Class 08 (connection exception), class 53 (insufficient resources,
//     such as too many connections) and 57P01–57P03 (shutdown, cannot
//     connect now) are KindUnreachable: transient.
//   - Everything else is KindTarget.
func kindOf(code string) rotator.Kind {
	switch {
	case strings.HasPrefix(code, "28"):
		return rotator.KindAuth
	case code == "42501":
		return rotator.KindPermission
	case code == "42704", code == "3D000":
		return rotator.KindInvalid
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"),
		code == "57P01", code == "57P02", code == "57P03":
		return rotator.KindUnreachable
	}
	return rotator.KindTarget
}

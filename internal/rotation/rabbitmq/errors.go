package rabbitmq

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

// APIError is an answer of the management API other than 2xx, with every
// secret of the request removed. It is the Err of a *rotator.Error.
type APIError struct {
	Status int    // HTTP status, such as 401
	Code   string // the body's "error" field, such as "not_authorized"
	Reason string // the body's "reason" field, such as "Login failed"
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", e.Status)
	if e.Code != "" {
		b.WriteString(" (" + e.Code + ")")
	}
	if e.Reason != "" {
		b.WriteString(": " + e.Reason)
	}
	return b.String()
}

// newAPIError reads the {"error": …, "reason": …} body RabbitMQ sends with
// every failure; a body of another shape (a proxy's HTML page) is kept, in
// short, as the reason.
func newAPIError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var v struct {
		Error  string          `json:"error"`
		Reason json.RawMessage `json:"reason"`
	}
	if json.Unmarshal(body, &v) == nil && (v.Error != "" || len(v.Reason) > 0) {
		e.Code = v.Error
		var s string
		if json.Unmarshal(v.Reason, &s) == nil {
			e.Reason = s
		} else {
			e.Reason = string(v.Reason)
		}
	} else {
		e.Reason = string(body)
	}
	e.Reason = shorten(e.Reason, 300)
	return e
}

// shorten keeps the first n bytes of s on one line.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// loginFailed reports whether a 401 says the credentials are wrong, as
// opposed to right but lacking a tag: RabbitMQ answers
// {"error":"not_authorized","reason":"Login failed"} to a wrong password or
// an unknown user, and {"error":"not_authorised","reason":"Not management
// user"} (or "Not administrator user", …) to a user without the tag an
// endpoint needs — after checking the password.
func (e *APIError) loginFailed() bool {
	if e.Status != http.StatusUnauthorized {
		return false
	}
	return !e.missingTag()
}

func (e *APIError) missingTag() bool {
	if e.Status != http.StatusUnauthorized {
		return false
	}
	if e.Reason == "Login failed" {
		return false
	}
	return strings.HasPrefix(e.Reason, "Not ") && strings.HasSuffix(e.Reason, " user") || e.Code == "not_authorised"
}

// notManagementUser reports whether err is the answer of an endpoint that
// needs the management tag to a user who proved its password but lacks the
// tag.
func notManagementUser(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusUnauthorized && e.Reason == "Not management user"
}

// isNotFound reports whether err is a 404.
func isNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// kind classifies an answer.
func (e *APIError) kind() rotator.Kind {
	switch {
	case e.loginFailed():
		return rotator.KindAuth
	case e.missingTag(), e.Status == http.StatusForbidden:
		return rotator.KindPermission
	case e.Status == http.StatusTooManyRequests, e.Status == http.StatusBadGateway,
		e.Status == http.StatusServiceUnavailable, e.Status == http.StatusGatewayTimeout:
		return rotator.KindUnreachable
	}
	return rotator.KindTarget
}

// handshakeError is a failed TLS handshake on an established connection:
// the only failure after which sslmode=prefer tries plain HTTP.
type handshakeError struct{ err error }

func (e *handshakeError) Error() string { return "TLS handshake failed: " + e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// causeError is a scrubbed client-side cause. It unwraps to the context's
// error when there is one, so errors.Is(err, context.DeadlineExceeded)
// works.
type causeError struct {
	msg string
	ctx error
}

func (e *causeError) Error() string { return e.msg }
func (e *causeError) Unwrap() error { return e.ctx }

// scrubber holds the secrets of one call and keeps them out of messages:
// every password, in the forms it travels in (JSON-escaped, and in the
// Basic authorization header), and every stored password hash read.
type scrubber struct{ secrets []string }

func newScrubber(creds ...*rotator.Credentials) *scrubber {
	s := &scrubber{}
	for _, c := range creds {
		if c != nil {
			s.addLogin(*c)
		}
	}
	return s
}

// add registers a secret.
func (s *scrubber) add(secret string) {
	if secret == "" {
		return
	}
	s.secrets = append(s.secrets, secret)
	if b, err := json.Marshal(secret); err == nil {
		if esc := string(b[1 : len(b)-1]); esc != secret {
			s.secrets = append(s.secrets, esc)
		}
	}
}

// addLogin registers c's password and its Basic authorization token.
func (s *scrubber) addLogin(c rotator.Credentials) {
	if c.Password == "" {
		return
	}
	s.add(c.Password)
	s.add(base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password)))
}

// clean replaces every secret in msg, longest first, so that a secret that
// contains another is removed whole.
func (s *scrubber) clean(msg string) string {
	order := append([]string(nil), s.secrets...)
	sort.SliceStable(order, func(i, j int) bool { return len(order[i]) > len(order[j]) })
	for _, sec := range order {
		msg = strings.ReplaceAll(msg, sec, "[REDACTED]")
	}
	return msg
}

// fail returns err, the failure of what (a format and its args, which
// never hold a secret), as a *rotator.Error whose cause is rebuilt from err
// with every secret removed. An err that already is a *rotator.Error is
// returned unchanged.
func (s *scrubber) fail(err error, format string, args ...any) error {
	var re *rotator.Error
	if errors.As(err, &re) {
		return err
	}
	kind, cause := s.classify(err)
	return &rotator.Error{Kind: kind, Msg: s.clean(fmt.Sprintf(format, args...)), Err: cause}
}

// classify maps err to a Kind and a cause safe to store.
func (s *scrubber) classify(err error) (rotator.Kind, error) {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.kind(), &APIError{Status: apiErr.Status, Code: s.clean(apiErr.Code), Reason: s.clean(apiErr.Reason)}
	}
	// A url.Error's text names the request's URL, which holds user names
	// but no password; scrubbed all the same.
	msg := s.clean(err.Error())
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return rotator.KindUnreachable, &causeError{msg: msg, ctx: context.DeadlineExceeded}
	case errors.Is(err, context.Canceled):
		return rotator.KindUnreachable, &causeError{msg: msg, ctx: context.Canceled}
	}
	var netErr net.Error
	var hsErr *handshakeError
	var recErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &netErr), errors.As(err, &hsErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &recErr), errors.As(err, &certErr), errors.As(err, &unknownAuth),
		errors.As(err, &hostErr), errors.As(err, &invalid):
		return rotator.KindUnreachable, &causeError{msg: msg}
	}
	return rotator.KindTarget, &causeError{msg: msg}
}

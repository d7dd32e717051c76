package secrets

import (
	"errors"
	"fmt"
)

// Kind classifies a domain error. The set is closed; internal/awsapi maps each
// kind to exactly one AWS error code.
type Kind int

// The kinds of domain error.
const (
	KindInternal          Kind = iota // a server fault; the message is not shown to clients
	KindNotFound                      // the secret, version or label does not exist
	KindExists                        // the name or version id is taken
	KindInvalidParameter              // a parameter value is not acceptable
	KindInvalidRequest                // the parameters are fine but the secret's state forbids the call
	KindValidation                    // a parameter violates the service model's constraints
	KindLimitExceeded                 // a quota would be exceeded
	KindDecryptionFailure             // a stored value cannot be decrypted
	KindEncryptionFailure             // a value cannot be encrypted
	KindMalformedPolicy               // a resource policy is not a valid document
	KindPublicPolicy                  // a resource policy grants public access while that is blocked
	KindInvalidNextToken              // a pagination token is not one we issued
	KindAccessDenied                  // the caller may not do this (e.g. an unknown rotation function)
)

// Error is the domain's typed error. Msg is safe to show to the client: it
// never contains a secret value.
type Error struct {
	Kind Kind
	Msg  string
	Err  error // the cause, for logs only (KindInternal)
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

func internal(msg string, err error) *Error {
	return &Error{Kind: KindInternal, Msg: msg, Err: err}
}

// KindOf returns the kind of err: the Kind of a wrapped *Error, otherwise
// KindInternal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// Messages AWS clients (Terraform, ESO) match on; keep them verbatim.
const (
	msgNotFound         = "Secrets Manager can't find the specified secret."
	msgMarkedForDelete  = "You can't perform this operation on the secret because it was marked for deletion."
	msgNameScheduled    = "You can't create this secret because a secret with this name is already scheduled for deletion."
	msgPreviousRotation = "A previous rotation isn't complete. That rotation will be reattempted."
)

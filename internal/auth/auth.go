// Package auth authenticates requests: AWS Signature Version 4 verification
// and the access keys it checks signatures against.
//
// A Verifier checks one request's Authorization header, signed headers,
// payload hash, date and clock skew against the secret half of the access key
// the request names, which a KeySource supplies. Failures are *Error values
// with a Code that internal/awsapi maps to AWS's error codes; their messages
// never contain key material. Signatures are compared in constant time.
package auth

// Principal is an authenticated caller.
type Principal struct {
	ARN         string // arn:aws:iam::ACCOUNT:root or arn:aws:iam::ACCOUNT:user/NAME
	AccessKeyID string
	Root        bool
}

// Code classifies an authentication failure.
type Code int

// The authentication failures, after AWS's codes.
const (
	// CodeMissingToken: no Authorization header (MissingAuthenticationTokenException).
	CodeMissingToken Code = iota + 1
	// CodeUnrecognizedClient: the access key id is unknown or inactive (UnrecognizedClientException).
	CodeUnrecognizedClient
	// CodeInvalidSignature: the signature does not match, the date is outside
	// the allowed skew, or the scope names another region or service
	// (InvalidSignatureException).
	CodeInvalidSignature
	// CodeIncompleteSignature: the Authorization header is malformed or lacks
	// a part (IncompleteSignature).
	CodeIncompleteSignature
)

// Error is an authentication failure; Msg is safe to return to the client.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

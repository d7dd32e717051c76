// Package auth authenticates requests: AWS Signature Version 4 verification
// and the access keys it checks signatures against.
//
// A Verifier checks one request's Authorization header, signed headers,
// payload hash, date and clock skew against the secret half of the access key
// the request names, which a KeySource supplies. StoreKeys is the KeySource
// of a server: keys live in the store with their secret sealed by the
// keyring, and are cached in memory once read. Only the Authorization-header
// form of AWS4-HMAC-SHA256 is accepted: no presigned URLs, no SigV4a, and the
// body is always signed (a mismatching X-Amz-Content-Sha256, including
// UNSIGNED-PAYLOAD, is rejected).
//
// Failures the client caused are *Error values with a Code that
// internal/awsapi maps to AWS's error codes; their messages never contain key
// material, the expected signature or the canonical request. Any other error
// from Verify is an internal failure of the KeySource. Signatures are
// compared in constant time.
//
// Verifier and StoreKeys are safe for concurrent use.
package auth

// Principal is an authenticated caller.
type Principal struct {
	ARN         string // arn:aws:iam::ACCOUNT:root, arn:aws:iam::ACCOUNT:user/NAME or a session's
	AccessKeyID string
	Root        bool
	// SessionPolicy is the identity policy of temporary credentials
	// (SessionKeys): their only one. "" for users and root.
	SessionPolicy string
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
	// a part (IncompleteSignatureException).
	CodeIncompleteSignature
)

// Error is an authentication failure; Msg is safe to return to the client.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

package awsapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/iam"
	"github.com/rotor-secrets/rotor/internal/secrets"
)

// reqKind classifies a failure of the protocol layer itself, before the
// service is called.
type reqKind int

const (
	reqMethod           reqKind = iota + 1 // not POST
	reqUnknownOperation                    // X-Amz-Target missing or unknown
	reqTooLarge                            // body over Config.MaxBodyBytes
	reqUnreadable                          // reading the body failed
	reqSerialization                       // body is not the operation's JSON shape
)

// requestError is a protocol-layer failure. msg is shown to the client and
// never contains a value from the request body; cause is for the log.
type requestError struct {
	kind  reqKind
	msg   string
	cause error
}

func (e *requestError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *requestError) Unwrap() error { return e.cause }

func serializationError(msg string) error {
	return &requestError{kind: reqSerialization, msg: msg}
}

// Errors of a sealed server (see internal/server), answered with
// WriteError.
var (
	// ErrSealed answers every request but health checks and rotor.Unseal
	// while the master key is sealed: 503 ServiceUnavailableException.
	ErrSealed = errors.New("rotor is sealed")
	// ErrUnsealThrottled answers unseal attempts that come too fast: 429
	// ThrottlingException.
	ErrUnsealThrottled = errors.New("unseal attempts throttled")
)

// InvalidPassphraseError answers an unseal attempt whose passphrase is
// wrong, missing or not acceptable: 400 InvalidPassphraseException with Msg,
// which is client-safe and never contains the passphrase.
type InvalidPassphraseError struct{ Msg string }

func (e *InvalidPassphraseError) Error() string { return "invalid passphrase: " + e.Msg }

// WriteError answers err as the API does, for handlers outside Handler
// (the sealed server's): the status, the X-Amzn-ErrorType header, a new
// request id and the JSON error body.
func WriteError(w http.ResponseWriter, err error) {
	id := newRequestID()
	we := wireErrorOf(err, id)
	body := we.body()
	hdr := w.Header()
	hdr.Set(headerRequestID, id)
	hdr.Set(headerErrorType, we.Code)
	hdr.Set("Content-Type", contentType)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(we.Status)
	_, _ = w.Write(body)
}

// wireError is an error as it goes on the wire.
type wireError struct {
	Status  int
	Code    string // the __type
	Message string
}

// The code AWS uses for server faults.
const codeInternal = "InternalServiceError"

// wireErrorOf maps any error the handler meets to its HTTP status, AWS error
// code and client-visible message. It is the only such mapping in Rotor.
//
// Domain errors (*secrets.Error) map by Kind and keep their Msg, which is
// client-safe by contract. Authentication failures (*auth.Error) map by Code;
// their statuses are 400, as AWS's JSON-protocol endpoints answer them
// (AWS's common-errors page lists the Query-protocol spellings
// MissingAuthenticationToken and InvalidClientTokenId with 403, but Secrets
// Manager answers UnrecognizedClientException with 400). KindInternal and any
// error not listed here become a 500 InternalServiceError whose message only
// names the request id, so no internal detail leaks.
func wireErrorOf(err error, requestID string) wireError {
	var re *requestError
	var ae *auth.Error
	var se *secrets.Error
	var ie *iam.Error
	var te *throttleError
	var pe *InvalidPassphraseError
	switch {
	case errors.As(err, &re):
		switch re.kind {
		case reqMethod:
			return wireError{http.StatusMethodNotAllowed, "InvalidAction", re.msg}
		case reqUnknownOperation:
			return wireError{http.StatusBadRequest, "UnknownOperationException", re.msg}
		case reqTooLarge:
			return wireError{http.StatusRequestEntityTooLarge, "ValidationException", re.msg}
		case reqUnreadable, reqSerialization:
			return wireError{http.StatusBadRequest, "SerializationException", re.msg}
		}
	case errors.As(err, &ae):
		code, def := "", ""
		switch ae.Code {
		case auth.CodeMissingToken:
			code, def = "MissingAuthenticationTokenException", "Missing Authentication Token"
		case auth.CodeUnrecognizedClient:
			code, def = "UnrecognizedClientException", "The security token included in the request is invalid."
		case auth.CodeInvalidSignature:
			code, def = "InvalidSignatureException", "The request signature we calculated does not match the signature you provided."
		case auth.CodeIncompleteSignature:
			code, def = "IncompleteSignatureException", "The request signature does not conform to AWS standards."
		}
		if code != "" {
			return wireError{http.StatusBadRequest, code, orDefault(ae.Msg, def)}
		}
	case errors.As(err, &se):
		if code := kindCodes[se.Kind]; code != "" {
			return wireError{http.StatusBadRequest, code, orDefault(se.Msg, code)}
		}
	case errors.As(err, &ie):
		if c, ok := iamCodes[ie.Kind]; ok {
			return wireError{c.status, c.code, orDefault(ie.Msg, c.code)}
		}
	case errors.As(err, &te):
		return wireError{http.StatusBadRequest, "ThrottlingException", "Rate exceeded"}
	case errors.Is(err, ErrSealed):
		return wireError{http.StatusServiceUnavailable, "ServiceUnavailableException", "Rotor is sealed: unseal it with `rotor unseal`"}
	case errors.As(err, &pe):
		return wireError{http.StatusBadRequest, "InvalidPassphraseException", orDefault(pe.Msg, "Invalid passphrase")}
	case errors.Is(err, ErrUnsealThrottled):
		return wireError{http.StatusTooManyRequests, "ThrottlingException", "Too many unseal attempts: wait and retry"}
	}
	return wireError{http.StatusInternalServerError, codeInternal,
		"An internal error occurred on the server. Request id: " + requestID}
}

// kindCodes names the AWS error code of each client-error Kind; all are
// HTTP 400. KindInternal is absent on purpose.
var kindCodes = map[secrets.Kind]string{
	secrets.KindNotFound:          "ResourceNotFoundException",
	secrets.KindExists:            "ResourceExistsException",
	secrets.KindInvalidParameter:  "InvalidParameterException",
	secrets.KindInvalidRequest:    "InvalidRequestException",
	secrets.KindValidation:        "ValidationException",
	secrets.KindLimitExceeded:     "LimitExceededException",
	secrets.KindDecryptionFailure: "DecryptionFailure",
	secrets.KindEncryptionFailure: "EncryptionFailure",
	secrets.KindMalformedPolicy:   "MalformedPolicyDocumentException",
	secrets.KindPublicPolicy:      "PublicPolicyException",
	secrets.KindInvalidNextToken:  "InvalidNextTokenException",
	secrets.KindAccessDenied:      "AccessDeniedException",
}

// iamCodes are the codes and statuses of the administrative errors, as IAM
// answers them. KindInternal is absent on purpose.
var iamCodes = map[iam.Kind]struct {
	status int
	code   string
}{
	iam.KindNoSuchEntity:    {http.StatusNotFound, "NoSuchEntityException"},
	iam.KindEntityExists:    {http.StatusConflict, "EntityAlreadyExistsException"},
	iam.KindInvalidInput:    {http.StatusBadRequest, "InvalidInputException"},
	iam.KindMalformedPolicy: {http.StatusBadRequest, "MalformedPolicyDocumentException"},
	iam.KindLimitExceeded:   {http.StatusConflict, "LimitExceededException"},
	iam.KindDeleteConflict:  {http.StatusConflict, "DeleteConflictException"},
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// body is the JSON error body AWS sends: {"__type":"…","Message":"…"}.
func (we wireError) body() []byte {
	b := make([]byte, 0, len(we.Code)+len(we.Message)+32)
	b = append(b, `{"__type":`...)
	b = appendString(b, we.Code)
	b = append(b, `,"Message":`...)
	b = appendString(b, we.Message)
	return append(b, '}')
}

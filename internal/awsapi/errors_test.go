package awsapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/secrets"
)

const testRequestID = "5f0e0d5c-8a4f-4c1e-9d7b-1f2e3d4c5b6a"

func TestWireErrorOfKinds(t *testing.T) {
	tests := []struct {
		kind secrets.Kind
		code string
	}{
		{secrets.KindNotFound, "ResourceNotFoundException"},
		{secrets.KindExists, "ResourceExistsException"},
		{secrets.KindInvalidParameter, "InvalidParameterException"},
		{secrets.KindInvalidRequest, "InvalidRequestException"},
		{secrets.KindValidation, "ValidationException"},
		{secrets.KindLimitExceeded, "LimitExceededException"},
		{secrets.KindDecryptionFailure, "DecryptionFailure"},
		{secrets.KindEncryptionFailure, "EncryptionFailure"},
		{secrets.KindMalformedPolicy, "MalformedPolicyDocumentException"},
		{secrets.KindPublicPolicy, "PublicPolicyException"},
		{secrets.KindInvalidNextToken, "InvalidNextTokenException"},
		{secrets.KindAccessDenied, "AccessDeniedException"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			err := &secrets.Error{Kind: tt.kind, Msg: "Secrets Manager can't find the specified secret.", Err: errors.New("cause")}
			for name, e := range map[string]error{
				"bare":    err,
				"wrapped": fmt.Errorf("describe: %w", err),
			} {
				got := wireErrorOf(e, testRequestID)
				want := wireError{400, tt.code, "Secrets Manager can't find the specified secret."}
				if got != want {
					t.Errorf("%s: got %+v, want %+v", name, got, want)
				}
			}
		})
	}
	// Every kind up to the last one declared is mapped to a client error,
	// except KindInternal.
	for k := secrets.KindInternal + 1; k <= secrets.KindAccessDenied; k++ {
		if kindCodes[k] == "" {
			t.Errorf("Kind %d has no AWS error code", k)
		}
	}
}

func TestWireErrorOfInternal(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"KindInternal", &secrets.Error{Kind: secrets.KindInternal, Msg: "seal version", Err: errors.New("keyring: master key 3 missing")}},
		{"KindInternal without cause", &secrets.Error{Kind: secrets.KindInternal, Msg: "store: constraint violated on secrets.name"}},
		{"unknown Kind", &secrets.Error{Kind: secrets.Kind(1000), Msg: "future kind detail"}},
		{"plain error", errors.New("sql: database is closed")},
		{"context canceled", context.Canceled},
		{"unknown auth code", &auth.Error{Code: 0, Msg: "zero code detail"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wireErrorOf(tt.err, testRequestID)
			if got.Status != 500 || got.Code != "InternalServiceError" {
				t.Errorf("got %d %s, want 500 InternalServiceError", got.Status, got.Code)
			}
			if !strings.Contains(got.Message, testRequestID) {
				t.Errorf("message %q lacks the request id", got.Message)
			}
			for _, detail := range []string{"keyring", "master key", "store", "sql", "canceled", "detail", "seal"} {
				if strings.Contains(got.Message, detail) {
					t.Errorf("message %q leaks %q", got.Message, detail)
				}
			}
		})
	}
}

func TestWireErrorOfAuthAndProtocol(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want wireError
	}{
		{"missing token", &auth.Error{Code: auth.CodeMissingToken, Msg: "m"}, wireError{400, "MissingAuthenticationTokenException", "m"}},
		{"unrecognized client", &auth.Error{Code: auth.CodeUnrecognizedClient, Msg: "m"}, wireError{400, "UnrecognizedClientException", "m"}},
		{"invalid signature", &auth.Error{Code: auth.CodeInvalidSignature, Msg: "m"}, wireError{400, "InvalidSignatureException", "m"}},
		{"incomplete signature", &auth.Error{Code: auth.CodeIncompleteSignature, Msg: "m"}, wireError{400, "IncompleteSignatureException", "m"}},
		{"wrapped auth", fmt.Errorf("verify: %w", &auth.Error{Code: auth.CodeInvalidSignature, Msg: "m"}), wireError{400, "InvalidSignatureException", "m"}},
		{"method", &requestError{kind: reqMethod, msg: "m"}, wireError{405, "InvalidAction", "m"}},
		{"unknown operation", &requestError{kind: reqUnknownOperation, msg: "m"}, wireError{400, "UnknownOperationException", "m"}},
		{"too large", &requestError{kind: reqTooLarge, msg: "m"}, wireError{413, "ValidationException", "m"}},
		{"unreadable", &requestError{kind: reqUnreadable, msg: "m", cause: errors.New("reset")}, wireError{400, "SerializationException", "m"}},
		{"serialization", serializationError("m"), wireError{400, "SerializationException", "m"}},
		{"domain error without message", &secrets.Error{Kind: secrets.KindNotFound}, wireError{400, "ResourceNotFoundException", "ResourceNotFoundException"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wireErrorOf(tt.err, testRequestID); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestErrorBody(t *testing.T) {
	got := string(wireError{400, "InvalidRequestException", "a \"quoted\"\nline <b>"}.body())
	want := `{"__type":"InvalidRequestException","Message":"a \"quoted\"\nline <b>"}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

package awsapi

import (
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/rotor-secrets/rotor/internal/audit"
	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/secrets"
)

// errThrottled answers a request over its access key's rate limit.
var errThrottled = &throttleError{}

type throttleError struct{}

func (*throttleError) Error() string { return "Rate exceeded" }

// errAuditFailed replaces the answer of a request whose audit record could
// not be written.
var errAuditFailed = errors.New("the audit record could not be written")

// action is the IAM action of the request: "secretsmanager:GetSecretValue"
// or "rotor:CreateUser".
func (x *exchange) action() string {
	t := x.target
	if i := strings.IndexByte(t, '.'); i > 0 {
		return t[:i] + ":" + t[i+1:]
	}
	return t
}

// sourceIP is the host part of a RemoteAddr.
func sourceIP(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// claimedKeyID is the access key id an Authorization header names, for the
// audit record of a request whose authentication failed; "" when there is
// none. It is only what the caller claimed.
func claimedKeyID(r *http.Request) string {
	h := r.Header.Get("Authorization")
	i := strings.Index(h, "Credential=")
	if i < 0 {
		return ""
	}
	id := h[i+len("Credential="):]
	if j := strings.IndexAny(id, "/, "); j >= 0 {
		id = id[:j]
	}
	if len(id) > 128 {
		id = id[:128]
	}
	return id
}

// record writes the request's audit records before its response: one for
// the request, and for BatchGetSecretValue one GetSecretValue record per
// secret asked for, as CloudTrail does. A request that was not
// authenticated, or failed before it named a known operation, is recorded
// too. It returns errAuditFailed (fail-closed) when a record cannot be
// written.
func (h *Handler) record(r *http.Request, x *exchange) error {
	if h.audit == nil || x.audited {
		return nil
	}
	x.audited = true
	base := audit.Record{
		Time:         x.start.UTC(),
		Type:         "request",
		EventName:    x.opName(),
		RequestID:    x.info.id,
		PrincipalARN: x.info.principal.ARN,
		AccessKeyID:  x.info.principal.AccessKeyID,
		SourceIP:     sourceIP(r.RemoteAddr),
		UserAgent:    truncate(r.UserAgent(), 256),
		Outcome:      audit.OutcomeSuccess,
	}
	if base.EventName == "" {
		// No known operation: name what was asked for.
		base.EventName = truncate(x.target, maxLoggedTarget)
		if base.EventName == "" {
			base.EventName = truncate(r.Method+" "+r.URL.Path, maxLoggedTarget)
		}
	}
	if !x.info.authed {
		base.AccessKeyID = claimedKeyID(r)
	}
	if x.err != nil {
		we := wireErrorOf(x.err, x.info.id)
		base.ErrorCode = we.Code
		base.Outcome = outcomeOf(x.err, we)
		if we.Status < http.StatusInternalServerError {
			base.Message = truncate(we.Message, 512)
		}
	}
	recs := []audit.Record{base}
	if c := x.caller; c != nil {
		var first *secrets.Access
		if len(c.Accesses) > 0 {
			first = c.Accesses[0]
		}
		if x.err != nil && len(c.Denied) > 0 {
			first = c.Denied[0]
		}
		if first != nil {
			recs[0].SecretARN, recs[0].VersionID, recs[0].VersionStage = first.SecretARN, first.VersionID, first.VersionStage
		}
		if x.op != nil && x.op.name == "BatchGetSecretValue" && x.err == nil {
			for _, a := range c.Accesses {
				rec := base
				rec.EventName = "GetSecretValue"
				rec.SecretARN, rec.VersionID, rec.VersionStage = a.SecretARN, a.VersionID, a.VersionStage
				if a.Missing {
					rec.Outcome, rec.ErrorCode = audit.OutcomeError, "ResourceNotFoundException"
				}
				recs = append(recs, rec)
			}
			for _, a := range c.Denied {
				rec := base
				rec.EventName, rec.Outcome, rec.ErrorCode = "GetSecretValue", audit.OutcomeDenied, "AccessDeniedException"
				rec.SecretARN = a.SecretARN
				recs = append(recs, rec)
			}
		}
	}
	for _, rec := range recs {
		if _, err := h.audit.Append(r.Context(), rec); err != nil {
			if h.metrics != nil {
				h.metrics.AuditWriteFailure()
			}
			h.log.ErrorContext(r.Context(), "audit write failed; request refused",
				"request_id", x.info.id, "operation", x.opName(), "error", err.Error())
			return errAuditFailed
		}
	}
	return nil
}

// outcomeOf classifies a failed request for its audit record.
func outcomeOf(err error, we wireError) string {
	var ae *auth.Error
	var re *requestError
	switch {
	case errors.As(err, &ae):
		return audit.OutcomeAuthFailed
	case secrets.KindOf(err) == secrets.KindAccessDenied:
		return audit.OutcomeDenied
	case errors.As(err, &re), we.Code == "ValidationException", we.Code == "InvalidParameterException",
		we.Code == "SerializationException", we.Code == "InvalidInputException":
		return audit.OutcomeInvalid
	}
	return audit.OutcomeError
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

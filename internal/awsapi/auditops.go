package awsapi

import (
	"context"
	"encoding/base64"
	"math"
	"strconv"
	"time"

	"github.com/rotor-secrets/rotor/internal/audit"
	"github.com/rotor-secrets/rotor/internal/secrets"
)

// rotor.LookupEvents: a search of the audit log, served when
// Config.AuditLog is set, shaped after CloudTrail's LookupEvents (filters,
// StartTime and EndTime in epoch seconds, MaxResults, NextToken). The whole
// log is one resource: the caller needs rotor:LookupEvents on "*".

var auditOperations = rotorOps(op("LookupEvents", lookupEventsIn, lookupEvents))

// Bounds of LookupEvents' members.
const (
	defaultLookupResults = 50
	maxLookupResults     = 1000
	maxFilterLen         = audit.MaxFieldLen
	// maxAuditTokenLen bounds a NextToken: base64 of a 20-digit seq.
	maxAuditTokenLen = 64
	// maxEpochSeconds is the last second of year 9999.
	maxEpochSeconds = 253402300799
)

type lookupEventsRequest struct {
	PrincipalArn string
	SecretId     string
	EventName    string
	Outcome      string
	StartTime    *float64
	EndTime      *float64
	MaxResults   *int64
	NextToken    string
}

type auditEventOut struct {
	Seq          uint64
	Time         epochTime
	Type         string
	EventName    string
	RequestId    string `json:",omitempty"`
	PrincipalArn string `json:",omitempty"`
	AccessKeyId  string `json:",omitempty"`
	SourceIp     string `json:",omitempty"`
	UserAgent    string `json:",omitempty"`
	SecretArn    string `json:",omitempty"`
	VersionId    string `json:",omitempty"`
	VersionStage string `json:",omitempty"`
	Outcome      string
	ErrorCode    string `json:",omitempty"`
	Message      string `json:",omitempty"`
}

type lookupEventsOut struct {
	Events    []auditEventOut
	NextToken string `json:",omitempty"`
}

type lookupEventsInput struct {
	filter audit.Filter
	max    int
	after  uint64
}

// validationError is the Secrets Manager API's model-constraint error
// (ValidationException). It never repeats the member's value.
func validationError(member, constraint string) error {
	return &secrets.Error{Kind: secrets.KindValidation,
		Msg: "1 validation error detected: Value at '" + member + "' failed to satisfy constraint: " + constraint}
}

var errInvalidNextToken = &secrets.Error{Kind: secrets.KindInvalidNextToken, Msg: "The NextToken value is invalid."}

func lookupEventsIn(w *lookupEventsRequest) (lookupEventsInput, error) {
	in := lookupEventsInput{
		filter: audit.Filter{Principal: w.PrincipalArn, SecretARN: w.SecretId, EventName: w.EventName, Outcome: w.Outcome},
		max:    defaultLookupResults,
	}
	for _, m := range []struct{ name, v string }{
		{"principalArn", w.PrincipalArn}, {"secretId", w.SecretId}, {"eventName", w.EventName},
	} {
		if len(m.v) > maxFilterLen {
			return in, validationError(m.name, "Member must have length less than or equal to "+strconv.Itoa(maxFilterLen))
		}
	}
	switch w.Outcome {
	case "", audit.OutcomeSuccess, audit.OutcomeDenied, audit.OutcomeAuthFailed, audit.OutcomeInvalid, audit.OutcomeError:
	default:
		return in, validationError("outcome", "Member must satisfy enum value set: ["+
			audit.OutcomeSuccess+", "+audit.OutcomeDenied+", "+audit.OutcomeAuthFailed+", "+
			audit.OutcomeInvalid+", "+audit.OutcomeError+"]")
	}
	var err error
	if in.filter.Start, err = epochIn("startTime", w.StartTime); err != nil {
		return in, err
	}
	if in.filter.End, err = epochIn("endTime", w.EndTime); err != nil {
		return in, err
	}
	if !in.filter.Start.IsZero() && !in.filter.End.IsZero() && in.filter.End.Before(in.filter.Start) {
		return in, &secrets.Error{Kind: secrets.KindInvalidParameter, Msg: "EndTime must not be before StartTime."}
	}
	if w.MaxResults != nil {
		if *w.MaxResults < 1 || *w.MaxResults > maxLookupResults {
			return in, validationError("maxResults", "Member must have value between 1 and "+strconv.Itoa(maxLookupResults))
		}
		in.max = int(*w.MaxResults)
	}
	if w.NextToken != "" {
		seq, ok := decodeSeqToken(w.NextToken)
		if !ok {
			return in, errInvalidNextToken
		}
		in.after = seq
	}
	return in, nil
}

// epochIn converts an epoch-seconds time member; nil is the zero time.
func epochIn(member string, v *float64) (time.Time, error) {
	if v == nil {
		return time.Time{}, nil
	}
	if *v < 0 || *v > maxEpochSeconds {
		return time.Time{}, validationError(member, "Member must be a time between 1970 and 9999 in epoch seconds")
	}
	sec, frac := math.Modf(*v)
	return time.Unix(int64(sec), int64(math.Round(frac*1e3))*1e6).UTC(), nil
}

// encodeSeqToken and decodeSeqToken make a continuation seq opaque: the
// URL-safe base64 of its decimal digits. Tokens are validated, not
// trusted: a token must decode to a positive decimal seq written the way
// encodeSeqToken writes it, small enough for an int64 (outbox seqs are).
func encodeSeqToken(seq uint64) string {
	return base64.RawURLEncoding.EncodeToString(strconv.AppendUint(nil, seq, 10))
}

func decodeSeqToken(tok string) (uint64, bool) {
	if len(tok) > maxAuditTokenLen {
		return 0, false
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) == 0 || b[0] == '0' {
		return 0, false
	}
	seq, err := strconv.ParseUint(string(b), 10, 63)
	if err != nil {
		return 0, false
	}
	return seq, true
}

func lookupEvents(ctx context.Context, h *Handler, in lookupEventsInput) (any, error) {
	if h.iam != nil {
		if err := h.iam.Check(ctx, "*"); err != nil {
			return nil, err
		}
	}
	recs, next, err := h.auditLog.Search(ctx, in.filter, in.max, in.after)
	if err != nil {
		return nil, err
	}
	out := lookupEventsOut{Events: make([]auditEventOut, len(recs))}
	for i, r := range recs {
		out.Events[i] = auditEventOut{
			Seq: r.Seq, Time: epochTime(r.Time), Type: r.Type, EventName: r.EventName, RequestId: r.RequestID,
			PrincipalArn: r.PrincipalARN, AccessKeyId: r.AccessKeyID, SourceIp: r.SourceIP, UserAgent: r.UserAgent,
			SecretArn: r.SecretARN, VersionId: r.VersionID, VersionStage: r.VersionStage,
			Outcome: r.Outcome, ErrorCode: r.ErrorCode, Message: r.Message,
		}
	}
	if next != 0 {
		out.NextToken = encodeSeqToken(next)
	}
	return out, nil
}

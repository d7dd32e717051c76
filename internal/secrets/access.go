package secrets

import (
	"context"
	"errors"

	"github.com/rotor-secrets/rotor/internal/arn"
)

// Access is one authorization question the service asks through
// Config.Authorize before it acts on a secret, or on no secret for the
// operations that have none (GetRandomPassword, ListSecrets as a whole).
//
// The service asks while it resolves the SecretId of every operation, so
// that nothing is read or changed before the answer; for a SecretId that
// names no secret it asks about the ARN the caller named (or the name's
// ARN without its random suffix) and answers ResourceNotFoundException only
// when that is allowed, so a denied caller cannot probe which secrets exist.
type Access struct {
	// Action is "secretsmanager:<Operation>"; "" means the operation of the
	// request itself, which the authorizer knows from the context. It is set
	// where they differ: GetSecretValue for each secret of
	// BatchGetSecretValue, ListSecrets for each result of ListSecrets.
	Action string
	// SecretARN is the secret's ARN; "" for an action without a resource.
	SecretARN string
	Name      string // the secret's name, "" when SecretARN is ""
	SecretID  string // the SecretId as the caller gave it
	// ResourcePolicy is the secret's resource policy document, "" if none.
	ResourcePolicy string
	ResourceTags   []Tag
	// RequestTags and TagKeys are the tags a request sets or removes
	// (CreateSecret, TagResource, UntagResource).
	RequestTags []Tag
	TagKeys     []string
	// VersionID and VersionStage are the version a request names; after a
	// GetSecretValue the service sets them to the version it returned, on
	// the same Access, so an authorizer that keeps it for the audit record
	// sees what was served.
	VersionID    string
	VersionStage string
	// Listing marks a ListSecrets visibility question: about one result, or
	// with SecretARN "" about the call as a whole. It is not an access of a
	// secret and is not audited as one.
	Listing bool
	// Missing is true when SecretID names no secret.
	Missing bool
}

// The actions the service names itself (see Access.Action).
const (
	ActionGetSecretValue = "secretsmanager:GetSecretValue"
	ActionListSecrets    = "secretsmanager:ListSecrets"
)

// AccessDenied is the error an authorizer returns to refuse an Access;
// msg is the complete client-facing message.
func AccessDenied(msg string) error { return &Error{Kind: KindAccessDenied, Msg: msg} }

type accessKey struct{}

// withAccess makes resolve ask about a (filling in the secret) instead of a
// fresh Access: for the operations whose question carries more than the
// secret, and for BatchGetSecretValue, which asks as GetSecretValue.
func withAccess(ctx context.Context, a *Access) context.Context {
	return context.WithValue(ctx, accessKey{}, a)
}

// authorize asks Config.Authorize; nil when no authorizer is configured.
func (s *Service) authorize(ctx context.Context, a *Access) error {
	if s.cfg.Authorize == nil {
		return nil
	}
	err := s.cfg.Authorize(ctx, a)
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return internal("authorize", err)
}

// accessFor returns the Access resolve asks about for secretID: the one the
// operation put in ctx, or a fresh one.
func accessFor(ctx context.Context, secretID string) *Access {
	a, _ := ctx.Value(accessKey{}).(*Access)
	if a == nil {
		a = &Access{}
	}
	a.SecretID = secretID
	return a
}

// authorizeMissing asks about a SecretId that names no secret: the ARN the
// caller gave, or for a name the ARN without its random suffix.
func (s *Service) authorizeMissing(ctx context.Context, id string) error {
	a := accessFor(ctx, id)
	a.Missing = true
	if sid, ok := arn.ParseSecretID(id); ok && sid.IsARN {
		a.SecretARN, a.Name = id, sid.Tail
	} else {
		a.SecretARN, a.Name = "arn:aws:secretsmanager:"+s.cfg.Region+":"+s.cfg.AccountID+":secret:"+id, id
	}
	if err := s.authorize(ctx, a); err != nil {
		return err
	}
	return errorf(KindNotFound, msgNotFound)
}

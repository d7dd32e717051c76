package secrets

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/rotor-secrets/rotor/internal/arn"
	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/store"
)

// resolve finds the secret a SecretId names — a name, a complete ARN, or a
// partial ARN (without the random suffix) — and asks Config.Authorize
// whether the caller may act on it (see Access).
func (s *Service) resolve(ctx context.Context, tx store.Tx, id string) (store.Secret, error) {
	sec, err := s.find(ctx, tx, id)
	if err != nil {
		if KindOf(err) == KindNotFound {
			return store.Secret{}, s.authorizeMissing(ctx, id)
		}
		return store.Secret{}, err
	}
	if err := s.admit(ctx, id, sec); err != nil {
		return store.Secret{}, err
	}
	return sec, nil
}

// admit asks Config.Authorize whether the caller may act on sec, which id
// named.
func (s *Service) admit(ctx context.Context, id string, sec store.Secret) error {
	a := accessFor(ctx, id)
	a.SecretARN, a.Name, a.ResourcePolicy, a.ResourceTags = sec.ARN, sec.Name, sec.ResourcePolicy, fromStoreTags(sec.Tags)
	return s.authorize(ctx, a)
}

// find is resolve without the authorization.
func (s *Service) find(ctx context.Context, tx store.Tx, id string) (store.Secret, error) {
	if err := checkSecretID(id); err != nil {
		return store.Secret{}, err
	}
	sid, ok := arn.ParseSecretID(id)
	if !ok {
		return store.Secret{}, errorf(KindNotFound, msgNotFound)
	}
	if !sid.IsARN {
		return lookup(tx.SecretByName(ctx, sid.Tail))
	}
	if sid.Region != s.cfg.Region || sid.Account != s.cfg.AccountID {
		return store.Secret{}, errorf(KindNotFound, msgNotFound)
	}
	sec, err := tx.Secret(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		// A partial ARN: the tail is the name.
		sec, err = tx.SecretByName(ctx, sid.Tail)
	}
	return lookup(sec, err)
}

func lookup(sec store.Secret, err error) (store.Secret, error) {
	if errors.Is(err, store.ErrNotFound) {
		return store.Secret{}, errorf(KindNotFound, msgNotFound)
	}
	if err != nil {
		return store.Secret{}, internal("read secret", err)
	}
	return sec, nil
}

// checkLive refuses a secret scheduled for deletion.
func checkLive(sec store.Secret) error {
	if !sec.DeletedAt.IsZero() {
		return errorf(KindInvalidRequest, msgMarkedForDelete)
	}
	return nil
}

// resolveLive is resolve for operations a secret scheduled for deletion
// refuses.
func (s *Service) resolveLive(ctx context.Context, tx store.Tx, id string) (store.Secret, error) {
	sec, err := s.resolve(ctx, tx, id)
	if err != nil {
		return sec, err
	}
	if err := checkLive(sec); err != nil {
		return store.Secret{}, err
	}
	return sec, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// aad binds a sealed value to its secret and version.
func aad(secretARN, versionID string) []byte {
	b := make([]byte, 0, len(secretARN)+1+len(versionID))
	b = append(b, secretARN...)
	b = append(b, 0)
	return append(b, versionID...)
}

// seal seals a value of the secret in the family of its KMS key.
func (s *Service) seal(sec *store.Secret, versionID string, v Value) (sealed []byte, keyID string, err error) {
	sealed, keyID, err = s.cfg.Keyring.SealIn(family(sec.KMSKeyID), v.Reveal(), aad(sec.ARN, versionID))
	if err != nil {
		return nil, "", s.encryptionFailure(err)
	}
	return sealed, keyID, nil
}

func (s *Service) encryptionFailure(err error) *Error {
	if de, ok := errors.AsType[*keyring.DisabledError](err); ok {
		return &Error{Kind: KindEncryptionFailure, Err: err,
			Msg: "Secrets Manager can't encrypt the secret value: the KMS key " + s.kmsKeyARN(de.Family) + " is disabled."}
	}
	return &Error{Kind: KindEncryptionFailure, Msg: "Secrets Manager can't encrypt the secret value.", Err: err}
}

func (s *Service) open(v store.Version) (Value, error) {
	pt, err := s.cfg.Keyring.Open(v.Sealed, aad(v.SecretARN, v.VersionID))
	if err != nil {
		return Value{}, s.decryptionFailure(err)
	}
	return Value{b: pt, binary: v.Binary}, nil
}

func (s *Service) decryptionFailure(err error) *Error {
	if de, ok := errors.AsType[*keyring.DisabledError](err); ok {
		return &Error{Kind: KindDecryptionFailure, Err: err,
			Msg: "Secrets Manager can't decrypt the protected secret text: the KMS key " + s.kmsKeyARN(de.Family) + " is disabled."}
	}
	kind := KindDecryptionFailure
	if !errors.Is(err, keyring.ErrDecrypt) {
		kind = KindInternal
	}
	return &Error{Kind: kind, Msg: "Secrets Manager can't decrypt the protected secret text using the provided KMS key.", Err: err}
}

// day truncates t to midnight UTC, the granularity of LastAccessedDate.
func day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func hasStage(stages []string, stage string) bool {
	for _, s := range stages {
		if s == stage {
			return true
		}
	}
	return false
}

func toStoreTags(tags []Tag) []store.Tag {
	if tags == nil {
		return nil
	}
	out := make([]store.Tag, len(tags))
	for i, t := range tags {
		out[i] = store.Tag(t)
	}
	return out
}

func fromStoreTags(tags []store.Tag) []Tag {
	if tags == nil {
		return nil
	}
	out := make([]Tag, len(tags))
	for i, t := range tags {
		out[i] = Tag(t)
	}
	return out
}

// defaultKMSKey reports whether id names the default key.
func defaultKMSKey(id string) bool {
	return id == "" || id == "alias/aws/secretsmanager" || strings.HasSuffix(id, ":alias/aws/secretsmanager")
}

// family is the keyring family of a secret's store.Secret.KMSKeyID: ""
// (the default key) or a named key's id.
func family(kmsKeyID string) string {
	if defaultKMSKey(kmsKeyID) {
		return ""
	}
	return kmsKeyID
}

// kmsKeyARN is the ARN of the named key id.
func (s *Service) kmsKeyARN(id string) string {
	if id == "" {
		return "alias/aws/secretsmanager"
	}
	return "arn:aws:kms:" + s.cfg.Region + ":" + s.cfg.AccountID + ":key/" + id
}

// checkKMSKey resolves a request's KmsKeyId to the key id stored in
// store.Secret.KMSKeyID: "" for the default key. An unknown key is
// InvalidParameterException, as AWS answers.
func (s *Service) checkKMSKey(ctx context.Context, id string) (string, error) {
	if defaultKMSKey(id) {
		return "", nil
	}
	unknown := errorf(KindInvalidParameter, "The KMS key %s is not found or not usable.", echo(id))
	if s.cfg.KMSKeys == nil || len(id) > 2048 {
		return "", unknown
	}
	k, found, err := s.cfg.KMSKeys.LookupKMSKey(ctx, id)
	if err != nil {
		return "", internal("look up kms key", err)
	}
	if !found {
		return "", unknown
	}
	return k.ID, nil
}

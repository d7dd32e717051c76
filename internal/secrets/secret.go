package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/rotor-secrets/rotor/internal/arn"
	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/store"
)

// CreateSecret creates a secret, with a first version labelled AWSCURRENT
// when a value is given.
func (s *Service) CreateSecret(ctx context.Context, in CreateSecretInput) (CreateSecretOutput, error) {
	if err := checkName(in.Name); err != nil {
		return CreateSecretOutput{}, err
	}
	if err := checkDescription(in.Description); err != nil {
		return CreateSecretOutput{}, err
	}
	if err := checkTags(in.Tags); err != nil {
		return CreateSecretOutput{}, err
	}
	kmsKey, kerr := s.checkKMSKey(ctx, in.KmsKeyID)
	if kerr != nil {
		return CreateSecretOutput{}, kerr
	}
	if in.AddReplicaRegions > 0 {
		return CreateSecretOutput{}, errorf(KindInvalidRequest, "Rotor does not replicate secrets to other regions.")
	}
	if !in.Value.IsZero() {
		if err := checkValue(in.Value); err != nil {
			return CreateSecretOutput{}, err
		}
	}
	token, verr := s.versionToken(in.ClientRequestToken)
	if verr != nil {
		return CreateSecretOutput{}, verr
	}
	suffix, err := arn.NewSuffix(s.cfg.Rand)
	if err != nil {
		return CreateSecretOutput{}, internal("generate arn", err)
	}
	var out CreateSecretOutput
	err = s.write(ctx, func(tx store.Tx) error {
		existing, err := tx.SecretByName(ctx, in.Name)
		switch {
		case err == nil:
			a := &Access{SecretARN: existing.ARN, Name: existing.Name, SecretID: in.Name,
				ResourcePolicy: existing.ResourcePolicy, ResourceTags: fromStoreTags(existing.Tags),
				RequestTags: in.Tags, TagKeys: tagKeys(in.Tags)}
			if err := s.authorize(ctx, a); err != nil {
				return err
			}
			return s.createRetry(ctx, tx, existing, in, token, &out)
		case !errors.Is(err, store.ErrNotFound):
			return internal("read secret", err)
		}
		now := s.now()
		newARN := arn.Secret(s.cfg.Region, s.cfg.AccountID, in.Name, suffix)
		if err := s.authorize(ctx, &Access{SecretARN: newARN, Name: in.Name, SecretID: in.Name,
			RequestTags: in.Tags, TagKeys: tagKeys(in.Tags)}); err != nil {
			return err
		}
		sec := store.Secret{
			ARN:           newARN,
			Name:          in.Name,
			Tags:          toStoreTags(in.Tags),
			KMSKeyID:      kmsKey,
			CreatedAt:     now,
			LastChangedAt: now,
		}
		if in.Description != nil {
			sec.Description = *in.Description
		}
		if err := tx.CreateSecret(ctx, sec); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return errorf(KindExists, "The operation failed because the secret %s already exists.", in.Name)
			}
			return internal("create secret", err)
		}
		out = CreateSecretOutput{ARN: sec.ARN, Name: sec.Name}
		if in.Value.IsZero() {
			return nil
		}
		if _, err := s.putVersion(ctx, tx, &sec, token, in.Value, nil); err != nil {
			return err
		}
		out.VersionID = token
		return nil
	})
	return out, err
}

// createRetry answers a CreateSecret for a name that exists: a retry with
// the same token and value succeeds without change; anything else conflicts.
func (s *Service) createRetry(ctx context.Context, tx store.Tx, existing store.Secret, in CreateSecretInput, token string, out *CreateSecretOutput) error {
	if !existing.DeletedAt.IsZero() {
		return errorf(KindInvalidRequest, msgNameScheduled)
	}
	exists := errorf(KindExists, "The operation failed because the secret %s already exists.", in.Name)
	if in.ClientRequestToken == "" || in.Value.IsZero() {
		return exists
	}
	v, err := tx.Version(ctx, existing.ARN, token)
	if errors.Is(err, store.ErrNotFound) || err == nil && v.Sealed == nil {
		return exists
	}
	if err != nil {
		return internal("read version", err)
	}
	old, err := s.open(v)
	if err != nil {
		return err
	}
	if !old.Equal(in.Value) {
		return errorf(KindExists, "You can't use ClientRequestToken %s because that value is already in use for a version of secret %s.", echo(token), existing.ARN)
	}
	*out = CreateSecretOutput{ARN: existing.ARN, Name: existing.Name, VersionID: token}
	return nil
}

// UpdateSecret changes a secret's description or key, and with a value
// creates a new AWSCURRENT version.
func (s *Service) UpdateSecret(ctx context.Context, in UpdateSecretInput) (UpdateSecretOutput, error) {
	if err := checkDescription(in.Description); err != nil {
		return UpdateSecretOutput{}, err
	}
	var kmsKey *string
	if in.KmsKeyID != nil {
		k, err := s.checkKMSKey(ctx, *in.KmsKeyID)
		if err != nil {
			return UpdateSecretOutput{}, err
		}
		kmsKey = &k
	}
	if !in.Value.IsZero() {
		if err := checkValue(in.Value); err != nil {
			return UpdateSecretOutput{}, err
		}
	}
	token, verr := s.versionToken(in.ClientRequestToken)
	if verr != nil {
		return UpdateSecretOutput{}, verr
	}
	var out UpdateSecretOutput
	err := s.write(ctx, func(tx store.Tx) error {
		sec, err := s.resolveLive(ctx, tx, in.SecretID)
		if err != nil {
			return err
		}
		out = UpdateSecretOutput{ARN: sec.ARN, Name: sec.Name}
		changed := false
		if in.Description != nil && *in.Description != sec.Description {
			sec.Description = *in.Description
			changed = true
		}
		if kmsKey != nil && *kmsKey != family(sec.KMSKeyID) {
			sec.KMSKeyID = *kmsKey
			if err := s.reencrypt(ctx, tx, sec); err != nil {
				return err
			}
			changed = true
		}
		if changed {
			sec.LastChangedAt = s.now()
			if err := tx.UpdateSecret(ctx, sec); err != nil {
				return internal("update secret", err)
			}
		}
		if in.Value.IsZero() {
			return nil
		}
		if _, err := s.putVersion(ctx, tx, &sec, token, in.Value, nil); err != nil {
			return err
		}
		out.VersionID = token
		return nil
	})
	return out, err
}

// reencrypt moves the versions labelled AWSCURRENT, AWSPENDING or
// AWSPREVIOUS to the secret's (new) KMS key, as AWS does when UpdateSecret
// changes KmsKeyId; other versions stay under the key they were sealed
// with, and still open while it is enabled. Only the data keys are
// re-wrapped.
func (s *Service) reencrypt(ctx context.Context, tx store.Tx, sec store.Secret) error {
	vers, err := tx.Versions(ctx, sec.ARN)
	if err != nil {
		return internal("list versions", err)
	}
	for _, v := range vers {
		if !hasStage(v.Stages, StageCurrent) && !hasStage(v.Stages, StagePending) && !hasStage(v.Stages, StagePrevious) {
			continue
		}
		// Versions does not read values.
		if v, err = tx.Version(ctx, sec.ARN, v.VersionID); err != nil {
			return internal("read version", err)
		}
		if v.Sealed == nil {
			continue
		}
		sealed, keyID, err := s.cfg.Keyring.RewrapIn(family(sec.KMSKeyID), v.Sealed, aad(v.SecretARN, v.VersionID))
		if err != nil {
			if de, ok := errors.AsType[*keyring.DisabledError](err); ok && de.Family == family(sec.KMSKeyID) {
				return s.encryptionFailure(err)
			}
			return s.decryptionFailure(err)
		}
		v.Sealed, v.KeyID = sealed, keyID
		if err := tx.UpdateVersion(ctx, v); err != nil {
			return internal("update version", err)
		}
	}
	return nil
}

// DescribeSecret returns a secret's metadata; it works on secrets scheduled
// for deletion.
func (s *Service) DescribeSecret(ctx context.Context, secretID string) (Description, error) {
	var d Description
	err := s.view(ctx, secretID, false, func(tx store.Tx, sec store.Secret) (err error) {
		d, err = s.describe(ctx, tx, sec)
		return err
	})
	return d, err
}

// view resolves secretID in a read transaction and calls fn with the secret;
// live refuses a secret scheduled for deletion.
func (s *Service) view(ctx context.Context, secretID string, live bool, fn func(store.Tx, store.Secret) error) error {
	return s.cfg.Store.Read(ctx, func(tx store.Tx) error {
		resolve := s.resolve
		if live {
			resolve = s.resolveLive
		}
		sec, err := resolve(ctx, tx, secretID)
		if err != nil {
			return err
		}
		return fn(tx, sec)
	})
}

// modify resolves a live secret in a write transaction, lets fn change it,
// and stores it with LastChangedAt stamped.
func (s *Service) modify(ctx context.Context, secretID string, fn func(store.Tx, *store.Secret) error) (Ref, error) {
	var ref Ref
	err := s.write(ctx, func(tx store.Tx) error {
		sec, err := s.resolveLive(ctx, tx, secretID)
		if err != nil {
			return err
		}
		ref = Ref{ARN: sec.ARN, Name: sec.Name}
		if err := fn(tx, &sec); err != nil {
			return err
		}
		sec.LastChangedAt = s.now()
		if err := tx.UpdateSecret(ctx, sec); err != nil {
			return internal("update secret", err)
		}
		return nil
	})
	return ref, err
}

func (s *Service) describe(ctx context.Context, tx store.Tx, sec store.Secret) (Description, error) {
	vers, err := tx.Versions(ctx, sec.ARN)
	if err != nil {
		return Description{}, internal("list versions", err)
	}
	d := Description{
		ARN:              sec.ARN,
		Name:             sec.Name,
		Description:      sec.Description,
		KmsKeyID:         s.describeKMSKey(sec.KMSKeyID),
		CreatedDate:      sec.CreatedAt,
		LastChangedDate:  sec.LastChangedAt,
		LastAccessedDate: sec.LastAccessedAt,
		DeletedDate:      sec.DeletedAt,
		Tags:             fromStoreTags(sec.Tags),
		PrimaryRegion:    s.cfg.Region,
	}
	if d.Tags == nil {
		d.Tags = []Tag{}
	}
	for _, v := range vers {
		if len(v.Stages) == 0 {
			continue
		}
		if d.VersionIdsToStages == nil {
			d.VersionIdsToStages = make(map[string][]string)
		}
		d.VersionIdsToStages[v.VersionID] = v.Stages
	}
	if r := sec.Rotation; r.Configured {
		enabled := r.Enabled
		d.RotationEnabled = &enabled
		d.RotationLambdaARN = r.LambdaARN
		d.LastRotatedDate = r.LastRotatedAt
		if r.Enabled {
			d.NextRotationDate = r.NextRotationAt
		}
		if r.RulesJSON != "" {
			var rules RotationRules
			if err := json.Unmarshal([]byte(r.RulesJSON), &rules); err != nil {
				return Description{}, internal("decode rotation rules", err)
			}
			d.RotationRules = &rules
		}
	}
	return d, nil
}

// DeleteSecret schedules a secret's deletion after a recovery window, or
// deletes it at once with ForceDeleteWithoutRecovery.
func (s *Service) DeleteSecret(ctx context.Context, in DeleteSecretInput) (DeleteSecretOutput, error) {
	if in.RecoveryWindowInDays != nil && in.ForceDeleteWithoutRecovery {
		return DeleteSecretOutput{}, errorf(KindInvalidParameter, "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	days := int64(defaultRecovery)
	if in.RecoveryWindowInDays != nil {
		days = *in.RecoveryWindowInDays
		if days < minRecoveryDays || days > maxRecoveryDays {
			return DeleteSecretOutput{}, errorf(KindInvalidParameter, "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
		}
	}
	var out DeleteSecretOutput
	err := s.write(ctx, func(tx store.Tx) error {
		sec, err := s.resolve(ctx, tx, in.SecretID)
		now := s.now()
		if KindOf(err) == KindNotFound && in.ForceDeleteWithoutRecovery {
			// AWS: forcibly deleting a deleted or nonexistent secret is not
			// an error.
			out = DeleteSecretOutput{Name: in.SecretID, DeletionDate: now}
			if id, ok := arn.ParseSecretID(in.SecretID); ok && id.IsARN {
				out = DeleteSecretOutput{ARN: in.SecretID, DeletionDate: now}
			}
			return nil
		}
		if err != nil {
			return err
		}
		out = DeleteSecretOutput{ARN: sec.ARN, Name: sec.Name}
		if in.ForceDeleteWithoutRecovery {
			if err := tx.DeleteSecret(ctx, sec.ARN); err != nil {
				return internal("delete secret", err)
			}
			out.DeletionDate = now
			return nil
		}
		if !sec.DeletedAt.IsZero() {
			return errorf(KindInvalidRequest, msgMarkedForDelete)
		}
		sec.DeletedAt = now
		sec.DeletionDate = now.Add(time.Duration(days) * 24 * time.Hour)
		sec.LastChangedAt = now
		if err := tx.UpdateSecret(ctx, sec); err != nil {
			return internal("update secret", err)
		}
		out.DeletionDate = sec.DeletionDate
		return nil
	})
	return out, err
}

// RestoreSecret cancels a scheduled deletion.
func (s *Service) RestoreSecret(ctx context.Context, secretID string) (Ref, error) {
	var ref Ref
	err := s.write(ctx, func(tx store.Tx) error {
		sec, err := s.resolve(ctx, tx, secretID)
		if err != nil {
			return err
		}
		ref = Ref{ARN: sec.ARN, Name: sec.Name}
		if sec.DeletedAt.IsZero() {
			return nil
		}
		sec.DeletedAt, sec.DeletionDate = time.Time{}, time.Time{}
		sec.LastChangedAt = s.now()
		if err := tx.UpdateSecret(ctx, sec); err != nil {
			return internal("update secret", err)
		}
		return nil
	})
	return ref, err
}

// PurgeExpired deletes secrets whose recovery window has ended and returns
// how many it deleted.
func (s *Service) PurgeExpired(ctx context.Context) (int, error) {
	total := 0
	for {
		var n int
		err := s.write(ctx, func(tx store.Tx) error {
			arns, err := tx.DeletedBefore(ctx, s.now(), 100)
			if err != nil {
				return err
			}
			for _, a := range arns {
				if err := tx.DeleteSecret(ctx, a); err != nil {
					return err
				}
			}
			n = len(arns)
			return nil
		})
		if err != nil {
			return total, internal("purge deleted secrets", err)
		}
		total += n
		if n < 100 {
			return total, nil
		}
	}
}

// TagResource adds tags to a secret or overwrites the values of existing
// keys.
func (s *Service) TagResource(ctx context.Context, secretID string, tags []Tag) error {
	if err := checkTags(tags); err != nil {
		return err
	}
	ctx = withAccess(ctx, &Access{RequestTags: tags, TagKeys: tagKeys(tags)})
	_, err := s.modify(ctx, secretID, func(_ store.Tx, sec *store.Secret) error {
		for _, t := range tags {
			replaced := false
			for i := range sec.Tags {
				if sec.Tags[i].Key == t.Key {
					sec.Tags[i].Value = t.Value
					replaced = true
				}
			}
			if !replaced {
				sec.Tags = append(sec.Tags, store.Tag(t))
			}
		}
		if len(sec.Tags) > maxTags {
			return errorf(KindInvalidParameter, "A secret can have at most %d tags.", maxTags)
		}
		return nil
	})
	return err
}

// UntagResource removes tags by key; absent keys are ignored.
func (s *Service) UntagResource(ctx context.Context, secretID string, keys []string) error {
	for _, k := range keys {
		if err := checkLen("tagKeys.member", k, 1, maxTagKeyLen); err != nil {
			return err
		}
	}
	ctx = withAccess(ctx, &Access{TagKeys: keys})
	_, err := s.modify(ctx, secretID, func(_ store.Tx, sec *store.Secret) error {
		kept := sec.Tags[:0]
		for _, t := range sec.Tags {
			if !slices.Contains(keys, t.Key) {
				kept = append(kept, t)
			}
		}
		sec.Tags = kept
		return nil
	})
	return err
}

// checkPolicy checks a resource policy's size and syntax and reports
// whether it grants public access.
func (s *Service) checkPolicy(doc string) (public bool, err error) {
	if err := checkLen("resourcePolicy", doc, 1, maxPolicyLen); err != nil {
		return false, err
	}
	if s.cfg.CheckPolicy == nil {
		var obj map[string]any
		if err := json.Unmarshal([]byte(doc), &obj); err != nil {
			return false, errorf(KindMalformedPolicy, "This resource policy contains a syntax error: the document is not a JSON object.")
		}
		return false, nil
	}
	public, perr := s.cfg.CheckPolicy(doc)
	if perr != nil {
		return false, errorf(KindMalformedPolicy, "This resource policy contains a syntax error: %s", strings.TrimSuffix(perr.Error(), "."))
	}
	return public, nil
}

// PutResourcePolicy attaches a resource policy to a secret.
func (s *Service) PutResourcePolicy(ctx context.Context, secretID, doc string, blockPublic bool) (Ref, error) {
	if err := checkLen("resourcePolicy", doc, 1, maxPolicyLen); err != nil {
		return Ref{}, err
	}
	// The document is judged once the caller is authorized for the secret.
	return s.modify(ctx, secretID, func(_ store.Tx, sec *store.Secret) error {
		public, err := s.checkPolicy(doc)
		if err != nil {
			return err
		}
		if public && blockPublic {
			return errorf(KindPublicPolicy, "You can't attach this resource policy because it grants public access to the secret (\"Principal\": \"*\"). Restrict the principals, or set BlockPublicPolicy to false.")
		}
		sec.ResourcePolicy = doc
		return nil
	})
}

// DeleteResourcePolicy removes a secret's resource policy.
func (s *Service) DeleteResourcePolicy(ctx context.Context, secretID string) (Ref, error) {
	return s.modify(ctx, secretID, func(_ store.Tx, sec *store.Secret) error {
		sec.ResourcePolicy = ""
		return nil
	})
}

// GetResourcePolicy returns a secret's resource policy ("" when none).
func (s *Service) GetResourcePolicy(ctx context.Context, secretID string) (ResourcePolicy, error) {
	var out ResourcePolicy
	err := s.view(ctx, secretID, true, func(_ store.Tx, sec store.Secret) error {
		out = ResourcePolicy{ARN: sec.ARN, Name: sec.Name, Policy: sec.ResourcePolicy}
		return nil
	})
	return out, err
}

// ValidateResourcePolicy checks a policy without attaching it.
func (s *Service) ValidateResourcePolicy(ctx context.Context, secretID, doc string) (PolicyValidation, error) {
	if secretID != "" {
		if err := s.view(ctx, secretID, false, func(store.Tx, store.Secret) error { return nil }); err != nil {
			return PolicyValidation{}, err
		}
	} else if err := s.authorize(ctx, &Access{}); err != nil {
		return PolicyValidation{}, err
	}
	public, err := s.checkPolicy(doc)
	if err != nil {
		if KindOf(err) != KindMalformedPolicy {
			return PolicyValidation{}, err
		}
		return PolicyValidation{Errors: []PolicyFinding{{CheckName: "SYNTAX_CHECK", ErrorMessage: err.(*Error).Msg}}}, nil
	}
	if public {
		return PolicyValidation{Errors: []PolicyFinding{{
			CheckName:    "PUBLIC_ACCESS_CHECK",
			ErrorMessage: "This resource policy grants public access to the secret (\"Principal\": \"*\").",
		}}}, nil
	}
	return PolicyValidation{Passed: true}, nil
}

func tagKeys(tags []Tag) []string {
	keys := make([]string, len(tags))
	for i, t := range tags {
		keys[i] = t.Key
	}
	return keys
}

// describeKMSKey is DescribeSecret's KmsKeyId: absent for the default key,
// the key's ARN otherwise.
func (s *Service) describeKMSKey(kmsKeyID string) string {
	if f := family(kmsKeyID); f != "" {
		return s.kmsKeyARN(f)
	}
	return ""
}

package secrets

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
)

// GetSecretValue returns a version's value.
func (s *Service) GetSecretValue(ctx context.Context, in GetSecretValueInput) (SecretValue, error) {
	if err := checkVersionID("versionId", in.VersionID); err != nil {
		return SecretValue{}, err
	}
	if in.VersionStage != "" {
		if err := checkStage("versionStage", in.VersionStage); err != nil {
			return SecretValue{}, err
		}
	}
	var (
		sec store.Secret
		ver store.Version
	)
	acc := accessFor(ctx, in.SecretID)
	acc.VersionID, acc.VersionStage = in.VersionID, in.VersionStage
	if acc.VersionID == "" && acc.VersionStage == "" {
		acc.VersionStage = StageCurrent
	}
	ctx = withAccess(ctx, acc)
	key := readKey{in.SecretID, in.VersionID, in.VersionStage}
	gen, cached, hit := s.reads.get(ctx, s.cfg.CacheVersion, s.cfg.Store, key)
	if hit {
		// What the store would answer now; the caller is judged afresh.
		sec, ver = cached.sec, cached.ver
		if err := s.admit(ctx, in.SecretID, sec); err != nil {
			return SecretValue{}, err
		}
		if err := checkLive(sec); err != nil {
			return SecretValue{}, err
		}
	} else {
		err := s.cfg.Store.Read(ctx, func(tx store.Tx) error {
			var err error
			sec, err = s.resolveLive(ctx, tx, in.SecretID)
			if err != nil {
				return err
			}
			ver, err = s.selectVersion(ctx, tx, sec, in.VersionID, in.VersionStage)
			return err
		})
		if err != nil {
			return SecretValue{}, err
		}
		s.reads.put(gen, key, sec, ver)
	}
	acc.VersionID = ver.VersionID
	val, err := s.open(ver)
	if err != nil {
		return SecretValue{}, err
	}
	s.touch(ctx, sec, ver)
	return SecretValue{
		ARN: sec.ARN, Name: sec.Name, VersionID: ver.VersionID, Value: val,
		VersionStages: ver.Stages, CreatedDate: ver.CreatedAt,
	}, nil
}

// selectVersion finds the version GetSecretValue asks for; it must have a
// value.
func (s *Service) selectVersion(ctx context.Context, tx store.Tx, sec store.Secret, versionID, stage string) (store.Version, error) {
	var (
		ver store.Version
		err error
	)
	switch {
	case versionID != "":
		ver, err = tx.Version(ctx, sec.ARN, versionID)
		if errors.Is(err, store.ErrNotFound) || err == nil && ver.Sealed == nil {
			return ver, errorf(KindNotFound, "Secrets Manager can't find the specified secret value for VersionId: %s", echo(versionID))
		}
		if err == nil && stage != "" && !hasStage(ver.Stages, stage) {
			return ver, errorf(KindInvalidRequest, "You provided a VersionStage that is not associated to the provided VersionId.")
		}
	default:
		if stage == "" {
			stage = StageCurrent
		}
		ver, err = tx.VersionByStage(ctx, sec.ARN, stage)
		if errors.Is(err, store.ErrNotFound) || err == nil && ver.Sealed == nil {
			return ver, errorf(KindNotFound, "Secrets Manager can't find the specified secret value for staging label: %s", echo(stage))
		}
	}
	if err != nil {
		return ver, internal("read version", err)
	}
	return ver, nil
}

// touch records the read in LastAccessedDate, which has day granularity, so
// at most one write per secret and version per day.
func (s *Service) touch(ctx context.Context, sec store.Secret, ver store.Version) {
	today := day(s.now())
	if !sec.LastAccessedAt.Before(today) && !ver.LastAccessedAt.Before(today) {
		return
	}
	err := s.write(ctx, func(tx store.Tx) error {
		cur, err := tx.Secret(ctx, sec.ARN)
		if err != nil {
			return err
		}
		if cur.LastAccessedAt.Before(today) {
			cur.LastAccessedAt = today
			if err := tx.UpdateSecret(ctx, cur); err != nil {
				return err
			}
		}
		v, err := tx.Version(ctx, sec.ARN, ver.VersionID)
		if err != nil {
			return err
		}
		if v.LastAccessedAt.Before(today) {
			v.LastAccessedAt = today
			return tx.UpdateVersion(ctx, v)
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.cfg.Logger.WarnContext(ctx, "record last access", "secret_arn", sec.ARN, "version_id", ver.VersionID, "err", err)
	}
}

// BatchGetSecretValue returns the values of several secrets, by id list or
// by filters; per-secret failures are reported in Errors.
func (s *Service) BatchGetSecretValue(ctx context.Context, in BatchGetSecretValueInput) (BatchGetSecretValueOutput, error) {
	var out BatchGetSecretValueOutput
	if err := s.authorize(ctx, &Access{}); err != nil {
		return out, err
	}
	switch {
	case len(in.SecretIDList) > 0 && len(in.Filters) > 0:
		return out, errorf(KindInvalidParameter, "Either 'SecretIdList' or 'Filters' must be provided, but not both.")
	case len(in.SecretIDList) == 0 && len(in.Filters) == 0:
		return out, errorf(KindInvalidParameter, "Either 'SecretIdList' or 'Filters' must be provided.")
	case len(in.SecretIDList) > maxBatchIDs:
		return out, validation("secretIdList", "Member must have length less than or equal to 20")
	case len(in.SecretIDList) > 0 && (in.MaxResults != nil || in.NextToken != ""):
		return out, errorf(KindInvalidParameter, "'MaxResults' and 'NextToken' can only be used with 'Filters'.")
	}
	if len(in.SecretIDList) > 0 {
		seen := make(map[string]bool, len(in.SecretIDList))
		for _, id := range in.SecretIDList {
			if seen[id] {
				continue
			}
			seen[id] = true
			v, err := s.GetSecretValue(withAccess(ctx, &Access{Action: ActionGetSecretValue}), GetSecretValueInput{SecretID: id})
			if err != nil {
				if KindOf(err) == KindInternal {
					return BatchGetSecretValueOutput{}, err
				}
				out.Errors = append(out.Errors, BatchError{SecretID: id, Err: err})
				continue
			}
			out.SecretValues = append(out.SecretValues, v)
		}
		return out, nil
	}
	max := int64(maxBatchResults)
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxBatchResults {
			return out, validation("maxResults", "Member must have value between 1 and 20")
		}
		max = *in.MaxResults
	}
	page, err := s.ListSecrets(ctx, ListSecretsInput{Filters: in.Filters, MaxResults: &max, NextToken: in.NextToken})
	if err != nil {
		return out, err
	}
	out.NextToken = page.NextToken
	for _, d := range page.SecretList {
		v, err := s.GetSecretValue(withAccess(ctx, &Access{Action: ActionGetSecretValue}), GetSecretValueInput{SecretID: d.ARN})
		if err != nil {
			if KindOf(err) == KindInternal {
				return BatchGetSecretValueOutput{}, err
			}
			out.Errors = append(out.Errors, BatchError{SecretID: d.ARN, Err: err})
			continue
		}
		out.SecretValues = append(out.SecretValues, v)
	}
	return out, nil
}

// PutSecretValue stores a new version.
func (s *Service) PutSecretValue(ctx context.Context, in PutSecretValueInput) (PutSecretValueOutput, error) {
	if in.Value.IsZero() {
		return PutSecretValueOutput{}, errorf(KindInvalidParameter, "You must provide either SecretString or SecretBinary.")
	}
	if err := checkValue(in.Value); err != nil {
		return PutSecretValueOutput{}, err
	}
	if in.VersionStages != nil {
		if len(in.VersionStages) < 1 || len(in.VersionStages) > maxStagesPerCall {
			return PutSecretValueOutput{}, validation("versionStages", "Member must have length between 1 and 20")
		}
		for _, st := range in.VersionStages {
			if err := checkStage("versionStages.member", st); err != nil {
				return PutSecretValueOutput{}, err
			}
		}
	}
	if in.RotationToken != "" {
		if err := checkRotationToken(in.RotationToken); err != nil {
			return PutSecretValueOutput{}, err
		}
	}
	token, verr := s.versionToken(in.ClientRequestToken)
	if verr != nil {
		return PutSecretValueOutput{}, verr
	}
	var out PutSecretValueOutput
	err := s.write(ctx, func(tx store.Tx) error {
		sec, err := s.resolveLive(ctx, tx, in.SecretID)
		if err != nil {
			return err
		}
		stages, err := s.putVersion(ctx, tx, &sec, token, in.Value, in.VersionStages)
		if err != nil {
			return err
		}
		out = PutSecretValueOutput{ARN: sec.ARN, Name: sec.Name, VersionID: token, VersionStages: stages}
		return nil
	})
	return out, err
}

func checkRotationToken(t string) *Error {
	if err := checkLen("rotationToken", t, 36, 256); err != nil {
		return err
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return validation("rotationToken", "Member must satisfy regular expression pattern: [a-zA-Z0-9-]+")
		}
	}
	return nil
}

// putVersion writes version token of sec with value v and attaches stages
// (nil: AWSCURRENT) with AWS's label rules. The same token with the same
// value is a no-op; with another value it is ResourceExists. A version that
// exists without a value (the placeholder RotateSecret creates) is filled.
// It returns the version's labels afterwards and updates sec's
// LastChangedAt.
func (s *Service) putVersion(ctx context.Context, tx store.Tx, sec *store.Secret, token string, v Value, stages []string) ([]string, error) {
	existing, err := tx.Version(ctx, sec.ARN, token)
	switch {
	case err == nil && existing.Sealed != nil:
		old, err := s.open(existing)
		if err != nil {
			return nil, err
		}
		if !old.Equal(v) {
			return nil, errorf(KindExists, "You can't use ClientRequestToken %s because that value is already in use for a version of secret %s.", echo(token), sec.ARN)
		}
		return existing.Stages, nil
	case err == nil:
		// Fill the placeholder.
		existing.Sealed, existing.KeyID, err = s.seal(sec, token, v)
		if err != nil {
			return nil, err
		}
		existing.Binary = v.Binary()
		if err := tx.UpdateVersion(ctx, existing); err != nil {
			return nil, internal("update version", err)
		}
	case errors.Is(err, store.ErrNotFound):
		sealed, keyID, err := s.seal(sec, token, v)
		if err != nil {
			return nil, err
		}
		nv := store.Version{SecretARN: sec.ARN, VersionID: token, CreatedAt: s.now(), Sealed: sealed, KeyID: keyID, Binary: v.Binary()}
		if err := tx.CreateVersion(ctx, nv); err != nil {
			return nil, internal("create version", err)
		}
	default:
		return nil, internal("read version", err)
	}

	if stages == nil {
		stages = []string{StageCurrent}
	}
	if _, err := tx.VersionByStage(ctx, sec.ARN, StageCurrent); errors.Is(err, store.ErrNotFound) && !hasStage(stages, StageCurrent) {
		// A secret's first value is always AWSCURRENT.
		stages = append(append([]string(nil), stages...), StageCurrent)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, internal("read version", err)
	}
	for _, st := range stages {
		if err := s.attach(ctx, tx, sec.ARN, st, token); err != nil {
			return nil, err
		}
	}
	sec.LastChangedAt = s.now()
	if _, err := s.abandonOrphanedRun(ctx, tx, sec); err != nil {
		return nil, err
	}
	if err := tx.UpdateSecret(ctx, *sec); err != nil {
		return nil, internal("update secret", err)
	}
	if err := s.purgeDeprecated(ctx, tx, sec.ARN); err != nil {
		return nil, err
	}
	after, err := tx.Version(ctx, sec.ARN, token)
	if err != nil {
		return nil, internal("read version", err)
	}
	return after.Stages, nil
}

// attach moves label stage onto versionID with AWS's side effects: moving
// AWSCURRENT gives AWSPREVIOUS to the version that lost it, and abandons a
// rotation in progress (an AWSPENDING on another version).
func (s *Service) attach(ctx context.Context, tx store.Tx, secretARN, stage, versionID string) error {
	holder, err := tx.VersionByStage(ctx, secretARN, stage)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return internal("read label", err)
	}
	if err == nil && holder.VersionID == versionID {
		return nil
	}
	target, err := tx.Version(ctx, secretARN, versionID)
	if err != nil {
		return internal("read version", err)
	}
	if len(target.Stages) >= maxLabelsPerVer {
		return errorf(KindLimitExceeded, "A version can have at most %d staging labels.", maxLabelsPerVer)
	}
	if err := tx.SetStage(ctx, secretARN, stage, versionID); err != nil {
		return internal("set label", err)
	}
	if stage != StageCurrent {
		return nil
	}
	if holder.VersionID != "" {
		if err := tx.SetStage(ctx, secretARN, StagePrevious, holder.VersionID); err != nil {
			return internal("set label", err)
		}
	}
	pending, err := tx.VersionByStage(ctx, secretARN, StagePending)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return internal("read label", err)
	case pending.VersionID != versionID:
		if err := tx.RemoveStage(ctx, secretARN, StagePending); err != nil {
			return internal("remove label", err)
		}
	}
	return nil
}

// purgeDeprecated deletes the oldest unlabelled versions beyond 100, sparing
// those younger than 24 hours; if that is not enough the write is refused.
func (s *Service) purgeDeprecated(ctx context.Context, tx store.Tx, secretARN string) error {
	// Counting is cheap; listing every version with its labels is not, and
	// nearly every call has nothing to purge.
	n, err := tx.VersionCount(ctx, secretARN)
	if err != nil {
		return internal("count versions", err)
	}
	if n <= maxDeprecated {
		return nil
	}
	vers, err := tx.Versions(ctx, secretARN)
	if err != nil {
		return internal("list versions", err)
	}
	var deprecated []store.Version
	for _, v := range vers {
		if len(v.Stages) == 0 {
			deprecated = append(deprecated, v)
		}
	}
	if len(deprecated) <= maxDeprecated {
		return nil
	}
	sort.SliceStable(deprecated, func(i, j int) bool { return deprecated[i].CreatedAt.Before(deprecated[j].CreatedAt) })
	cutoff := s.now().Add(-24 * time.Hour)
	excess := len(deprecated) - maxDeprecated
	for _, v := range deprecated {
		if excess == 0 || v.CreatedAt.After(cutoff) {
			break
		}
		if err := tx.DeleteVersion(ctx, secretARN, v.VersionID); err != nil {
			return internal("delete version", err)
		}
		excess--
	}
	if excess > 0 {
		return errorf(KindLimitExceeded, "You have exceeded the maximum number of versions for this secret: more than %d versions without staging labels are younger than 24 hours. Create versions less often.", maxDeprecated)
	}
	return nil
}

// ListSecretVersionIds lists a secret's versions, newest first.
func (s *Service) ListSecretVersionIds(ctx context.Context, in ListSecretVersionIdsInput) (ListSecretVersionIdsOutput, error) {
	max, err := maxResults(in.MaxResults, maxListResults)
	if err != nil {
		return ListSecretVersionIdsOutput{}, err
	}
	var (
		sec  store.Secret
		vers []store.Version
	)
	err = s.cfg.Store.Read(ctx, func(tx store.Tx) error {
		var err error
		if sec, err = s.resolve(ctx, tx, in.SecretID); err != nil {
			return err
		}
		if vers, err = tx.Versions(ctx, sec.ARN); err != nil {
			return internal("list versions", err)
		}
		return nil
	})
	if err != nil {
		return ListSecretVersionIdsOutput{}, err
	}
	entries := make([]VersionEntry, 0, len(vers))
	for i := len(vers) - 1; i >= 0; i-- {
		v := vers[i]
		if len(v.Stages) == 0 && !in.IncludeDeprecated {
			continue
		}
		entries = append(entries, VersionEntry{
			VersionID: v.VersionID, VersionStages: v.Stages, CreatedDate: v.CreatedAt,
			LastAccessedDate: v.LastAccessedAt, KmsKeyIDs: []string{s.versionKey(v)},
		})
	}
	start := 0
	if in.NextToken != "" {
		var tok versionsToken
		if err := decodeToken(in.NextToken, &tok); err != nil || tok.ARN != sec.ARN || tok.Offset < 0 || tok.Offset > len(entries) {
			return ListSecretVersionIdsOutput{}, errorf(KindInvalidNextToken, "The NextToken value is invalid.")
		}
		start = tok.Offset
	}
	out := ListSecretVersionIdsOutput{ARN: sec.ARN, Name: sec.Name}
	end := min(start+max, len(entries))
	out.Versions = entries[start:end]
	if end < len(entries) {
		out.NextToken = encodeToken(versionsToken{ARN: sec.ARN, Offset: end})
	}
	return out, nil
}

type versionsToken struct {
	ARN    string `json:"a"`
	Offset int    `json:"o"`
}

// UpdateSecretVersionStage attaches, moves or removes a staging label.
func (s *Service) UpdateSecretVersionStage(ctx context.Context, in UpdateSecretVersionStageInput) (Ref, error) {
	if err := checkStage("versionStage", in.VersionStage); err != nil {
		return Ref{}, err
	}
	if err := checkVersionID("removeFromVersionId", in.RemoveFromVersionID); err != nil {
		return Ref{}, err
	}
	if err := checkVersionID("moveToVersionId", in.MoveToVersionID); err != nil {
		return Ref{}, err
	}
	if in.RemoveFromVersionID == "" && in.MoveToVersionID == "" {
		return Ref{}, errorf(KindInvalidParameter, "You must specify RemoveFromVersionId, MoveToVersionId, or both.")
	}
	var ref Ref
	err := s.write(ctx, func(tx store.Tx) error {
		sec, err := s.resolveLive(ctx, tx, in.SecretID)
		if err != nil {
			return err
		}
		ref = Ref{ARN: sec.ARN, Name: sec.Name}
		holder, err := tx.VersionByStage(ctx, sec.ARN, in.VersionStage)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return internal("read label", err)
		}
		held := holder.VersionID // "" when no version has the label
		if in.RemoveFromVersionID != "" && in.RemoveFromVersionID != held {
			return errorf(KindInvalidParameter, "The staging label %s is not attached to version %s.", echo(in.VersionStage), echo(in.RemoveFromVersionID))
		}
		if in.MoveToVersionID == "" {
			if in.VersionStage == StageCurrent {
				return errorf(KindInvalidParameter, "You can only move staging label AWSCURRENT to a different secret version. It can't be completely removed.")
			}
			if err := tx.RemoveStage(ctx, sec.ARN, in.VersionStage); err != nil {
				return internal("remove label", err)
			}
		} else {
			target, err := tx.Version(ctx, sec.ARN, in.MoveToVersionID)
			if errors.Is(err, store.ErrNotFound) {
				return errorf(KindNotFound, "Secrets Manager can't find the specified secret version: %s", echo(in.MoveToVersionID))
			}
			if err != nil {
				return internal("read version", err)
			}
			if held != "" && held != target.VersionID && in.RemoveFromVersionID != held {
				return errorf(KindInvalidParameter, "The parameter RemoveFromVersionId can't be empty. Staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.", echo(in.VersionStage), held)
			}
			if in.VersionStage == StageCurrent && target.Sealed == nil {
				return errorf(KindInvalidRequest, "Version %s has no secret value, so it can't be labelled AWSCURRENT.", target.VersionID)
			}
			if err := s.attach(ctx, tx, sec.ARN, in.VersionStage, target.VersionID); err != nil {
				return err
			}
		}
		sec.LastChangedAt = s.now()
		if _, err := s.abandonOrphanedRun(ctx, tx, &sec); err != nil {
			return err
		}
		if err := tx.UpdateSecret(ctx, sec); err != nil {
			return internal("update secret", err)
		}
		return s.purgeDeprecated(ctx, tx, sec.ARN)
	})
	return ref, err
}

// versionKey names the KMS key of a version's value as
// ListSecretVersionIds does: DefaultEncryptionKey for the default key, the
// key's ARN otherwise.
func (s *Service) versionKey(v store.Version) string {
	if f := s.cfg.Keyring.FamilyOf(v.KeyID); f != "" {
		return s.kmsKeyARN(f)
	}
	return "DefaultEncryptionKey"
}

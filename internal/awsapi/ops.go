package awsapi

import (
	"context"
	"log/slog"

	"github.com/rotor-secrets/rotor/internal/secrets"
)

// backend is the domain service as the handler calls it. *secrets.Service
// implements it; the interface exists so that tests can drive every
// operation's wiring with canned results.
type backend interface {
	CreateSecret(context.Context, secrets.CreateSecretInput) (secrets.CreateSecretOutput, error)
	GetSecretValue(context.Context, secrets.GetSecretValueInput) (secrets.SecretValue, error)
	BatchGetSecretValue(context.Context, secrets.BatchGetSecretValueInput) (secrets.BatchGetSecretValueOutput, error)
	PutSecretValue(context.Context, secrets.PutSecretValueInput) (secrets.PutSecretValueOutput, error)
	UpdateSecret(context.Context, secrets.UpdateSecretInput) (secrets.UpdateSecretOutput, error)
	DescribeSecret(ctx context.Context, secretID string) (secrets.Description, error)
	ListSecrets(context.Context, secrets.ListSecretsInput) (secrets.ListSecretsOutput, error)
	ListSecretVersionIds(context.Context, secrets.ListSecretVersionIdsInput) (secrets.ListSecretVersionIdsOutput, error)
	UpdateSecretVersionStage(context.Context, secrets.UpdateSecretVersionStageInput) (secrets.Ref, error)
	DeleteSecret(context.Context, secrets.DeleteSecretInput) (secrets.DeleteSecretOutput, error)
	RestoreSecret(ctx context.Context, secretID string) (secrets.Ref, error)
	TagResource(ctx context.Context, secretID string, tags []secrets.Tag) error
	UntagResource(ctx context.Context, secretID string, keys []string) error
	GetRandomPassword(context.Context, secrets.PasswordInput) (string, error)
	PutResourcePolicy(ctx context.Context, secretID, policy string, blockPublic bool) (secrets.Ref, error)
	GetResourcePolicy(ctx context.Context, secretID string) (secrets.ResourcePolicy, error)
	DeleteResourcePolicy(ctx context.Context, secretID string) (secrets.Ref, error)
	ValidateResourcePolicy(ctx context.Context, secretID, policy string) (secrets.PolicyValidation, error)
	RotateSecret(context.Context, secrets.RotateSecretInput) (secrets.Ref, string, error)
	CancelRotateSecret(ctx context.Context, secretID string) (secrets.Ref, string, error)
	RotationStatus(ctx context.Context, secretID string) (secrets.RotationStatus, error)
}

var _ backend = (*secrets.Service)(nil)

// operation is one X-Amz-Target.
type operation struct {
	name string
	// decode turns a request body into the service's input. It is pure and
	// is what FuzzDecodeRequest exercises.
	decode func(body []byte) (any, error)
	// call runs the service with decode's result and returns the response
	// to encode: an appender or a value for encoding/json.
	call func(ctx context.Context, h *Handler, in any) (any, error)
}

// op builds an operation from its wire request shape W, a conversion to the
// service input I, and the call.
func op[W, I any](name string, conv func(*W) (I, error), call func(context.Context, *Handler, I) (any, error)) *operation {
	return &operation{
		name: name,
		decode: func(body []byte) (any, error) {
			var w W
			if err := decodeJSON(body, &w); err != nil {
				return nil, err
			}
			return conv(&w)
		},
		call: func(ctx context.Context, h *Handler, in any) (any, error) {
			return call(ctx, h, in.(I))
		},
	}
}

const (
	targetPrefix = "secretsmanager."
	rotorPrefix  = "rotor."
)

// operations maps X-Amz-Target values to operations.
var operations = func() map[string]*operation {
	m := make(map[string]*operation)
	for _, o := range []*operation{
		op("CreateSecret", createSecretIn, createSecret),
		op("GetSecretValue", getSecretValueIn, getSecretValue),
		op("BatchGetSecretValue", batchGetSecretValueIn, batchGetSecretValue),
		op("PutSecretValue", putSecretValueIn, putSecretValue),
		op("UpdateSecret", updateSecretIn, updateSecret),
		op("DescribeSecret", secretIDIn, describeSecret),
		op("ListSecrets", listSecretsIn, listSecrets),
		op("ListSecretVersionIds", listSecretVersionIdsIn, listSecretVersionIds),
		op("UpdateSecretVersionStage", updateSecretVersionStageIn, updateSecretVersionStage),
		op("DeleteSecret", deleteSecretIn, deleteSecret),
		op("RestoreSecret", secretIDIn, restoreSecret),
		op("TagResource", tagResourceIn, tagResource),
		op("UntagResource", untagResourceIn, untagResource),
		op("GetRandomPassword", getRandomPasswordIn, getRandomPassword),
		op("PutResourcePolicy", putResourcePolicyIn, putResourcePolicy),
		op("GetResourcePolicy", secretIDIn, getResourcePolicy),
		op("DeleteResourcePolicy", secretIDIn, deleteResourcePolicy),
		op("ValidateResourcePolicy", validateResourcePolicyIn, validateResourcePolicy),
		op("RotateSecret", rotateSecretIn, rotateSecret),
		op("CancelRotateSecret", secretIDIn, cancelRotateSecret),
	} {
		m[targetPrefix+o.name] = o
	}
	// Rotor's own operations: same protocol and signature, target prefix "rotor.".
	for _, o := range []*operation{
		op("GetRotationStatus", secretIDIn, getRotationStatus),
	} {
		m[rotorPrefix+o.name] = o
	}
	return m
}()

// Rotor's administrative operations, each served only when its backend is
// configured: users, keys and policies (Config.IAM, iamops.go), audit
// search (Config.AuditLog, auditops.go), parked webhook events
// (Config.Webhooks, webhookops.go), master key versions (Config.Keys,
// keyops.go), in maps keyed by X-Amz-Target.

// operation returns the operation of target, if this handler serves it.
func (h *Handler) operation(target string) (*operation, bool) {
	if op, ok := operations[target]; ok {
		return op, true
	}
	var m map[string]*operation
	switch {
	case h.iam != nil && iamOperations[target] != nil:
		m = iamOperations
	case h.auditLog != nil && auditOperations[target] != nil:
		m = auditOperations
	case h.webhooks != nil && webhookOperations[target] != nil:
		m = webhookOperations
	case h.keys != nil && keyOperations[target] != nil:
		m = keyOperations
	case h.functions != nil && functionOperations[target] != nil:
		m = functionOperations
	default:
		return nil, false
	}
	return m[target], true
}

// OperationNames lists the name of every operation a Handler may serve,
// for metrics that must know their label values in advance.
func OperationNames() []string {
	var names []string
	for _, m := range []map[string]*operation{operations, iamOperations, auditOperations, webhookOperations, keyOperations, functionOperations} {
		for _, o := range m {
			names = append(names, o.name)
		}
	}
	for _, s := range streams {
		names = append(names, s.name)
	}
	return names
}

// rotorOps maps rotor.* targets to ops.
func rotorOps(ops ...*operation) map[string]*operation {
	m := make(map[string]*operation, len(ops))
	for _, o := range ops {
		m[rotorPrefix+o.name] = o
	}
	return m
}

// CreateSecret

func createSecretIn(w *createSecretRequest) (secrets.CreateSecretInput, error) {
	v, err := secretValue(w.SecretString, w.SecretBinary)
	if err != nil {
		return secrets.CreateSecretInput{}, err
	}
	return secrets.CreateSecretInput{
		Name:               w.Name,
		ClientRequestToken: w.ClientRequestToken,
		Description:        w.Description,
		KmsKeyID:           w.KmsKeyId,
		Value:              v,
		Tags:               tagsIn(w.Tags),
		AddReplicaRegions:  len(w.AddReplicaRegions),
	}, nil
}

func createSecret(ctx context.Context, h *Handler, in secrets.CreateSecretInput) (any, error) {
	out, err := h.svc.CreateSecret(ctx, in)
	if err != nil {
		return nil, err
	}
	return createSecretOut{ARN: out.ARN, Name: out.Name, VersionId: out.VersionID}, nil
}

// GetSecretValue

func getSecretValueIn(w *getSecretValueRequest) (secrets.GetSecretValueInput, error) {
	return secrets.GetSecretValueInput{SecretID: w.SecretId, VersionID: w.VersionId, VersionStage: w.VersionStage}, nil
}

func getSecretValue(ctx context.Context, h *Handler, in secrets.GetSecretValueInput) (any, error) {
	out, err := h.svc.GetSecretValue(ctx, in)
	if err != nil {
		return nil, err
	}
	return secretValueOut{&out}, nil
}

// BatchGetSecretValue

func batchGetSecretValueIn(w *batchGetSecretValueRequest) (secrets.BatchGetSecretValueInput, error) {
	return secrets.BatchGetSecretValueInput{
		SecretIDList: w.SecretIdList,
		Filters:      filtersIn(w.Filters),
		MaxResults:   w.MaxResults,
		NextToken:    w.NextToken,
	}, nil
}

func batchGetSecretValue(ctx context.Context, h *Handler, in secrets.BatchGetSecretValueInput) (any, error) {
	out, err := h.svc.BatchGetSecretValue(ctx, in)
	if err != nil {
		return nil, err
	}
	res := batchGetSecretValueOut{
		SecretValues: make([]secretValueOut, len(out.SecretValues)),
		NextToken:    out.NextToken,
	}
	for i := range out.SecretValues {
		res.SecretValues[i] = secretValueOut{&out.SecretValues[i]}
	}
	id, _ := RequestIDFrom(ctx)
	for _, e := range out.Errors {
		we := wireErrorOf(e.Err, id)
		if we.Status >= 500 {
			h.log.LogAttrs(ctx, slog.LevelError, "batch entry failed",
				slog.String("request_id", id),
				slog.String("secret_id", e.SecretID),
				slog.Any("error", e.Err))
		}
		res.Errors = append(res.Errors, batchErrorOut{SecretId: e.SecretID, ErrorCode: we.Code, Message: we.Message})
	}
	return res, nil
}

// PutSecretValue

func putSecretValueIn(w *putSecretValueRequest) (secrets.PutSecretValueInput, error) {
	v, err := secretValue(w.SecretString, w.SecretBinary)
	if err != nil {
		return secrets.PutSecretValueInput{}, err
	}
	return secrets.PutSecretValueInput{
		SecretID:           w.SecretId,
		ClientRequestToken: w.ClientRequestToken,
		Value:              v,
		VersionStages:      w.VersionStages,
		RotationToken:      w.RotationToken,
	}, nil
}

func putSecretValue(ctx context.Context, h *Handler, in secrets.PutSecretValueInput) (any, error) {
	out, err := h.svc.PutSecretValue(ctx, in)
	if err != nil {
		return nil, err
	}
	return putSecretValueOut{ARN: out.ARN, Name: out.Name, VersionId: out.VersionID, VersionStages: out.VersionStages}, nil
}

// UpdateSecret

func updateSecretIn(w *updateSecretRequest) (secrets.UpdateSecretInput, error) {
	v, err := secretValue(w.SecretString, w.SecretBinary)
	if err != nil {
		return secrets.UpdateSecretInput{}, err
	}
	return secrets.UpdateSecretInput{
		SecretID:           w.SecretId,
		ClientRequestToken: w.ClientRequestToken,
		Description:        w.Description,
		KmsKeyID:           w.KmsKeyId,
		Value:              v,
	}, nil
}

func updateSecret(ctx context.Context, h *Handler, in secrets.UpdateSecretInput) (any, error) {
	out, err := h.svc.UpdateSecret(ctx, in)
	if err != nil {
		return nil, err
	}
	return createSecretOut{ARN: out.ARN, Name: out.Name, VersionId: out.VersionID}, nil
}

// Operations that take only SecretId.

func secretIDIn(w *secretIDRequest) (string, error) { return w.SecretId, nil }

func describeSecret(ctx context.Context, h *Handler, id string) (any, error) {
	d, err := h.svc.DescribeSecret(ctx, id)
	if err != nil {
		return nil, err
	}
	return describeOut(&d, false), nil
}

func restoreSecret(ctx context.Context, h *Handler, id string) (any, error) {
	return refResult(h.svc.RestoreSecret(ctx, id))
}

func getResourcePolicy(ctx context.Context, h *Handler, id string) (any, error) {
	p, err := h.svc.GetResourcePolicy(ctx, id)
	if err != nil {
		return nil, err
	}
	return resourcePolicyOut{ARN: p.ARN, Name: p.Name, ResourcePolicy: p.Policy}, nil
}

func deleteResourcePolicy(ctx context.Context, h *Handler, id string) (any, error) {
	return refResult(h.svc.DeleteResourcePolicy(ctx, id))
}

func refResult(r secrets.Ref, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return refOut{ARN: r.ARN, Name: r.Name}, nil
}

// ListSecrets

func listSecretsIn(w *listSecretsRequest) (secrets.ListSecretsInput, error) {
	return secrets.ListSecretsInput{
		IncludePlannedDeletion: w.IncludePlannedDeletion,
		MaxResults:             w.MaxResults,
		NextToken:              w.NextToken,
		Filters:                filtersIn(w.Filters),
		SortOrder:              w.SortOrder,
		SortBy:                 w.SortBy,
	}, nil
}

func listSecrets(ctx context.Context, h *Handler, in secrets.ListSecretsInput) (any, error) {
	out, err := h.svc.ListSecrets(ctx, in)
	if err != nil {
		return nil, err
	}
	res := listSecretsOut{SecretList: make([]secretOut, len(out.SecretList)), NextToken: out.NextToken}
	for i := range out.SecretList {
		res.SecretList[i] = describeOut(&out.SecretList[i], true)
	}
	return res, nil
}

// ListSecretVersionIds

func listSecretVersionIdsIn(w *listSecretVersionIdsRequest) (secrets.ListSecretVersionIdsInput, error) {
	return secrets.ListSecretVersionIdsInput{
		SecretID:          w.SecretId,
		MaxResults:        w.MaxResults,
		NextToken:         w.NextToken,
		IncludeDeprecated: w.IncludeDeprecated,
	}, nil
}

func listSecretVersionIds(ctx context.Context, h *Handler, in secrets.ListSecretVersionIdsInput) (any, error) {
	out, err := h.svc.ListSecretVersionIds(ctx, in)
	if err != nil {
		return nil, err
	}
	res := listSecretVersionIdsOut{
		Versions:  make([]versionOut, len(out.Versions)),
		NextToken: out.NextToken,
		ARN:       out.ARN,
		Name:      out.Name,
	}
	for i, v := range out.Versions {
		res.Versions[i] = versionOut{
			VersionId:        v.VersionID,
			VersionStages:    v.VersionStages,
			LastAccessedDate: epochTime(v.LastAccessedDate),
			CreatedDate:      epochTime(v.CreatedDate),
			KmsKeyIds:        v.KmsKeyIDs,
		}
	}
	return res, nil
}

// UpdateSecretVersionStage

func updateSecretVersionStageIn(w *updateSecretVersionStageRequest) (secrets.UpdateSecretVersionStageInput, error) {
	return secrets.UpdateSecretVersionStageInput{
		SecretID:            w.SecretId,
		VersionStage:        w.VersionStage,
		RemoveFromVersionID: w.RemoveFromVersionId,
		MoveToVersionID:     w.MoveToVersionId,
	}, nil
}

func updateSecretVersionStage(ctx context.Context, h *Handler, in secrets.UpdateSecretVersionStageInput) (any, error) {
	return refResult(h.svc.UpdateSecretVersionStage(ctx, in))
}

// DeleteSecret

func deleteSecretIn(w *deleteSecretRequest) (secrets.DeleteSecretInput, error) {
	return secrets.DeleteSecretInput{
		SecretID:                   w.SecretId,
		RecoveryWindowInDays:       w.RecoveryWindowInDays,
		ForceDeleteWithoutRecovery: w.ForceDeleteWithoutRecovery,
	}, nil
}

func deleteSecret(ctx context.Context, h *Handler, in secrets.DeleteSecretInput) (any, error) {
	out, err := h.svc.DeleteSecret(ctx, in)
	if err != nil {
		return nil, err
	}
	return deleteSecretOut{ARN: out.ARN, Name: out.Name, DeletionDate: epochTime(out.DeletionDate)}, nil
}

// TagResource, UntagResource

type tagsInput struct {
	secretID string
	tags     []secrets.Tag
}

func tagResourceIn(w *tagResourceRequest) (tagsInput, error) {
	return tagsInput{secretID: w.SecretId, tags: tagsIn(w.Tags)}, nil
}

func tagResource(ctx context.Context, h *Handler, in tagsInput) (any, error) {
	if err := h.svc.TagResource(ctx, in.secretID, in.tags); err != nil {
		return nil, err
	}
	return emptyOut{}, nil
}

type untagInput struct {
	secretID string
	keys     []string
}

func untagResourceIn(w *untagResourceRequest) (untagInput, error) {
	return untagInput{secretID: w.SecretId, keys: w.TagKeys}, nil
}

func untagResource(ctx context.Context, h *Handler, in untagInput) (any, error) {
	if err := h.svc.UntagResource(ctx, in.secretID, in.keys); err != nil {
		return nil, err
	}
	return emptyOut{}, nil
}

// GetRandomPassword

func getRandomPasswordIn(w *getRandomPasswordRequest) (secrets.PasswordInput, error) {
	return secrets.PasswordInput{
		PasswordLength:          w.PasswordLength,
		ExcludeCharacters:       w.ExcludeCharacters,
		ExcludeNumbers:          w.ExcludeNumbers,
		ExcludePunctuation:      w.ExcludePunctuation,
		ExcludeUppercase:        w.ExcludeUppercase,
		ExcludeLowercase:        w.ExcludeLowercase,
		IncludeSpace:            w.IncludeSpace,
		RequireEachIncludedType: w.RequireEachIncludedType,
	}, nil
}

func getRandomPassword(ctx context.Context, h *Handler, in secrets.PasswordInput) (any, error) {
	pw, err := h.svc.GetRandomPassword(ctx, in)
	if err != nil {
		return nil, err
	}
	return randomPasswordOut{RandomPassword: pw}, nil
}

// Resource policies

type policyInput struct {
	secretID    string
	policy      string
	blockPublic bool
}

func putResourcePolicyIn(w *putResourcePolicyRequest) (policyInput, error) {
	return policyInput{secretID: w.SecretId, policy: w.ResourcePolicy, blockPublic: w.BlockPublicPolicy}, nil
}

func putResourcePolicy(ctx context.Context, h *Handler, in policyInput) (any, error) {
	return refResult(h.svc.PutResourcePolicy(ctx, in.secretID, in.policy, in.blockPublic))
}

func validateResourcePolicyIn(w *validateResourcePolicyRequest) (policyInput, error) {
	return policyInput{secretID: w.SecretId, policy: w.ResourcePolicy}, nil
}

func validateResourcePolicy(ctx context.Context, h *Handler, in policyInput) (any, error) {
	v, err := h.svc.ValidateResourcePolicy(ctx, in.secretID, in.policy)
	if err != nil {
		return nil, err
	}
	res := validateResourcePolicyOut{PolicyValidationPassed: v.Passed}
	for _, f := range v.Errors {
		res.ValidationErrors = append(res.ValidationErrors, validationErrorOut{CheckName: f.CheckName, ErrorMessage: f.ErrorMessage})
	}
	return res, nil
}

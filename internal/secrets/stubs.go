package secrets

import "context"

var errTODO = internal("not implemented", nil)

func (s *Service) CreateSecret(ctx context.Context, in CreateSecretInput) (CreateSecretOutput, error) {
	return CreateSecretOutput{}, errTODO
}
func (s *Service) GetSecretValue(ctx context.Context, in GetSecretValueInput) (SecretValue, error) {
	return SecretValue{}, errTODO
}
func (s *Service) BatchGetSecretValue(ctx context.Context, in BatchGetSecretValueInput) (BatchGetSecretValueOutput, error) {
	return BatchGetSecretValueOutput{}, errTODO
}
func (s *Service) PutSecretValue(ctx context.Context, in PutSecretValueInput) (PutSecretValueOutput, error) {
	return PutSecretValueOutput{}, errTODO
}
func (s *Service) UpdateSecret(ctx context.Context, in UpdateSecretInput) (UpdateSecretOutput, error) {
	return UpdateSecretOutput{}, errTODO
}
func (s *Service) DescribeSecret(ctx context.Context, secretID string) (Description, error) {
	return Description{}, errTODO
}
func (s *Service) ListSecrets(ctx context.Context, in ListSecretsInput) (ListSecretsOutput, error) {
	return ListSecretsOutput{}, errTODO
}
func (s *Service) ListSecretVersionIds(ctx context.Context, in ListSecretVersionIdsInput) (ListSecretVersionIdsOutput, error) {
	return ListSecretVersionIdsOutput{}, errTODO
}
func (s *Service) UpdateSecretVersionStage(ctx context.Context, in UpdateSecretVersionStageInput) (Ref, error) {
	return Ref{}, errTODO
}
func (s *Service) DeleteSecret(ctx context.Context, in DeleteSecretInput) (DeleteSecretOutput, error) {
	return DeleteSecretOutput{}, errTODO
}
func (s *Service) RestoreSecret(ctx context.Context, secretID string) (Ref, error) {
	return Ref{}, errTODO
}
func (s *Service) TagResource(ctx context.Context, secretID string, tags []Tag) error {
	return errTODO
}
func (s *Service) UntagResource(ctx context.Context, secretID string, keys []string) error {
	return errTODO
}
func (s *Service) GetRandomPassword(ctx context.Context, in PasswordInput) (string, error) {
	return "", errTODO
}
func (s *Service) PutResourcePolicy(ctx context.Context, secretID, policy string, blockPublic bool) (Ref, error) {
	return Ref{}, errTODO
}
func (s *Service) GetResourcePolicy(ctx context.Context, secretID string) (ResourcePolicy, error) {
	return ResourcePolicy{}, errTODO
}
func (s *Service) DeleteResourcePolicy(ctx context.Context, secretID string) (Ref, error) {
	return Ref{}, errTODO
}
func (s *Service) ValidateResourcePolicy(ctx context.Context, secretID, policy string) (PolicyValidation, error) {
	return PolicyValidation{}, errTODO
}

// PurgeExpired removes secrets whose deletion window has passed and returns how many.
func (s *Service) PurgeExpired(ctx context.Context) (int, error) { return 0, errTODO }

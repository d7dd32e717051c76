package secrets

import "time"

// Tag is a secret's key/value tag.
type Tag struct {
	Key   string
	Value string
}

// Filter is a ListSecrets / BatchGetSecretValue filter: Key is one of
// description, name, tag-key, tag-value, primary-region, owning-service,
// all; a value starting with "!" negates.
type Filter struct {
	Key    string
	Values []string
}

// RotationRules is a secret's rotation schedule, as AWS stores it.
type RotationRules struct {
	AutomaticallyAfterDays *int64 `json:",omitempty"`
	ScheduleExpression     string `json:",omitempty"`
	Duration               string `json:",omitempty"`
}

// Ref names a secret in an operation's result.
type Ref struct {
	ARN  string
	Name string
}

// CreateSecretInput is CreateSecret's request.
type CreateSecretInput struct {
	Name               string
	ClientRequestToken string // "" → a version id is generated
	Description        *string
	KmsKeyID           string
	Value              Value // zero → the secret has no version yet
	Tags               []Tag
	AddReplicaRegions  int // number of replica regions asked for (refused: no replication)
}

// CreateSecretOutput is CreateSecret's result. VersionID is "" when no value
// was given.
type CreateSecretOutput struct {
	ARN       string
	Name      string
	VersionID string
}

// GetSecretValueInput selects a version: by VersionID, by VersionStage, by
// both (they must agree), or neither (AWSCURRENT).
type GetSecretValueInput struct {
	SecretID     string
	VersionID    string
	VersionStage string
}

// SecretValue is one version's value, as GetSecretValue returns it.
type SecretValue struct {
	ARN           string
	Name          string
	VersionID     string
	Value         Value
	VersionStages []string
	CreatedDate   time.Time
}

// BatchGetSecretValueInput names secrets by id (1–20) or by filters (≤10).
type BatchGetSecretValueInput struct {
	SecretIDList []string
	Filters      []Filter
	MaxResults   *int64
	NextToken    string
}

// BatchError is one secret's failure inside BatchGetSecretValue. Err is a
// domain *Error.
type BatchError struct {
	SecretID string
	Err      error
}

// BatchGetSecretValueOutput is BatchGetSecretValue's result.
type BatchGetSecretValueOutput struct {
	SecretValues []SecretValue
	Errors       []BatchError
	NextToken    string
}

// PutSecretValueInput is PutSecretValue's request. VersionStages nil means
// the default (AWSCURRENT).
type PutSecretValueInput struct {
	SecretID           string
	ClientRequestToken string
	Value              Value
	VersionStages      []string
	RotationToken      string
}

// PutSecretValueOutput is PutSecretValue's result.
type PutSecretValueOutput struct {
	ARN           string
	Name          string
	VersionID     string
	VersionStages []string
}

// UpdateSecretInput is UpdateSecret's request; nil/zero fields are left
// unchanged. KmsKeyID "" (non-nil) selects the default key.
type UpdateSecretInput struct {
	SecretID           string
	ClientRequestToken string
	Description        *string
	KmsKeyID           *string
	Value              Value
}

// UpdateSecretOutput is UpdateSecret's result; VersionID is "" when no
// version was created.
type UpdateSecretOutput struct {
	ARN       string
	Name      string
	VersionID string
}

// Description is a secret's metadata as DescribeSecret and ListSecrets show
// it. Zero times and empty strings are absent on the wire.
type Description struct {
	ARN                string
	Name               string
	Description        string
	KmsKeyID           string
	CreatedDate        time.Time
	LastChangedDate    time.Time
	LastAccessedDate   time.Time
	DeletedDate        time.Time
	LastRotatedDate    time.Time
	NextRotationDate   time.Time
	RotationEnabled    *bool // nil until rotation was first configured
	RotationLambdaARN  string
	RotationRules      *RotationRules
	Tags               []Tag
	VersionIdsToStages map[string][]string // labelled versions only
	PrimaryRegion      string
	OwningService      string
}

// ListSecretsInput is ListSecrets' request. SortBy is created-date (default),
// last-accessed-date, last-changed-date or name; SortOrder asc or desc
// (default).
type ListSecretsInput struct {
	IncludePlannedDeletion bool
	MaxResults             *int64
	NextToken              string
	Filters                []Filter
	SortOrder              string
	SortBy                 string
}

// ListSecretsOutput is ListSecrets' result.
type ListSecretsOutput struct {
	SecretList []Description
	NextToken  string
}

// ListSecretVersionIdsInput is ListSecretVersionIds' request.
type ListSecretVersionIdsInput struct {
	SecretID          string
	MaxResults        *int64
	NextToken         string
	IncludeDeprecated bool
}

// VersionEntry is one version in ListSecretVersionIds.
type VersionEntry struct {
	VersionID        string
	VersionStages    []string
	CreatedDate      time.Time
	LastAccessedDate time.Time
	KmsKeyIDs        []string
}

// ListSecretVersionIdsOutput is ListSecretVersionIds' result.
type ListSecretVersionIdsOutput struct {
	ARN       string
	Name      string
	Versions  []VersionEntry
	NextToken string
}

// UpdateSecretVersionStageInput moves, attaches or removes a staging label.
type UpdateSecretVersionStageInput struct {
	SecretID            string
	VersionStage        string
	RemoveFromVersionID string
	MoveToVersionID     string
}

// DeleteSecretInput is DeleteSecret's request.
type DeleteSecretInput struct {
	SecretID                   string
	RecoveryWindowInDays       *int64
	ForceDeleteWithoutRecovery bool
}

// DeleteSecretOutput is DeleteSecret's result.
type DeleteSecretOutput struct {
	ARN          string
	Name         string
	DeletionDate time.Time
}

// ResourcePolicy is GetResourcePolicy's result; Policy is "" when none.
type ResourcePolicy struct {
	ARN    string
	Name   string
	Policy string
}

// PolicyValidation is ValidateResourcePolicy's result.
type PolicyValidation struct {
	Passed bool
	Errors []PolicyFinding
}

// PolicyFinding is one check that a policy failed.
type PolicyFinding struct {
	CheckName    string
	ErrorMessage string
}

// PasswordInput is GetRandomPassword's request. Nil fields take AWS's
// defaults.
type PasswordInput struct {
	PasswordLength          *int64
	ExcludeCharacters       string
	ExcludeNumbers          bool
	ExcludePunctuation      bool
	ExcludeUppercase        bool
	ExcludeLowercase        bool
	IncludeSpace            bool
	RequireEachIncludedType *bool
}

package awsapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"

	"github.com/rotor-secrets/rotor/internal/secrets"
)

// Request shapes. Go field names are AWS's member names, so encoding/json
// needs no tags. Unknown members are ignored, as AWS ignores them. Optional
// members whose absence differs from their zero value are pointers.

type tagWire struct {
	Key   string
	Value string
}

type filterWire struct {
	Key    string
	Values []string
}

type replicaRegionWire struct {
	Region   string
	KmsKeyId string
}

type createSecretRequest struct {
	Name               string
	ClientRequestToken string
	Description        *string
	KmsKeyId           string
	SecretString       *string
	SecretBinary       *string
	Tags               []tagWire
	AddReplicaRegions  []replicaRegionWire
}

type getSecretValueRequest struct {
	SecretId     string
	VersionId    string
	VersionStage string
}

type batchGetSecretValueRequest struct {
	SecretIdList []string
	Filters      []filterWire
	MaxResults   *int64
	NextToken    string
}

type putSecretValueRequest struct {
	SecretId           string
	ClientRequestToken string
	SecretString       *string
	SecretBinary       *string
	VersionStages      []string
	RotationToken      string
}

type updateSecretRequest struct {
	SecretId           string
	ClientRequestToken string
	Description        *string
	KmsKeyId           *string
	SecretString       *string
	SecretBinary       *string
}

type secretIDRequest struct {
	SecretId string
}

type listSecretsRequest struct {
	IncludePlannedDeletion bool
	MaxResults             *int64
	NextToken              string
	Filters                []filterWire
	SortOrder              string
	SortBy                 string
}

type listSecretVersionIdsRequest struct {
	SecretId          string
	MaxResults        *int64
	NextToken         string
	IncludeDeprecated bool
}

type updateSecretVersionStageRequest struct {
	SecretId            string
	VersionStage        string
	RemoveFromVersionId string
	MoveToVersionId     string
}

type deleteSecretRequest struct {
	SecretId                   string
	RecoveryWindowInDays       *int64
	ForceDeleteWithoutRecovery bool
}

type tagResourceRequest struct {
	SecretId string
	Tags     []tagWire
}

type untagResourceRequest struct {
	SecretId string
	TagKeys  []string
}

type getRandomPasswordRequest struct {
	PasswordLength          *int64
	ExcludeCharacters       string
	ExcludeNumbers          bool
	ExcludePunctuation      bool
	ExcludeUppercase        bool
	ExcludeLowercase        bool
	IncludeSpace            bool
	RequireEachIncludedType *bool
}

type putResourcePolicyRequest struct {
	SecretId          string
	ResourcePolicy    string
	BlockPublicPolicy bool
}

type validateResourcePolicyRequest struct {
	SecretId       string
	ResourcePolicy string
}

// decodeJSON decodes a request body into its wire shape. An empty body is
// {}. Failures are SerializationExceptions whose message names the member
// and the expected type but never repeats any part of the body: a
// SecretString sent as a number is still a secret.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &requestError{kind: reqSerialization, msg: "request body is not valid JSON (syntax error near byte " + strconv.FormatInt(se.Offset, 10) + ")"}
	case errors.As(err, &te):
		got, _, _ := strings.Cut(te.Value, " ") // "number 1.5" → "number": never echo a literal
		if te.Field == "" {
			return serializationError("request body must be a JSON object, not " + article(got))
		}
		return serializationError("member " + te.Field + " must be " + article(jsonKind(te.Type)) + ", not " + article(got))
	}
	return &requestError{kind: reqSerialization, msg: "request body could not be decoded", cause: err}
}

// jsonKind names the JSON type that a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "value"
}

func article(kind string) string {
	switch kind {
	case "":
		return "a value"
	case "array", "integer", "object":
		return "an " + kind
	}
	return "a " + kind
}

// secretValue builds the service's Value from the two mutually exclusive
// members. A member present but empty is a set value: whether "" is
// acceptable is the service's decision, and so is refusing both.
func secretValue(str, bin *string) (secrets.Value, error) {
	var b []byte
	if bin != nil {
		var err error
		if b, err = decodeBase64(*bin); err != nil {
			return secrets.Value{}, serializationError("member SecretBinary must be base64-encoded")
		}
	}
	return secrets.NewValue(str, b)
}

// decodeBase64 accepts standard base64, padded (as the SDKs send it) or not.
// The result is never nil, so an empty SecretBinary stays a set value.
func decodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil && !strings.Contains(s, "=") {
		b, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, err
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

func tagsIn(in []tagWire) []secrets.Tag {
	if in == nil {
		return nil
	}
	out := make([]secrets.Tag, len(in))
	for i, t := range in {
		out[i] = secrets.Tag{Key: t.Key, Value: t.Value}
	}
	return out
}

func filtersIn(in []filterWire) []secrets.Filter {
	if in == nil {
		return nil
	}
	out := make([]secrets.Filter, len(in))
	for i, f := range in {
		out[i] = secrets.Filter{Key: f.Key, Values: f.Values}
	}
	return out
}

// Response shapes. Members without a value are omitted, as AWS omits them;
// the main collection of a List or Batch result is always present.

type refOut struct {
	ARN  string `json:",omitempty"`
	Name string `json:",omitempty"`
}

type createSecretOut struct {
	ARN       string `json:",omitempty"`
	Name      string `json:",omitempty"`
	VersionId string `json:",omitempty"`
}

type batchGetSecretValueOut struct {
	SecretValues []secretValueOut
	Errors       []batchErrorOut `json:",omitempty"`
	NextToken    string          `json:",omitempty"`
}

type batchErrorOut struct {
	SecretId  string `json:",omitempty"`
	ErrorCode string `json:",omitempty"`
	Message   string `json:",omitempty"`
}

type putSecretValueOut struct {
	ARN           string   `json:",omitempty"`
	Name          string   `json:",omitempty"`
	VersionId     string   `json:",omitempty"`
	VersionStages []string `json:",omitempty"`
}

type tagOut struct {
	Key   string
	Value string
}

type rotationRulesOut struct {
	AutomaticallyAfterDays *int64 `json:",omitempty"`
	ScheduleExpression     string `json:",omitempty"`
	Duration               string `json:",omitempty"`
}

// secretOut is DescribeSecret's result and a ListSecrets entry; the two
// spell the version map differently (VersionIdsToStages vs
// SecretVersionsToStages), so exactly one of those is set.
type secretOut struct {
	ARN                    string              `json:",omitempty"`
	Name                   string              `json:",omitempty"`
	Description            string              `json:",omitempty"`
	KmsKeyId               string              `json:",omitempty"`
	RotationEnabled        *bool               `json:",omitempty"`
	RotationLambdaARN      string              `json:",omitempty"`
	RotationRules          *rotationRulesOut   `json:",omitempty"`
	LastRotatedDate        epochTime           `json:",omitzero"`
	LastChangedDate        epochTime           `json:",omitzero"`
	LastAccessedDate       epochTime           `json:",omitzero"`
	DeletedDate            epochTime           `json:",omitzero"`
	NextRotationDate       epochTime           `json:",omitzero"`
	Tags                   []tagOut            `json:",omitempty"`
	VersionIdsToStages     map[string][]string `json:",omitempty"`
	SecretVersionsToStages map[string][]string `json:",omitempty"`
	OwningService          string              `json:",omitempty"`
	CreatedDate            epochTime           `json:",omitzero"`
	PrimaryRegion          string              `json:",omitempty"`
}

type listSecretsOut struct {
	SecretList []secretOut
	NextToken  string `json:",omitempty"`
}

type versionOut struct {
	VersionId        string    `json:",omitempty"`
	VersionStages    []string  `json:",omitempty"`
	LastAccessedDate epochTime `json:",omitzero"`
	CreatedDate      epochTime `json:",omitzero"`
	KmsKeyIds        []string  `json:",omitempty"`
}

type listSecretVersionIdsOut struct {
	Versions  []versionOut
	NextToken string `json:",omitempty"`
	ARN       string `json:",omitempty"`
	Name      string `json:",omitempty"`
}

type deleteSecretOut struct {
	ARN          string    `json:",omitempty"`
	Name         string    `json:",omitempty"`
	DeletionDate epochTime `json:",omitzero"`
}

type randomPasswordOut struct {
	RandomPassword string
}

type resourcePolicyOut struct {
	ARN            string `json:",omitempty"`
	Name           string `json:",omitempty"`
	ResourcePolicy string `json:",omitempty"`
}

type validationErrorOut struct {
	CheckName    string `json:",omitempty"`
	ErrorMessage string `json:",omitempty"`
}

type validateResourcePolicyOut struct {
	PolicyValidationPassed bool
	ValidationErrors       []validationErrorOut `json:",omitempty"`
}

type emptyOut struct{}

func describeOut(d *secrets.Description, listEntry bool) secretOut {
	o := secretOut{
		ARN:               d.ARN,
		Name:              d.Name,
		Description:       d.Description,
		KmsKeyId:          d.KmsKeyID,
		RotationEnabled:   d.RotationEnabled,
		RotationLambdaARN: d.RotationLambdaARN,
		LastRotatedDate:   epochTime(d.LastRotatedDate),
		LastChangedDate:   epochTime(d.LastChangedDate),
		LastAccessedDate:  epochTime(d.LastAccessedDate),
		DeletedDate:       epochTime(d.DeletedDate),
		NextRotationDate:  epochTime(d.NextRotationDate),
		OwningService:     d.OwningService,
		CreatedDate:       epochTime(d.CreatedDate),
		PrimaryRegion:     d.PrimaryRegion,
	}
	if r := d.RotationRules; r != nil {
		o.RotationRules = &rotationRulesOut{
			AutomaticallyAfterDays: r.AutomaticallyAfterDays,
			ScheduleExpression:     r.ScheduleExpression,
			Duration:               r.Duration,
		}
	}
	if len(d.Tags) > 0 {
		o.Tags = make([]tagOut, len(d.Tags))
		for i, t := range d.Tags {
			o.Tags[i] = tagOut{Key: t.Key, Value: t.Value}
		}
	}
	stages := stagesOut(d.VersionIdsToStages)
	if listEntry {
		o.SecretVersionsToStages = stages
	} else {
		o.VersionIdsToStages = stages
	}
	return o
}

// stagesOut guards the wire shape: a version's label list is a list, never
// null.
func stagesOut(m map[string][]string) map[string][]string {
	for _, st := range m {
		if st == nil {
			c := make(map[string][]string, len(m))
			for id, st := range m {
				c[id] = nonNil(st)
			}
			return c
		}
	}
	return m
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

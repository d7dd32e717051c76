package awsapi

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/secrets"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const (
	arn1 = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/app/db-AbCdEf"
	arn2 = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/app/cache-GhIjKl"
	ver1 = "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1"
	ver2 = "EXAMPLE2-90ab-cdef-fedc-ba987SECRET2"
)

var (
	tMillis = time.UnixMilli(1523477145713) // fractional seconds on the wire
	tWhole  = time.Unix(946684800, 0)       // whole seconds: no fraction
	tTens   = time.UnixMilli(1700000000120) // .12: trailing zero dropped
	tDay    = time.Unix(1700006400, 0)      // a midnight (LastAccessedDate)
)

func i64p(n int64) *int64 { return &n }
func boolp(b bool) *bool  { return &b }

// goldenCase is one request through the handler with a canned service
// answer; the golden file holds the request and the exact response.
type goldenCase struct {
	name string
	op   string
	body string
	out  any
	err  error
}

var goldenCases = []goldenCase{
	{name: "CreateSecret", op: "CreateSecret",
		body: `{"Name":"prod/app/db","ClientRequestToken":"EXAMPLE1-90ab-cdef-fedc-ba987SECRET1","Description":"app database","SecretString":"{\"username\":\"app\",\"password\":\"EXAMPLE-PASSWORD\"}","Tags":[{"Key":"team","Value":"payments"}]}`,
		out:  secrets.CreateSecretOutput{ARN: arn1, Name: "prod/app/db", VersionID: ver1}},
	{name: "CreateSecret_novalue", op: "CreateSecret",
		body: `{"Name":"prod/app/db"}`,
		out:  secrets.CreateSecretOutput{ARN: arn1, Name: "prod/app/db"}},
	{name: "GetSecretValue_string", op: "GetSecretValue",
		body: `{"SecretId":"prod/app/db"}`,
		out: secrets.SecretValue{ARN: arn1, Name: "prod/app/db", VersionID: ver1,
			Value:         secrets.StringValue("{\"password\":\"a\\\"b<c>&d\",\n\"note\":\"☃\"}"),
			VersionStages: []string{"AWSCURRENT"}, CreatedDate: tMillis}},
	{name: "GetSecretValue_binary", op: "GetSecretValue",
		body: `{"SecretId":"prod/app/db","VersionId":"EXAMPLE2-90ab-cdef-fedc-ba987SECRET2","VersionStage":"AWSPREVIOUS"}`,
		out: secrets.SecretValue{ARN: arn1, Name: "prod/app/db", VersionID: ver2,
			Value:         secrets.BinaryValue([]byte{0, 1, 2, 0xfe, 0xff, 'b', 'l', 'o', 'b'}),
			VersionStages: []string{"AWSPREVIOUS"}, CreatedDate: tWhole}},
	{name: "GetSecretValue_nostages", op: "GetSecretValue",
		body: `{"SecretId":"prod/app/db","VersionId":"EXAMPLE2-90ab-cdef-fedc-ba987SECRET2"}`,
		out:  secrets.SecretValue{ARN: arn1, Name: "prod/app/db", VersionID: ver2, Value: secrets.StringValue("x"), CreatedDate: tTens}},
	{name: "BatchGetSecretValue", op: "BatchGetSecretValue",
		body: `{"SecretIdList":["prod/app/db","prod/app/cache","missing","broken"]}`,
		out: secrets.BatchGetSecretValueOutput{
			SecretValues: []secrets.SecretValue{
				{ARN: arn1, Name: "prod/app/db", VersionID: ver1, Value: secrets.StringValue("s1<&>"), VersionStages: []string{"AWSCURRENT", "AWSPENDING"}, CreatedDate: tMillis},
				{ARN: arn2, Name: "prod/app/cache", VersionID: ver2, Value: secrets.BinaryValue([]byte("bin")), VersionStages: []string{"AWSCURRENT"}, CreatedDate: tWhole},
			},
			Errors: []secrets.BatchError{
				{SecretID: "missing", Err: &secrets.Error{Kind: secrets.KindNotFound, Msg: "Secrets Manager can't find the specified secret."}},
				{SecretID: "broken", Err: &secrets.Error{Kind: secrets.KindInternal, Msg: "open version", Err: errors.New("keyring: no master key 7")}},
			},
		}},
	{name: "BatchGetSecretValue_filters", op: "BatchGetSecretValue",
		body: `{"Filters":[{"Key":"name","Values":["prod/"]}],"MaxResults":20,"NextToken":"tok1"}`,
		out:  secrets.BatchGetSecretValueOutput{NextToken: "tok2"}},
	{name: "PutSecretValue", op: "PutSecretValue",
		body: `{"SecretId":"prod/app/db","ClientRequestToken":"EXAMPLE2-90ab-cdef-fedc-ba987SECRET2","SecretString":"new","VersionStages":["AWSPENDING"],"RotationToken":"0d4ddf6b-7a5c-4b5d-9b83-2f6f7a2b1c3d"}`,
		out:  secrets.PutSecretValueOutput{ARN: arn1, Name: "prod/app/db", VersionID: ver2, VersionStages: []string{"AWSPENDING"}}},
	{name: "PutSecretValue_binary", op: "PutSecretValue",
		body: `{"SecretId":"prod/app/db","ClientRequestToken":"EXAMPLE2-90ab-cdef-fedc-ba987SECRET2","SecretBinary":"AAEC/v8="}`,
		out:  secrets.PutSecretValueOutput{ARN: arn1, Name: "prod/app/db", VersionID: ver2, VersionStages: []string{"AWSCURRENT"}}},
	{name: "UpdateSecret", op: "UpdateSecret",
		body: `{"SecretId":"prod/app/db","SecretString":"v2","ClientRequestToken":"EXAMPLE2-90ab-cdef-fedc-ba987SECRET2"}`,
		out:  secrets.UpdateSecretOutput{ARN: arn1, Name: "prod/app/db", VersionID: ver2}},
	{name: "UpdateSecret_metadata", op: "UpdateSecret",
		body: `{"SecretId":"prod/app/db","Description":"","KmsKeyId":"alias/app"}`,
		out:  secrets.UpdateSecretOutput{ARN: arn1, Name: "prod/app/db"}},
	{name: "DescribeSecret_full", op: "DescribeSecret",
		body: `{"SecretId":"prod/app/db"}`,
		out: secrets.Description{
			ARN: arn1, Name: "prod/app/db", Description: "app database", KmsKeyID: "alias/app",
			CreatedDate: tWhole, LastChangedDate: tMillis, LastAccessedDate: tDay, LastRotatedDate: tTens,
			NextRotationDate: tTens.Add(30 * 24 * time.Hour), DeletedDate: tMillis.Add(time.Hour),
			RotationEnabled:   boolp(true),
			RotationLambdaARN: "arn:aws:lambda:us-east-1:000000000000:function:rotor-postgres-alternating-users",
			RotationRules:     &secrets.RotationRules{AutomaticallyAfterDays: i64p(30), ScheduleExpression: "rate(30 days)", Duration: "3h"},
			Tags:              []secrets.Tag{{Key: "team", Value: "payments"}, {Key: "empty", Value: ""}},
			VersionIdsToStages: map[string][]string{
				ver2: {"AWSCURRENT", "AWSPENDING"},
				ver1: {"AWSPREVIOUS"},
			},
			PrimaryRegion: "us-east-1", OwningService: "rotor",
		}},
	{name: "DescribeSecret_minimal", op: "DescribeSecret",
		body: `{"SecretId":"prod/app/db"}`,
		out:  secrets.Description{ARN: arn1, Name: "prod/app/db", CreatedDate: tWhole}},
	{name: "DescribeSecret_rotation_cancelled", op: "DescribeSecret",
		body: `{"SecretId":"prod/app/db"}`,
		out: secrets.Description{ARN: arn1, Name: "prod/app/db", CreatedDate: tWhole, RotationEnabled: boolp(false),
			RotationRules:      &secrets.RotationRules{ScheduleExpression: "cron(0 4 ? * SUN *)"},
			VersionIdsToStages: map[string][]string{ver1: {"AWSCURRENT"}, ver2: nil}}},
	{name: "ListSecrets", op: "ListSecrets",
		body: `{"MaxResults":2,"Filters":[{"Key":"tag-key","Values":["team"]}],"SortOrder":"asc","SortBy":"name","IncludePlannedDeletion":true}`,
		out: secrets.ListSecretsOutput{
			SecretList: []secrets.Description{
				{ARN: arn2, Name: "prod/app/cache", CreatedDate: tMillis, LastChangedDate: tMillis,
					Tags: []secrets.Tag{{Key: "team", Value: "cache"}}, VersionIdsToStages: map[string][]string{ver2: {"AWSCURRENT"}}},
				{ARN: arn1, Name: "prod/app/db", Description: "app database", CreatedDate: tWhole, DeletedDate: tTens,
					RotationEnabled: boolp(true), RotationRules: &secrets.RotationRules{AutomaticallyAfterDays: i64p(7)},
					VersionIdsToStages: map[string][]string{ver1: {"AWSCURRENT"}}},
			},
			NextToken: "next-page",
		}},
	{name: "ListSecrets_empty", op: "ListSecrets",
		body: ``,
		out:  secrets.ListSecretsOutput{}},
	{name: "ListSecretVersionIds", op: "ListSecretVersionIds",
		body: `{"SecretId":"prod/app/db","IncludeDeprecated":true,"MaxResults":10}`,
		out: secrets.ListSecretVersionIdsOutput{ARN: arn1, Name: "prod/app/db", Versions: []secrets.VersionEntry{
			{VersionID: ver2, VersionStages: []string{"AWSCURRENT"}, CreatedDate: tMillis, LastAccessedDate: tDay, KmsKeyIDs: []string{"DefaultEncryptionKey"}},
			{VersionID: ver1, CreatedDate: tWhole},
		}}},
	{name: "UpdateSecretVersionStage", op: "UpdateSecretVersionStage",
		body: `{"SecretId":"prod/app/db","VersionStage":"AWSCURRENT","MoveToVersionId":"EXAMPLE2-90ab-cdef-fedc-ba987SECRET2","RemoveFromVersionId":"EXAMPLE1-90ab-cdef-fedc-ba987SECRET1"}`,
		out:  secrets.Ref{ARN: arn1, Name: "prod/app/db"}},
	{name: "DeleteSecret", op: "DeleteSecret",
		body: `{"SecretId":"prod/app/db","RecoveryWindowInDays":7}`,
		out:  secrets.DeleteSecretOutput{ARN: arn1, Name: "prod/app/db", DeletionDate: tMillis.Add(7 * 24 * time.Hour)}},
	{name: "RestoreSecret", op: "RestoreSecret",
		body: `{"SecretId":"prod/app/db"}`,
		out:  secrets.Ref{ARN: arn1, Name: "prod/app/db"}},
	{name: "TagResource", op: "TagResource",
		body: `{"SecretId":"prod/app/db","Tags":[{"Key":"env","Value":"prod"}]}`},
	{name: "UntagResource", op: "UntagResource",
		body: `{"SecretId":"prod/app/db","TagKeys":["env"]}`},
	{name: "GetRandomPassword", op: "GetRandomPassword",
		body: `{"PasswordLength":24,"ExcludeCharacters":"\"'\\","RequireEachIncludedType":true}`,
		out:  `Xq<3>&"p\R9~z!k2#M%v^(b)_L`},
	{name: "PutResourcePolicy", op: "PutResourcePolicy",
		body: `{"SecretId":"prod/app/db","ResourcePolicy":"{\"Version\":\"2012-10-17\",\"Statement\":[]}","BlockPublicPolicy":true}`,
		out:  secrets.Ref{ARN: arn1, Name: "prod/app/db"}},
	{name: "GetResourcePolicy", op: "GetResourcePolicy",
		body: `{"SecretId":"prod/app/db"}`,
		out:  secrets.ResourcePolicy{ARN: arn1, Name: "prod/app/db", Policy: `{"Version":"2012-10-17","Statement":[]}`}},
	{name: "GetResourcePolicy_none", op: "GetResourcePolicy",
		body: `{"SecretId":"prod/app/db"}`,
		out:  secrets.ResourcePolicy{ARN: arn1, Name: "prod/app/db"}},
	{name: "DeleteResourcePolicy", op: "DeleteResourcePolicy",
		body: `{"SecretId":"prod/app/db"}`,
		out:  secrets.Ref{ARN: arn1, Name: "prod/app/db"}},
	{name: "ValidateResourcePolicy_passed", op: "ValidateResourcePolicy",
		body: `{"ResourcePolicy":"{\"Version\":\"2012-10-17\",\"Statement\":[]}"}`,
		out:  secrets.PolicyValidation{Passed: true}},
	{name: "ValidateResourcePolicy_failed", op: "ValidateResourcePolicy",
		body: `{"SecretId":"prod/app/db","ResourcePolicy":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"secretsmanager:*\",\"Resource\":\"*\"}]}"}`,
		out: secrets.PolicyValidation{Errors: []secrets.PolicyFinding{
			{CheckName: "REFLEXIVE_PRINCIPAL_CHECK", ErrorMessage: "the policy grants access to every principal"},
		}}},
	{name: "error_ResourceNotFound", op: "GetSecretValue",
		body: `{"SecretId":"nope"}`,
		err:  &secrets.Error{Kind: secrets.KindNotFound, Msg: "Secrets Manager can't find the specified secret."}},
	{name: "error_InvalidRequest", op: "GetSecretValue",
		body: `{"SecretId":"prod/app/db"}`,
		err:  &secrets.Error{Kind: secrets.KindInvalidRequest, Msg: "You can't perform this operation on the secret because it was marked for deletion."}},
	{name: "error_Internal", op: "GetSecretValue",
		body: `{"SecretId":"prod/app/db"}`,
		err:  &secrets.Error{Kind: secrets.KindInternal, Msg: "open", Err: errors.New("keyring: authentication failed")}},
	{name: "error_Serialization", op: "GetSecretValue",
		body: `{"SecretId":["prod/app/db"]}`},
	{name: "error_UnknownOperation", op: "ReplicateSecretToRegions",
		body: `{"SecretId":"prod/app/db"}`},
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := testHandler(t, &fakeBackend{out: tc.out, err: tc.err}, nil)
			target := targetPrefix + tc.op
			w := post(h, target, tc.body)

			var got bytes.Buffer
			fmt.Fprintf(&got, "POST %s\n%s\n\n", target, tc.body)
			fmt.Fprintf(&got, "HTTP %d\n", w.Code)
			for _, k := range []string{"Content-Type", "X-Amzn-Errortype", "X-Amzn-Requestid"} {
				if v := w.Header().Get(k); v != "" {
					fmt.Fprintf(&got, "%s: %s\n", k, v)
				}
			}
			fmt.Fprintf(&got, "\n%s\n", w.Body.Bytes())

			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("response differs from %s (go test -update rewrites it)\n got:\n%s\nwant:\n%s", path, got.Bytes(), want)
			}
		})
	}
}

// goldenRequests returns the request bodies recorded in testdata/*.golden,
// the seeds of FuzzDecodeRequest.
func goldenRequests(tb testing.TB) [][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no golden files: %v", err)
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		lines := strings.SplitN(string(b), "\n", 3)
		if len(lines) < 3 || !strings.HasPrefix(lines[0], "POST ") {
			tb.Fatalf("%s: unexpected format", p)
		}
		out = append(out, []byte(lines[1]))
	}
	return out
}

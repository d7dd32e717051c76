package e2e

// Named keys (KmsKeyId) through the binary: secrets under a key created
// with rotor key create, selected by alias, key ARN and key id; a disabled
// key's secrets fail with DecryptionFailure (and an audit record) until it
// is enabled again; rotating a named key re-wraps its envelopes only.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

type kmsKeyMetadata struct {
	KeyId, Arn, Alias, Description, KeyState string
	Enabled                                  bool
}

func createKMSKey(t testing.TB, srv *server, alias string) kmsKeyMetadata {
	t.Helper()
	var out struct{ KeyMetadata kmsKeyMetadata }
	s := runKey(t, srv, "create", "--alias", alias, "--description", "key of "+alias, "-o", "json")
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("rotor key create -o json: %v\n%s", err, s)
	}
	k := out.KeyMetadata
	if k.Arn != "arn:aws:kms:"+region+":"+accountID+":key/"+k.KeyId || k.Alias != alias || !k.Enabled {
		t.Fatalf("rotor key create = %+v", k)
	}
	return k
}

func getValue(t testing.TB, c *secretsmanager.Client, id string) (string, error) {
	t.Helper()
	out, err := c.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}

func TestNamedKMSKeys(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	c := client(t, srv)
	ctx := t.Context()
	k := createKMSKey(t, srv, "alias/team-a")

	names := map[string]string{} // KmsKeyId → secret name
	for _, ref := range []string{"alias/team-a", k.Arn, k.KeyId} {
		name := uniqueName(t)
		_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), KmsKeyId: aws.String(ref), SecretString: aws.String("v-" + name)})
		must(t, err)
		names[ref] = name
		d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		must(t, err)
		if aws.ToString(d.KmsKeyId) != k.Arn {
			t.Errorf("KmsKeyId of a secret created with %s = %q, want %s", ref, aws.ToString(d.KmsKeyId), k.Arn)
		}
	}
	plain := uniqueName(t)
	createString(t, c, plain, "plain")
	if d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(plain)}); err != nil || d.KmsKeyId != nil {
		t.Errorf("default key: KmsKeyId = %v, %v; want none", d.KmsKeyId, err)
	}
	for _, name := range names {
		if got, err := getValue(t, c, name); err != nil || got != "v-"+name {
			t.Errorf("GetSecretValue(%s) = %q, %v", name, got, err)
		}
	}
	_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(uniqueName(t)), KmsKeyId: aws.String("alias/no-such-key"), SecretString: aws.String("x")})
	wantCode(t, err, "InvalidParameterException")

	t.Run("disable and enable", func(t *testing.T) {
		runKey(t, srv, "disable", "alias/team-a")
		name := names["alias/team-a"]
		_, err := getValue(t, c, name)
		wantCode(t, err, "DecryptionFailure")
		r := callRotor(t, srv, rootKey(), "secretsmanager.GetSecretValue", map[string]string{"SecretId": names[k.KeyId]})
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"__type":"DecryptionFailure"`) || !strings.Contains(r.message(), "disabled") {
			t.Errorf("GetSecretValue under a disabled key = %d %s", r.status, r.body)
		}
		_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String("new")})
		wantCode(t, err, "EncryptionFailure")
		if got, err := getValue(t, c, plain); err != nil || got != "plain" {
			t.Errorf("a default-key secret while team-a is disabled = %q, %v", got, err)
		}
		found := false
		for _, rec := range readAudit(t, auditLogPath(srv.dataDir)) {
			if rec.EventName == "GetSecretValue" && rec.ErrorCode == "DecryptionFailure" && strings.Contains(rec.SecretARN+rec.raw, name) {
				found = true
			}
		}
		if !found {
			t.Error("no audit record of the GetSecretValue that failed with DecryptionFailure")
		}
		runKey(t, srv, "enable", k.KeyId)
		if got, err := getValue(t, c, name); err != nil || got != "v-"+name {
			t.Errorf("after enabling = %q, %v", got, err)
		}
	})

	t.Run("rotate the named key", func(t *testing.T) {
		before := masterKeyStatus(t, srv)
		runKey(t, srv, "rotate", "--key", "alias/team-a")
		deadline := time.Now().Add(30 * time.Second)
		var st keyStatus
		for {
			out := runKey(t, srv, "status", "--key", k.Arn, "-o", "json")
			st = keyStatus{}
			must(t, json.Unmarshal([]byte(out), &st))
			if st.Rewrap.Pending == 0 && len(st.Versions) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("re-wrap of team-a did not finish: %+v", st)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, v := range st.Versions {
			want := 0
			if v.Id == st.Current {
				want = 3
			}
			if v.Envelopes != want || strings.HasPrefix(v.Id, "mk-") {
				t.Errorf("team-a version %+v, want %d envelopes", v, want)
			}
		}
		after := masterKeyStatus(t, srv)
		if after.Current != before.Current || after.Current != after.RootKey || len(after.Versions) != 1 {
			t.Errorf("default key status after rotating team-a = %+v, want untouched (%+v)", after, before)
		}
		for _, name := range names {
			if got, err := getValue(t, c, name); err != nil || got != "v-"+name {
				t.Errorf("GetSecretValue(%s) after the rotation = %q, %v", name, got, err)
			}
		}
	})

	t.Run("list and describe", func(t *testing.T) {
		out := runKey(t, srv, "list")
		if !strings.Contains(out, k.KeyId) || !strings.Contains(out, "alias/team-a") || !strings.Contains(out, "Enabled") {
			t.Errorf("rotor key list =\n%s", out)
		}
		out = runKey(t, srv, "describe", "alias/team-a")
		if !strings.Contains(out, "arn: "+k.Arn) {
			t.Errorf("rotor key describe =\n%s", out)
		}
	})
}

// TestAWSCLIKmsKeyID: aws secretsmanager create-secret --kms-key-id.
func TestAWSCLIKmsKeyID(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	k := createKMSKey(t, srv, "alias/team-a")
	cli := newAWSCLI(t, srv)
	// This server has the test root key rather than a credentials file.
	env := cli.env[:0:0]
	for _, kv := range cli.env {
		if !strings.HasPrefix(kv, "AWS_PROFILE=") && !strings.HasPrefix(kv, "AWS_SHARED_CREDENTIALS_FILE=") {
			env = append(env, kv)
		}
	}
	cli.env = append(env, "AWS_ACCESS_KEY_ID="+testAccessKeyID, "AWS_SECRET_ACCESS_KEY="+testSecretAccessKey)

	name := uniqueName(t)
	cli.json(t, nil, "create-secret", "--name", name, "--kms-key-id", "alias/team-a", "--secret-string", "by-cli")
	var d struct{ KmsKeyId string }
	cli.json(t, &d, "describe-secret", "--secret-id", name)
	if d.KmsKeyId != k.Arn {
		t.Errorf("describe-secret KmsKeyId = %q, want %s", d.KmsKeyId, k.Arn)
	}
	cli.fails(t, "InvalidParameterException", "create-secret", "--name", uniqueName(t), "--kms-key-id", "alias/nope", "--secret-string", "x")
}

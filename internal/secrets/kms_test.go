package secrets_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

// kmsKeys is a fixed set of named keys: by id and by alias.
type kmsKeys map[string]secrets.KMSKey

func (k kmsKeys) LookupKMSKey(_ context.Context, id string) (secrets.KMSKey, bool, error) {
	key, ok := k[id]
	return key, ok, nil
}

const teamKey = "11111111-2222-4333-8444-555555555555"

func newKMSHarness(t *testing.T) (*secrets.Service, *keyring.Keyring) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rotor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	root, _ := keyring.NewMasterKey()
	kr, err := keyring.New(root)
	if err != nil {
		t.Fatal(err)
	}
	team, _ := keyring.NewMasterKey()
	if err := kr.AddIn(teamKey, team); err != nil {
		t.Fatal(err)
	}
	if err := kr.SetCurrentIn(teamKey, team.ID); err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:kms:us-east-1:000000000000:key/" + teamKey
	key := secrets.KMSKey{ID: teamKey, ARN: arn}
	svc := secrets.New(secrets.Config{
		Region: "us-east-1", AccountID: "000000000000", Store: st, Keyring: kr,
		KMSKeys: kmsKeys{teamKey: key, arn: key, "alias/team-a": key},
	})
	return svc, kr
}

func TestNamedKMSKey(t *testing.T) {
	ctx := t.Context()
	svc, kr := newKMSHarness(t)
	arn := "arn:aws:kms:us-east-1:000000000000:key/" + teamKey
	for i, id := range []string{"alias/team-a", teamKey, arn} {
		name := []string{"by-alias", "by-id", "by-arn"}[i]
		if _, err := svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: name, KmsKeyID: id, Value: secrets.StringValue("v-" + name)}); err != nil {
			t.Fatalf("CreateSecret with KmsKeyId %s: %v", id, err)
		}
		d, err := svc.DescribeSecret(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if d.KmsKeyID != arn {
			t.Errorf("%s: KmsKeyId = %q, want %q", name, d.KmsKeyID, arn)
		}
	}
	if _, err := svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: "default", Value: secrets.StringValue("d")}); err != nil {
		t.Fatal(err)
	}
	if d, _ := svc.DescribeSecret(ctx, "default"); d.KmsKeyID != "" {
		t.Errorf("default key: KmsKeyId = %q, want none", d.KmsKeyID)
	}
	vs, err := svc.ListSecretVersionIds(ctx, secrets.ListSecretVersionIdsInput{SecretID: "by-alias"})
	if err != nil {
		t.Fatal(err)
	}
	if got := vs.Versions[0].KmsKeyIDs; len(got) != 1 || got[0] != arn {
		t.Errorf("KmsKeyIds = %v, want [%s]", got, arn)
	}

	_, err = svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: "unknown", KmsKeyID: "alias/nope", Value: secrets.StringValue("x")})
	wantKind(t, err, secrets.KindInvalidParameter)

	t.Run("disabled", func(t *testing.T) {
		kr.SetDisabled(teamKey, true)
		_, err := svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: "by-alias"})
		wantKind(t, err, secrets.KindDecryptionFailure)
		if !strings.Contains(err.Error(), "disabled") || !strings.Contains(err.Error(), teamKey) {
			t.Errorf("message %q does not name the disabled key", err)
		}
		_, err = svc.PutSecretValue(ctx, secrets.PutSecretValueInput{SecretID: "by-id", Value: secrets.StringValue("new")})
		wantKind(t, err, secrets.KindEncryptionFailure)
		if v, err := svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: "default"}); err != nil || v.Value.Reveal() == nil {
			t.Errorf("a default-key secret while team-a is disabled: %v", err)
		}
		kr.SetDisabled(teamKey, false)
		v, err := svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: "by-alias"})
		if err != nil || string(v.Value.Reveal()) != "v-by-alias" {
			t.Errorf("after enabling: %q, %v", v.Value.Reveal(), err)
		}
	})

	t.Run("UpdateSecret moves labelled versions", func(t *testing.T) {
		if _, err := svc.UpdateSecret(ctx, secrets.UpdateSecretInput{SecretID: "default", KmsKeyID: str("alias/team-a")}); err != nil {
			t.Fatal(err)
		}
		if d, _ := svc.DescribeSecret(ctx, "default"); d.KmsKeyID != arn {
			t.Errorf("KmsKeyId = %q, want %q", d.KmsKeyID, arn)
		}
		// AWSCURRENT was re-encrypted with the new key: disabling it
		// locks the secret.
		kr.SetDisabled(teamKey, true)
		_, err := svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: "default"})
		wantKind(t, err, secrets.KindDecryptionFailure)
		// Back to the default key is refused while the key is disabled.
		_, err = svc.UpdateSecret(ctx, secrets.UpdateSecretInput{SecretID: "default", KmsKeyID: str("")})
		wantKind(t, err, secrets.KindDecryptionFailure)
		kr.SetDisabled(teamKey, false)
		if _, err := svc.UpdateSecret(ctx, secrets.UpdateSecretInput{SecretID: "default", KmsKeyID: str("")}); err != nil {
			t.Fatal(err)
		}
		kr.SetDisabled(teamKey, true)
		defer kr.SetDisabled(teamKey, false)
		v, err := svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: "default"})
		if err != nil || string(v.Value.Reveal()) != "d" {
			t.Errorf("after moving back to the default key: %q, %v", v.Value.Reveal(), err)
		}
	})
}

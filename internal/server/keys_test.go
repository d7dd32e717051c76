package server

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-secrets/rotor/internal/awsapi"
	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/keys"
)

func TestRotateRootKeyEnvRefused(t *testing.T) {
	_, err := keyAdmin{cfg: Config{MasterKeySource: KeySourceEnv}}.RotateRootKey(t.Context(), nil)
	var pe *keys.PreconditionError
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "ROTOR_MASTER_KEY") {
		t.Fatalf("RotateRootKey with the env source: %v", err)
	}
}

// TestRotateRootKeyPassphrase rotates a passphrase-sealed root key, then
// restarts, and restarts again after a simulated crash between the store
// commit and the rename of master.seal.next.
func TestRotateRootKeyPassphrase(t *testing.T) {
	dir := t.TempDir()
	pass := "a good passphrase"
	pf := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(pf, []byte(pass), 0o600); err != nil {
		t.Fatal(err)
	}
	withFile := func(c *Config) { c.PassphraseFile = pf }
	s := openTestServer(t, sealedConfig(dir), withFile)
	stop := runSealTest(t, s)
	if _, err := sdkClient(s).CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String("k"), SecretString: aws.String("v")}); err != nil {
		t.Fatal(err)
	}
	admin := keyAdmin{Service: s.keys, cfg: s.cfg}
	sealPath := filepath.Join(dir, SealFile)
	oldSeal, err := os.ReadFile(sealPath)
	if err != nil {
		t.Fatal(err)
	}

	var pe *keys.PreconditionError
	if _, err := admin.RotateRootKey(t.Context(), []byte(pass)); !errors.As(err, &pe) {
		t.Fatalf("before rotate: %v, want a *keys.PreconditionError", err)
	}
	if _, err := s.keys.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for {
		res, err := s.keys.Step(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !res.More {
			break
		}
	}
	var ie *keys.InvalidError
	if _, err := admin.RotateRootKey(t.Context(), nil); !errors.As(err, &ie) {
		t.Fatalf("without a passphrase: %v", err)
	}
	var wrong *awsapi.InvalidPassphraseError
	if _, err := admin.RotateRootKey(t.Context(), []byte("not the passphrase")); !errors.As(err, &wrong) {
		t.Fatalf("with a wrong passphrase: %v", err)
	}
	r, err := admin.RotateRootKey(t.Context(), []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	got, err := keyring.PassphraseSource{Path: sealPath, Passphrase: []byte(pass)}.RootKey(t.Context())
	if err != nil || got.ID != r.New || r.New == r.Old {
		t.Fatalf("master.seal holds %s (%v), want %s", got.ID, err, r.New)
	}
	if p, err := keyring.ReadSealParams(sealPath); err != nil || p != fastSeal {
		t.Errorf("new master.seal's parameters %+v (%v), want %+v", p, err, fastSeal)
	}
	if st, err := s.keys.Status(t.Context()); err != nil || st.Root != r.New {
		t.Fatalf("status root %s (%v), want %s", st.Root, err, r.New)
	}
	newSeal, err := os.ReadFile(sealPath)
	if err != nil {
		t.Fatal(err)
	}
	stop()

	for _, crash := range []bool{false, true} {
		if crash {
			// The store committed, master.seal.next was not renamed yet.
			if err := os.WriteFile(sealPath+keyring.PendingSuffix, newSeal, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(sealPath, oldSeal, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		s = openTestServer(t, sealedConfig(dir), withFile)
		stop = runSealTest(t, s)
		out, err := sdkClient(s).GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("k")})
		if err != nil || aws.ToString(out.SecretString) != "v" {
			t.Fatalf("after restart (crash %v): %v %v", crash, out, err)
		}
		stop()
		if exists(sealPath + keyring.PendingSuffix) {
			t.Fatalf("master.seal.next left (crash %v)", crash)
		}
	}
}

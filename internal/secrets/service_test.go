package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	svc   *secrets.Service
	clock *clock
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rotor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk, err := keyring.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(mk)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	svc := secrets.New(secrets.Config{
		Region: "us-east-1", AccountID: "000000000000", Store: st, Keyring: kr, Now: c.Now,
		CheckPolicy: func(doc string) (bool, error) {
			if !strings.HasPrefix(doc, "{") {
				return false, errors.New("not an object")
			}
			return strings.Contains(doc, `"Principal":"*"`), nil
		},
	})
	return &harness{svc: svc, clock: c}
}

func token(n int) string { return fmt.Sprintf("%032d", n) }

func str(s string) *string { return &s }
func i64(n int64) *int64   { return &n }

func wantKind(t *testing.T, err error, k secrets.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want kind %d", k)
	}
	if got := secrets.KindOf(err); got != k {
		t.Fatalf("err = %v (kind %d), want kind %d", err, got, k)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func (h *harness) create(t *testing.T, name, value string) secrets.CreateSecretOutput {
	t.Helper()
	out, err := h.svc.CreateSecret(t.Context(), secrets.CreateSecretInput{Name: name, Value: secrets.StringValue(value), ClientRequestToken: token(0)})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (h *harness) put(t *testing.T, id string, n int, value string, stages ...string) secrets.PutSecretValueOutput {
	t.Helper()
	out, err := h.svc.PutSecretValue(t.Context(), secrets.PutSecretValueInput{SecretID: id, ClientRequestToken: token(n), Value: secrets.StringValue(value), VersionStages: stages})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (h *harness) get(t *testing.T, id string) string {
	t.Helper()
	v, err := h.svc.GetSecretValue(t.Context(), secrets.GetSecretValueInput{SecretID: id})
	if err != nil {
		t.Fatal(err)
	}
	return string(v.Value.Reveal())
}

func (h *harness) stages(t *testing.T, id string) map[string][]string {
	t.Helper()
	d, err := h.svc.DescribeSecret(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d.VersionIdsToStages
}

var arnPattern = regexp.MustCompile(`^arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-[A-Za-z]{6}$`)

func TestCreateSecret(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	out := h.create(t, "prod/db", "v1")
	if !arnPattern.MatchString(out.ARN) || out.Name != "prod/db" || out.VersionID != token(0) {
		t.Fatalf("CreateSecret = %+v", out)
	}
	if got := h.get(t, "prod/db"); got != "v1" {
		t.Fatalf("value = %q", got)
	}
	if got := h.stages(t, out.ARN); !slices.Equal(got[token(0)], []string{"AWSCURRENT"}) {
		t.Fatalf("stages = %v", got)
	}

	t.Run("retry with same token and value is a no-op", func(t *testing.T) {
		again := h.create(t, "prod/db", "v1")
		if again != out {
			t.Fatalf("retry = %+v, want %+v", again, out)
		}
	})
	t.Run("same token other value", func(t *testing.T) {
		_, err := h.svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: "prod/db", Value: secrets.StringValue("v2"), ClientRequestToken: token(0)})
		wantKind(t, err, secrets.KindExists)
	})
	t.Run("existing name", func(t *testing.T) {
		_, err := h.svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: "prod/db", Value: secrets.StringValue("v1")})
		wantKind(t, err, secrets.KindExists)
	})
	t.Run("without value", func(t *testing.T) {
		o, err := h.svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: "empty"})
		if err != nil || o.VersionID != "" {
			t.Fatalf("CreateSecret = %+v, %v", o, err)
		}
		_, err = h.svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: "empty"})
		wantKind(t, err, secrets.KindNotFound)
		// The first PutSecretValue becomes AWSCURRENT even if it asks for AWSPENDING only.
		p := h.put(t, "empty", 1, "first", "AWSPENDING")
		if !slices.Equal(p.VersionStages, []string{"AWSCURRENT", "AWSPENDING"}) {
			t.Fatalf("stages = %v", p.VersionStages)
		}
	})
	t.Run("binary", func(t *testing.T) {
		_, err := h.svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: "bin", Value: secrets.BinaryValue([]byte{0, 1, 2, 255})})
		if err != nil {
			t.Fatal(err)
		}
		v := must[secrets.SecretValue](t)(h.svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: "bin"}))
		if !v.Value.Binary() || string(v.Value.Reveal()) != "\x00\x01\x02\xff" {
			t.Fatalf("binary value lost")
		}
	})

	invalid := []struct {
		name string
		in   secrets.CreateSecretInput
		kind secrets.Kind
	}{
		{"empty name", secrets.CreateSecretInput{Name: ""}, secrets.KindValidation},
		{"bad char", secrets.CreateSecretInput{Name: "a b"}, secrets.KindInvalidParameter},
		{"long name", secrets.CreateSecretInput{Name: strings.Repeat("n", 513)}, secrets.KindValidation},
		{"short token", secrets.CreateSecretInput{Name: "t", ClientRequestToken: "abc"}, secrets.KindValidation},
		{"long token", secrets.CreateSecretInput{Name: "t", ClientRequestToken: strings.Repeat("t", 65)}, secrets.KindValidation},
		{"empty value", secrets.CreateSecretInput{Name: "t", Value: secrets.StringValue("")}, secrets.KindValidation},
		{"value too large", secrets.CreateSecretInput{Name: "t", Value: secrets.StringValue(strings.Repeat("x", 65537))}, secrets.KindValidation},
		{"description too long", secrets.CreateSecretInput{Name: "t", Description: str(strings.Repeat("d", 2049))}, secrets.KindValidation},
		{"reserved tag", secrets.CreateSecretInput{Name: "t", Tags: []secrets.Tag{{Key: "aws:x", Value: "1"}}}, secrets.KindInvalidParameter},
		{"duplicate tag", secrets.CreateSecretInput{Name: "t", Tags: []secrets.Tag{{Key: "a"}, {Key: "a"}}}, secrets.KindInvalidParameter},
		{"unknown kms key", secrets.CreateSecretInput{Name: "t", KmsKeyID: "alias/other"}, secrets.KindInvalidParameter},
		{"replicas", secrets.CreateSecretInput{Name: "t", AddReplicaRegions: 1}, secrets.KindInvalidRequest},
	}
	for _, c := range invalid {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.svc.CreateSecret(ctx, c.in)
			wantKind(t, err, c.kind)
		})
	}
	if _, err := h.svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: "max", Value: secrets.StringValue(strings.Repeat("x", 65536))}); err != nil {
		t.Fatalf("a 65,536-byte value must be accepted: %v", err)
	}
}

func TestNewValueRejectsBoth(t *testing.T) {
	_, err := secrets.NewValue(str("s"), []byte("b"))
	wantKind(t, err, secrets.KindInvalidParameter)
	v, err := secrets.NewValue(nil, nil)
	if err != nil || !v.IsZero() {
		t.Fatalf("neither: %v %v", v, err)
	}
}

func TestResolveByNameAndARN(t *testing.T) {
	h := newHarness(t)
	out := h.create(t, "prod/db", "v")
	h.create(t, "prod/db-other", "w")
	partial := strings.TrimSuffix(out.ARN, out.ARN[len(out.ARN)-7:])
	for _, id := range []string{"prod/db", out.ARN, partial} {
		if got := h.get(t, id); got != "v" {
			t.Errorf("get %q = %q", id, got)
		}
	}
	for _, id := range []string{"prod", out.ARN[:len(out.ARN)-1] + "Z", strings.Replace(out.ARN, "us-east-1", "eu-west-1", 1),
		strings.Replace(out.ARN, "000000000000", "111111111111", 1), "arn:aws:lambda:us-east-1:000000000000:function:x"} {
		_, err := h.svc.GetSecretValue(t.Context(), secrets.GetSecretValueInput{SecretID: id})
		wantKind(t, err, secrets.KindNotFound)
	}
	_, err := h.svc.GetSecretValue(t.Context(), secrets.GetSecretValueInput{SecretID: strings.Repeat("x", 2049)})
	wantKind(t, err, secrets.KindValidation)
}

func TestPutSecretValueTokens(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.create(t, "s", "v0")
	p := h.put(t, "s", 1, "v1")
	if p.VersionID != token(1) || !slices.Equal(p.VersionStages, []string{"AWSCURRENT"}) {
		t.Fatalf("put = %+v", p)
	}
	again := h.put(t, "s", 1, "v1")
	if !slices.Equal(again.VersionStages, []string{"AWSCURRENT"}) {
		t.Fatalf("idempotent retry changed labels: %+v", again)
	}
	_, err := h.svc.PutSecretValue(ctx, secrets.PutSecretValueInput{SecretID: "s", ClientRequestToken: token(1), Value: secrets.StringValue("other")})
	wantKind(t, err, secrets.KindExists)
	_, err = h.svc.PutSecretValue(ctx, secrets.PutSecretValueInput{SecretID: "s", ClientRequestToken: token(1), Value: secrets.BinaryValue([]byte("v1"))})
	wantKind(t, err, secrets.KindExists)
	_, err = h.svc.PutSecretValue(ctx, secrets.PutSecretValueInput{SecretID: "s", ClientRequestToken: token(2)})
	wantKind(t, err, secrets.KindInvalidParameter)
	_, err = h.svc.PutSecretValue(ctx, secrets.PutSecretValueInput{SecretID: "s", Value: secrets.StringValue("x"), VersionStages: []string{}})
	wantKind(t, err, secrets.KindValidation)
	_, err = h.svc.PutSecretValue(ctx, secrets.PutSecretValueInput{SecretID: "s", Value: secrets.StringValue("x"), RotationToken: "short"})
	wantKind(t, err, secrets.KindValidation)
	// No token: one is generated, as the SDKs do.
	gen := must[secrets.PutSecretValueOutput](t)(h.svc.PutSecretValue(ctx, secrets.PutSecretValueInput{SecretID: "s", Value: secrets.StringValue("v3")}))
	if len(gen.VersionID) != 36 {
		t.Fatalf("generated version id %q", gen.VersionID)
	}
}

func TestStagingLabels(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.create(t, "s", "v0")
	h.put(t, "s", 1, "v1")
	want := map[string][]string{token(0): {"AWSPREVIOUS"}, token(1): {"AWSCURRENT"}}
	if got := h.stages(t, "s"); !mapsEqual(got, want) {
		t.Fatalf("after put: %v", got)
	}
	h.put(t, "s", 2, "v2")
	// v0 lost its last label: deprecated, not in VersionIdsToStages.
	want = map[string][]string{token(1): {"AWSPREVIOUS"}, token(2): {"AWSCURRENT"}}
	if got := h.stages(t, "s"); !mapsEqual(got, want) {
		t.Fatalf("after second put: %v", got)
	}
	// Staging a pending version leaves AWSCURRENT alone.
	h.put(t, "s", 3, "v3", "AWSPENDING")
	if got := h.get(t, "s"); got != "v2" {
		t.Fatalf("current = %q after staging AWSPENDING", got)
	}

	update := func(in secrets.UpdateSecretVersionStageInput) error {
		in.SecretID = "s"
		_, err := h.svc.UpdateSecretVersionStage(ctx, in)
		return err
	}
	wantKind(t, update(secrets.UpdateSecretVersionStageInput{VersionStage: "AWSCURRENT", MoveToVersionID: token(3)}), secrets.KindInvalidParameter)
	wantKind(t, update(secrets.UpdateSecretVersionStageInput{VersionStage: "AWSCURRENT", RemoveFromVersionID: token(2)}), secrets.KindInvalidParameter)
	wantKind(t, update(secrets.UpdateSecretVersionStageInput{VersionStage: "AWSCURRENT", MoveToVersionID: token(3), RemoveFromVersionID: token(1)}), secrets.KindInvalidParameter)
	wantKind(t, update(secrets.UpdateSecretVersionStageInput{VersionStage: "AWSCURRENT"}), secrets.KindInvalidParameter)
	wantKind(t, update(secrets.UpdateSecretVersionStageInput{VersionStage: "AWSCURRENT", MoveToVersionID: token(9), RemoveFromVersionID: token(2)}), secrets.KindNotFound)
	wantKind(t, update(secrets.UpdateSecretVersionStageInput{VersionStage: "", MoveToVersionID: token(3)}), secrets.KindValidation)

	// finishSecret: move AWSCURRENT to the pending version.
	if err := update(secrets.UpdateSecretVersionStageInput{VersionStage: "AWSCURRENT", MoveToVersionID: token(3), RemoveFromVersionID: token(2)}); err != nil {
		t.Fatal(err)
	}
	want = map[string][]string{token(2): {"AWSPREVIOUS"}, token(3): {"AWSCURRENT", "AWSPENDING"}}
	if got := h.stages(t, "s"); !mapsEqual(got, want) {
		t.Fatalf("after finish: %v", got)
	}
	// Moving to the holder is a no-op.
	if err := update(secrets.UpdateSecretVersionStageInput{VersionStage: "AWSCURRENT", MoveToVersionID: token(3)}); err != nil {
		t.Fatal(err)
	}
	// Custom labels attach, move and go.
	if err := update(secrets.UpdateSecretVersionStageInput{VersionStage: "blue", MoveToVersionID: token(2)}); err != nil {
		t.Fatal(err)
	}
	wantKind(t, update(secrets.UpdateSecretVersionStageInput{VersionStage: "blue", RemoveFromVersionID: token(3)}), secrets.KindInvalidParameter)
	if err := update(secrets.UpdateSecretVersionStageInput{VersionStage: "blue", RemoveFromVersionID: token(2)}); err != nil {
		t.Fatal(err)
	}
	if err := update(secrets.UpdateSecretVersionStageInput{VersionStage: "AWSPENDING", RemoveFromVersionID: token(3)}); err != nil {
		t.Fatal(err)
	}
	v := must[secrets.SecretValue](t)(h.svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: "s", VersionStage: "AWSPREVIOUS"}))
	if string(v.Value.Reveal()) != "v2" {
		t.Fatalf("AWSPREVIOUS = %q", v.Value.Reveal())
	}
}

func TestManualPutAbandonsPendingRotation(t *testing.T) {
	h := newHarness(t)
	h.create(t, "s", "v0")
	h.put(t, "s", 1, "pending", "AWSPENDING")
	h.put(t, "s", 2, "manual")
	got := h.stages(t, "s")
	want := map[string][]string{token(0): {"AWSPREVIOUS"}, token(2): {"AWSCURRENT"}}
	if !mapsEqual(got, want) {
		t.Fatalf("stages = %v, want %v (AWSPENDING removed)", got, want)
	}
}

func TestLabelLimitPerVersion(t *testing.T) {
	h := newHarness(t)
	h.create(t, "s", "v0")
	for i := 0; i < 19; i++ {
		if _, err := h.svc.UpdateSecretVersionStage(t.Context(), secrets.UpdateSecretVersionStageInput{SecretID: "s", VersionStage: fmt.Sprintf("l%d", i), MoveToVersionID: token(0)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := h.svc.UpdateSecretVersionStage(t.Context(), secrets.UpdateSecretVersionStageInput{SecretID: "s", VersionStage: "one-too-many", MoveToVersionID: token(0)})
	wantKind(t, err, secrets.KindLimitExceeded)
}

func TestGetSecretValueSelectors(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.create(t, "s", "v0")
	h.put(t, "s", 1, "v1")
	cases := []struct {
		name    string
		in      secrets.GetSecretValueInput
		want    string
		kind    secrets.Kind
		wantErr bool
	}{
		{"default", secrets.GetSecretValueInput{}, "v1", 0, false},
		{"by id", secrets.GetSecretValueInput{VersionID: token(0)}, "v0", 0, false},
		{"by stage", secrets.GetSecretValueInput{VersionStage: "AWSPREVIOUS"}, "v0", 0, false},
		{"both agree", secrets.GetSecretValueInput{VersionID: token(1), VersionStage: "AWSCURRENT"}, "v1", 0, false},
		{"both disagree", secrets.GetSecretValueInput{VersionID: token(0), VersionStage: "AWSCURRENT"}, "", secrets.KindInvalidRequest, true},
		{"unknown id", secrets.GetSecretValueInput{VersionID: token(7)}, "", secrets.KindNotFound, true},
		{"unknown stage", secrets.GetSecretValueInput{VersionStage: "nope"}, "", secrets.KindNotFound, true},
		{"short id", secrets.GetSecretValueInput{VersionID: "x"}, "", secrets.KindValidation, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.in.SecretID = "s"
			v, err := h.svc.GetSecretValue(ctx, c.in)
			if c.wantErr {
				wantKind(t, err, c.kind)
				return
			}
			if err != nil || string(v.Value.Reveal()) != c.want {
				t.Fatalf("got %q, %v; want %q", v.Value.Reveal(), err, c.want)
			}
		})
	}
}

func TestDeprecatedVersionsArePurged(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.create(t, "s", "v")
	// Versions 0..101: after 102 puts, 101 are unlabelled except AWSPREVIOUS: 100 deprecated.
	for i := 1; i <= 101; i++ {
		h.put(t, "s", i, fmt.Sprint("v", i))
	}
	_, err := h.svc.PutSecretValue(ctx, secrets.PutSecretValueInput{SecretID: "s", ClientRequestToken: token(102), Value: secrets.StringValue("v102")})
	wantKind(t, err, secrets.KindLimitExceeded)
	count := func() int {
		out := must[secrets.ListSecretVersionIdsOutput](t)(h.svc.ListSecretVersionIds(ctx, secrets.ListSecretVersionIdsInput{SecretID: "s", IncludeDeprecated: true}))
		n := len(out.Versions)
		for out.NextToken != "" {
			out = must[secrets.ListSecretVersionIdsOutput](t)(h.svc.ListSecretVersionIds(ctx, secrets.ListSecretVersionIdsInput{SecretID: "s", IncludeDeprecated: true, NextToken: out.NextToken}))
			n += len(out.Versions)
		}
		return n
	}
	if n := count(); n != 102 {
		t.Fatalf("versions = %d, want 102 (refused write kept nothing)", n)
	}
	h.clock.Add(25 * time.Hour)
	h.put(t, "s", 102, "v102")
	if n := count(); n != 102 {
		t.Fatalf("versions = %d after purge, want 102 (100 deprecated + 2 labelled)", n)
	}
	_, err = h.svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: "s", VersionID: token(0)})
	wantKind(t, err, secrets.KindNotFound)
	labelled := must[secrets.ListSecretVersionIdsOutput](t)(h.svc.ListSecretVersionIds(ctx, secrets.ListSecretVersionIdsInput{SecretID: "s"}))
	if len(labelled.Versions) != 2 || labelled.Versions[0].VersionID != token(102) {
		t.Fatalf("labelled versions = %+v", labelled.Versions)
	}
}

func TestListSecretVersionIdsPaging(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.create(t, "s", "v")
	for i := 1; i <= 5; i++ {
		h.put(t, "s", i, fmt.Sprint(i))
	}
	var ids []string
	in := secrets.ListSecretVersionIdsInput{SecretID: "s", IncludeDeprecated: true, MaxResults: i64(2)}
	for {
		out := must[secrets.ListSecretVersionIdsOutput](t)(h.svc.ListSecretVersionIds(ctx, in))
		for _, v := range out.Versions {
			ids = append(ids, v.VersionID)
		}
		if out.NextToken == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	if len(ids) != 6 || ids[0] != token(5) || ids[5] != token(0) {
		t.Fatalf("ids = %v", ids)
	}
	_, err := h.svc.ListSecretVersionIds(ctx, secrets.ListSecretVersionIdsInput{SecretID: "s", NextToken: "garbage"})
	wantKind(t, err, secrets.KindInvalidNextToken)
	_, err = h.svc.ListSecretVersionIds(ctx, secrets.ListSecretVersionIdsInput{SecretID: "s", MaxResults: i64(101)})
	wantKind(t, err, secrets.KindValidation)
}

func TestDeleteAndRestore(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	out := h.create(t, "s", "v")

	_, err := h.svc.DeleteSecret(ctx, secrets.DeleteSecretInput{SecretID: "s", RecoveryWindowInDays: i64(7), ForceDeleteWithoutRecovery: true})
	wantKind(t, err, secrets.KindInvalidParameter)
	for _, d := range []int64{6, 31, 0} {
		_, err = h.svc.DeleteSecret(ctx, secrets.DeleteSecretInput{SecretID: "s", RecoveryWindowInDays: i64(d)})
		wantKind(t, err, secrets.KindInvalidParameter)
	}

	del := must[secrets.DeleteSecretOutput](t)(h.svc.DeleteSecret(ctx, secrets.DeleteSecretInput{SecretID: "s"}))
	if want := h.clock.Now().Add(30 * 24 * time.Hour); !del.DeletionDate.Equal(want) || del.ARN != out.ARN {
		t.Fatalf("delete = %+v, want deletion at %v", del, want)
	}
	_, err = h.svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: "s"})
	wantKind(t, err, secrets.KindInvalidRequest)
	_, err = h.svc.PutSecretValue(ctx, secrets.PutSecretValueInput{SecretID: "s", Value: secrets.StringValue("x")})
	wantKind(t, err, secrets.KindInvalidRequest)
	wantKind(t, h.svc.TagResource(ctx, "s", []secrets.Tag{{Key: "k"}}), secrets.KindInvalidRequest)
	_, err = h.svc.GetResourcePolicy(ctx, "s")
	wantKind(t, err, secrets.KindInvalidRequest)
	_, err = h.svc.DeleteSecret(ctx, secrets.DeleteSecretInput{SecretID: "s"})
	wantKind(t, err, secrets.KindInvalidRequest)
	_, err = h.svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: "s"})
	wantKind(t, err, secrets.KindInvalidRequest)
	d := must[secrets.Description](t)(h.svc.DescribeSecret(ctx, "s"))
	if !d.DeletedDate.Equal(h.clock.Now()) {
		t.Fatalf("DeletedDate = %v", d.DeletedDate)
	}
	list := must[secrets.ListSecretsOutput](t)(h.svc.ListSecrets(ctx, secrets.ListSecretsInput{}))
	if len(list.SecretList) != 0 {
		t.Fatalf("a deleted secret is listed")
	}
	list = must[secrets.ListSecretsOutput](t)(h.svc.ListSecrets(ctx, secrets.ListSecretsInput{IncludePlannedDeletion: true}))
	if len(list.SecretList) != 1 {
		t.Fatalf("IncludePlannedDeletion lists %d", len(list.SecretList))
	}

	must[secrets.Ref](t)(h.svc.RestoreSecret(ctx, "s"))
	if h.get(t, "s") != "v" {
		t.Fatal("value lost by delete/restore")
	}
	must[secrets.Ref](t)(h.svc.RestoreSecret(ctx, "s")) // restoring a live secret is harmless

	// Purge after the window.
	must[secrets.DeleteSecretOutput](t)(h.svc.DeleteSecret(ctx, secrets.DeleteSecretInput{SecretID: "s", RecoveryWindowInDays: i64(7)}))
	h.clock.Add(6 * 24 * time.Hour)
	if n := must[int](t)(h.svc.PurgeExpired(ctx)); n != 0 {
		t.Fatalf("purged %d before the window ended", n)
	}
	h.clock.Add(25 * time.Hour)
	if n := must[int](t)(h.svc.PurgeExpired(ctx)); n != 1 {
		t.Fatalf("purged %d, want 1", n)
	}
	_, err = h.svc.DescribeSecret(ctx, "s")
	wantKind(t, err, secrets.KindNotFound)
	again := h.create(t, "s", "new")
	if again.ARN == out.ARN {
		t.Fatal("a re-created secret must get a new ARN")
	}

	// Force delete frees the name at once.
	must[secrets.DeleteSecretOutput](t)(h.svc.DeleteSecret(ctx, secrets.DeleteSecretInput{SecretID: "s", ForceDeleteWithoutRecovery: true}))
	h.create(t, "s", "newer")
}

func TestUpdateSecret(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.create(t, "s", "v0")
	h.clock.Add(time.Hour)
	out := must[secrets.UpdateSecretOutput](t)(h.svc.UpdateSecret(ctx, secrets.UpdateSecretInput{SecretID: "s", Description: str("hello")}))
	if out.VersionID != "" {
		t.Fatalf("metadata-only update created version %s", out.VersionID)
	}
	d := must[secrets.Description](t)(h.svc.DescribeSecret(ctx, "s"))
	if d.Description != "hello" || !d.LastChangedDate.Equal(h.clock.Now()) {
		t.Fatalf("describe = %+v", d)
	}
	out = must[secrets.UpdateSecretOutput](t)(h.svc.UpdateSecret(ctx, secrets.UpdateSecretInput{SecretID: "s", ClientRequestToken: token(1), Value: secrets.StringValue("v1")}))
	if out.VersionID != token(1) || h.get(t, "s") != "v1" {
		t.Fatalf("update = %+v", out)
	}
	if got := h.stages(t, "s"); !mapsEqual(got, map[string][]string{token(0): {"AWSPREVIOUS"}, token(1): {"AWSCURRENT"}}) {
		t.Fatalf("stages = %v", got)
	}
	_, err := h.svc.UpdateSecret(ctx, secrets.UpdateSecretInput{SecretID: "s", ClientRequestToken: token(1), Value: secrets.StringValue("different")})
	wantKind(t, err, secrets.KindExists)
	_, err = h.svc.UpdateSecret(ctx, secrets.UpdateSecretInput{SecretID: "s", KmsKeyID: str("arn:aws:kms:us-east-1:000000000000:key/x")})
	wantKind(t, err, secrets.KindInvalidParameter)
	_, err = h.svc.UpdateSecret(ctx, secrets.UpdateSecretInput{SecretID: "s", KmsKeyID: str("alias/aws/secretsmanager")})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTags(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.create(t, "s", "v")
	if err := h.svc.TagResource(ctx, "s", []secrets.Tag{{Key: "team", Value: "a"}, {Key: "env", Value: "prod"}}); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.TagResource(ctx, "s", []secrets.Tag{{Key: "team", Value: "b"}}); err != nil {
		t.Fatal(err)
	}
	d := must[secrets.Description](t)(h.svc.DescribeSecret(ctx, "s"))
	if want := []secrets.Tag{{Key: "team", Value: "b"}, {Key: "env", Value: "prod"}}; !slices.Equal(d.Tags, want) {
		t.Fatalf("tags = %v", d.Tags)
	}
	if err := h.svc.UntagResource(ctx, "s", []string{"team", "absent"}); err != nil {
		t.Fatal(err)
	}
	d = must[secrets.Description](t)(h.svc.DescribeSecret(ctx, "s"))
	if want := []secrets.Tag{{Key: "env", Value: "prod"}}; !slices.Equal(d.Tags, want) {
		t.Fatalf("tags = %v", d.Tags)
	}
	var many []secrets.Tag
	for i := 0; i < 50; i++ {
		many = append(many, secrets.Tag{Key: fmt.Sprint("k", i)})
	}
	wantKind(t, h.svc.TagResource(ctx, "s", many), secrets.KindInvalidParameter)
	wantKind(t, h.svc.TagResource(ctx, "s", []secrets.Tag{{Key: "aws:x"}}), secrets.KindInvalidParameter)
	wantKind(t, h.svc.TagResource(ctx, "nope", []secrets.Tag{{Key: "x"}}), secrets.KindNotFound)
}

func TestResourcePolicies(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.create(t, "s", "v")
	p := must[secrets.ResourcePolicy](t)(h.svc.GetResourcePolicy(ctx, "s"))
	if p.Policy != "" {
		t.Fatal("a new secret has a policy")
	}
	doc := `{"Version":"2012-10-17","Statement":[]}`
	must[secrets.Ref](t)(h.svc.PutResourcePolicy(ctx, "s", doc, true))
	if p := must[secrets.ResourcePolicy](t)(h.svc.GetResourcePolicy(ctx, "s")); p.Policy != doc {
		t.Fatalf("policy = %q", p.Policy)
	}
	_, err := h.svc.PutResourcePolicy(ctx, "s", "not json", false)
	wantKind(t, err, secrets.KindMalformedPolicy)
	_, err = h.svc.PutResourcePolicy(ctx, "s", `{"Principal":"*"}`, true)
	wantKind(t, err, secrets.KindPublicPolicy)
	must[secrets.Ref](t)(h.svc.PutResourcePolicy(ctx, "s", `{"Principal":"*"}`, false))
	_, err = h.svc.PutResourcePolicy(ctx, "s", strings.Repeat(" ", 20481), false)
	wantKind(t, err, secrets.KindValidation)
	must[secrets.Ref](t)(h.svc.DeleteResourcePolicy(ctx, "s"))
	if p := must[secrets.ResourcePolicy](t)(h.svc.GetResourcePolicy(ctx, "s")); p.Policy != "" {
		t.Fatal("policy not deleted")
	}

	v := must[secrets.PolicyValidation](t)(h.svc.ValidateResourcePolicy(ctx, "", doc))
	if !v.Passed || len(v.Errors) != 0 {
		t.Fatalf("valid policy: %+v", v)
	}
	v = must[secrets.PolicyValidation](t)(h.svc.ValidateResourcePolicy(ctx, "s", "nope"))
	if v.Passed || len(v.Errors) != 1 {
		t.Fatalf("invalid policy: %+v", v)
	}
	v = must[secrets.PolicyValidation](t)(h.svc.ValidateResourcePolicy(ctx, "", `{"Principal":"*"}`))
	if v.Passed {
		t.Fatalf("public policy passed")
	}
	_, err = h.svc.ValidateResourcePolicy(ctx, "missing", doc)
	wantKind(t, err, secrets.KindNotFound)
}

func TestLastAccessedDate(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.create(t, "s", "v")
	if d := must[secrets.Description](t)(h.svc.DescribeSecret(ctx, "s")); !d.LastAccessedDate.IsZero() {
		t.Fatalf("never read, LastAccessedDate = %v", d.LastAccessedDate)
	}
	h.get(t, "s")
	today := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if d := must[secrets.Description](t)(h.svc.DescribeSecret(ctx, "s")); !d.LastAccessedDate.Equal(today) {
		t.Fatalf("LastAccessedDate = %v, want %v", d.LastAccessedDate, today)
	}
	h.clock.Add(24 * time.Hour)
	h.get(t, "s")
	vers := must[secrets.ListSecretVersionIdsOutput](t)(h.svc.ListSecretVersionIds(ctx, secrets.ListSecretVersionIdsInput{SecretID: "s"}))
	if !vers.Versions[0].LastAccessedDate.Equal(today.Add(24 * time.Hour)) {
		t.Fatalf("version LastAccessedDate = %v", vers.Versions[0].LastAccessedDate)
	}
}

func TestGetRandomPassword(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	pw := must[string](t)(h.svc.GetRandomPassword(ctx, secrets.PasswordInput{}))
	if len(pw) != 32 {
		t.Fatalf("default length %d", len(pw))
	}
	pw = must[string](t)(h.svc.GetRandomPassword(ctx, secrets.PasswordInput{PasswordLength: i64(64), ExcludePunctuation: true, ExcludeCharacters: "abc"}))
	if len(pw) != 64 || strings.ContainsAny(pw, "abc!@#") {
		t.Fatalf("password %q breaks its options", pw)
	}
	for _, n := range []int64{0, 4097} {
		_, err := h.svc.GetRandomPassword(ctx, secrets.PasswordInput{PasswordLength: i64(n)})
		wantKind(t, err, secrets.KindValidation)
	}
	_, err := h.svc.GetRandomPassword(ctx, secrets.PasswordInput{ExcludeNumbers: true, ExcludePunctuation: true, ExcludeLowercase: true, ExcludeUppercase: true})
	wantKind(t, err, secrets.KindInvalidParameter)
}

func TestBatchGetSecretValue(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.create(t, "app/a", "A")
	h.create(t, "app/b", "B")
	h.create(t, "other", "O")
	out := must[secrets.BatchGetSecretValueOutput](t)(h.svc.BatchGetSecretValue(ctx, secrets.BatchGetSecretValueInput{SecretIDList: []string{"app/a", "missing", "other"}}))
	if len(out.SecretValues) != 2 || len(out.Errors) != 1 || out.Errors[0].SecretID != "missing" || secrets.KindOf(out.Errors[0].Err) != secrets.KindNotFound {
		t.Fatalf("batch = %+v", out)
	}
	out = must[secrets.BatchGetSecretValueOutput](t)(h.svc.BatchGetSecretValue(ctx, secrets.BatchGetSecretValueInput{Filters: []secrets.Filter{{Key: "name", Values: []string{"app/"}}}, MaxResults: i64(1)}))
	got := []string{string(out.SecretValues[0].Value.Reveal())}
	for out.NextToken != "" {
		out = must[secrets.BatchGetSecretValueOutput](t)(h.svc.BatchGetSecretValue(ctx, secrets.BatchGetSecretValueInput{Filters: []secrets.Filter{{Key: "name", Values: []string{"app/"}}}, MaxResults: i64(1), NextToken: out.NextToken}))
		for _, v := range out.SecretValues {
			got = append(got, string(v.Value.Reveal()))
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"A", "B"}) {
		t.Fatalf("filtered batch = %v", got)
	}
	_, err := h.svc.BatchGetSecretValue(ctx, secrets.BatchGetSecretValueInput{})
	wantKind(t, err, secrets.KindInvalidParameter)
	_, err = h.svc.BatchGetSecretValue(ctx, secrets.BatchGetSecretValueInput{SecretIDList: []string{"a"}, Filters: []secrets.Filter{{Key: "name", Values: []string{"a"}}}})
	wantKind(t, err, secrets.KindInvalidParameter)
	_, err = h.svc.BatchGetSecretValue(ctx, secrets.BatchGetSecretValueInput{SecretIDList: make([]string, 21)})
	wantKind(t, err, secrets.KindValidation)
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

var _ = context.Background

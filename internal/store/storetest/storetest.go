// Package storetest is the conformance suite for store.Store backends: the
// executable form of the contract in package store. A backend's whole test
// is one call:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { … a fresh, empty store … })
//	}
//
// Run opens a fresh store for every subtest and closes it when the subtest
// ends, so subtests can be selected with -run and never see each other's
// data. The suite pins down what the interface comments leave implicit, so
// that every backend behaves alike:
//
//   - Times come back in UTC and equal to what was stored at millisecond
//     precision; the zero time stays zero and sorts before every other time.
//   - Names, ARNs and labels compare byte-wise (binary collation), in lookups
//     and in ListSecrets order.
//   - UpdateSecret, DeleteSecret, UpdateVersion and DeleteVersion return
//     ErrNotFound when their row does not exist; CreateVersion and SetStage
//     return ErrNotFound when the secret or version they refer to does not.
//   - Version ids are unique per secret, not globally.
//   - A Sealed value of length zero is not a placeholder: it stays non-nil.
//   - A write that fails with ErrConflict or ErrNotFound leaves its
//     transaction usable: fn may handle the error and go on to commit.
//   - Write returns fn's error unchanged; a panic in fn rolls back and
//     propagates; once ctx has ended, Read and Write return an error wrapping
//     ctx.Err() and Write commits nothing; a Tx is unusable once its fn has
//     returned; Close waits for running transactions.
//   - Concurrent Writes stand alone even when a backend commits them
//     together: exactly those whose fn returned nil commit, each error or
//     panic reaches its own Write only, fns run serially and each sees the
//     commits before it, and a Write's changes are visible once it returns.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
)

// Run runs the conformance suite. open returns a fresh, empty store; Run
// closes it when the subtest that asked for it ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	h := harness{open: open}
	t.Run("Secrets", h.testSecrets)
	t.Run("Versions", h.testVersions)
	t.Run("Labels", h.testLabels)
	t.Run("ListSecrets", h.testListSecrets)
	t.Run("DeletedBefore", h.testDeletedBefore)
	t.Run("RotationsDue", h.testRotationsDue)
	t.Run("AccessKeys", h.testAccessKeys)
	t.Run("IAM", h.testIAM)
	t.Run("Outbox", h.testOutbox)
	t.Run("SecretStats", h.testSecretStats)
	t.Run("Meta", h.testMeta)
	t.Run("MasterKeys", h.testMasterKeys)
	t.Run("Transactions", h.testTransactions)
	t.Run("Concurrency", h.testConcurrency)
	t.Run("ConcurrentWrites", h.testConcurrentWrites)
	t.Run("Context", h.testContext)
	t.Run("Close", h.testClose)
}

type harness struct {
	open func(t *testing.T) store.Store
}

// fresh returns a new empty store, closed when t ends.
func (h harness) fresh(t *testing.T) store.Store {
	t.Helper()
	s, _ := h.freshClosable(t)
	return s
}

// freshClosable is fresh for tests that close the store themselves: the
// returned func closes it once, and t's cleanup does not close it again.
func (h harness) freshClosable(t *testing.T) (store.Store, func() error) {
	t.Helper()
	s := h.open(t)
	if s == nil {
		t.Fatal("open returned a nil store")
	}
	var (
		once sync.Once
		err  error
	)
	closeOnce := func() error {
		once.Do(func() { err = s.Close() })
		return err
	}
	t.Cleanup(func() {
		if err := closeOnce(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, closeOnce
}

// Fixtures. Every time is at millisecond precision; inputs use zones other
// than UTC to check that backends return UTC.
var (
	t0       = time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)
	adelaide = time.FixedZone("ACDT", 10*3600+1800)
	newYork  = time.FixedZone("EST", -5*3600)
)

const arnPrefix = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"

// arnOf is an ARN for name with AWS's six-character suffix, derived from the
// name so fixtures are stable.
func arnOf(name string) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	h := fnv.New32a()
	h.Write([]byte(name))
	n := h.Sum32()
	suffix := make([]byte, 6)
	for i := range suffix {
		suffix[i] = letters[n%uint32(len(letters))]
		n /= uint32(len(letters))
	}
	return arnPrefix + name + "-" + string(suffix)
}

// newSecret is a secret with only the fields every secret has.
func newSecret(name string) store.Secret {
	return store.Secret{ARN: arnOf(name), Name: name, CreatedAt: t0, LastChangedAt: t0}
}

// fullSecret is a secret with every field set.
func fullSecret(name string) store.Secret {
	return store.Secret{
		ARN:            arnOf(name),
		Name:           name,
		Description:    `database "primary" — owner: team-ü`,
		KMSKeyID:       "alias/rotor",
		Tags:           []store.Tag{{Key: "team", Value: "payments"}, {Key: "env", Value: "prod"}, {Key: "Cost-Center", Value: ""}},
		ResourcePolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`,
		CreatedAt:      t0.In(adelaide),
		LastChangedAt:  t0.Add(time.Hour + 7*time.Millisecond).In(newYork),
		LastAccessedAt: t0.Add(24 * time.Hour),
		DeletedAt:      t0.Add(48 * time.Hour).In(adelaide),
		DeletionDate:   t0.Add(48*time.Hour + 30*24*time.Hour),
		Rotation: store.Rotation{
			Configured:     true,
			Enabled:        true,
			LambdaARN:      "arn:aws:lambda:us-east-1:123456789012:function:rotor-postgres-alternating-users",
			RulesJSON:      `{"ScheduleExpression":"rate(30 days)","Duration":"2h"}`,
			LastRotatedAt:  t0.Add(2 * time.Hour).In(newYork),
			NextRotationAt: t0.Add(30*24*time.Hour + 2*time.Hour),
			StateJSON:      `{"step":"setSecret","version":"b1946ac9-2f1c-4b5e-9c1d-0e4b2a7f3c11","attempt":2}`,
			WakeAt:         t0.Add(3 * time.Minute),
		},
	}
}

// newVersion is a version of secretARN with a value.
func newVersion(secretARN, id string, created time.Time) store.Version {
	return store.Version{
		SecretARN: secretARN,
		VersionID: id,
		CreatedAt: created,
		Sealed:    []byte("sealed:" + id),
		KeyID:     "mk-1",
	}
}

// Transaction helpers: each runs one transaction and fails the test on an
// unexpected error.

func mustWrite(t *testing.T, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.Write(t.Context(), fn); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func mustRead(t *testing.T, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.Read(t.Context(), fn); err != nil {
		t.Fatalf("Read: %v", err)
	}
}

func createSecrets(t *testing.T, s store.Store, secs ...store.Secret) {
	t.Helper()
	mustWrite(t, s, func(tx store.Tx) error {
		for _, sec := range secs {
			if err := tx.CreateSecret(t.Context(), sec); err != nil {
				return fmt.Errorf("CreateSecret(%s): %w", sec.Name, err)
			}
		}
		return nil
	})
}

func createVersions(t *testing.T, s store.Store, vers ...store.Version) {
	t.Helper()
	mustWrite(t, s, func(tx store.Tx) error {
		for _, v := range vers {
			if err := tx.CreateVersion(t.Context(), v); err != nil {
				return fmt.Errorf("CreateVersion(%s): %w", v.VersionID, err)
			}
		}
		return nil
	})
}

func setStage(t *testing.T, s store.Store, arn, stage, versionID string) {
	t.Helper()
	mustWrite(t, s, func(tx store.Tx) error {
		return tx.SetStage(t.Context(), arn, stage, versionID)
	})
}

func getSecret(t *testing.T, s store.Store, arn string) (store.Secret, error) {
	t.Helper()
	var sec store.Secret
	err := s.Read(t.Context(), func(tx store.Tx) error {
		var err error
		sec, err = tx.Secret(t.Context(), arn)
		return err
	})
	return sec, err
}

func getSecretByName(t *testing.T, s store.Store, name string) (store.Secret, error) {
	t.Helper()
	var sec store.Secret
	err := s.Read(t.Context(), func(tx store.Tx) error {
		var err error
		sec, err = tx.SecretByName(t.Context(), name)
		return err
	})
	return sec, err
}

func mustSecret(t *testing.T, s store.Store, arn string) store.Secret {
	t.Helper()
	sec, err := getSecret(t, s, arn)
	if err != nil {
		t.Fatalf("Secret(%s): %v", arn, err)
	}
	return sec
}

func getVersion(t *testing.T, s store.Store, arn, id string) (store.Version, error) {
	t.Helper()
	var v store.Version
	err := s.Read(t.Context(), func(tx store.Tx) error {
		var err error
		v, err = tx.Version(t.Context(), arn, id)
		return err
	})
	return v, err
}

func mustVersion(t *testing.T, s store.Store, arn, id string) store.Version {
	t.Helper()
	v, err := getVersion(t, s, arn, id)
	if err != nil {
		t.Fatalf("Version(%s): %v", id, err)
	}
	return v
}

func getByStage(t *testing.T, s store.Store, arn, stage string) (store.Version, error) {
	t.Helper()
	var v store.Version
	err := s.Read(t.Context(), func(tx store.Tx) error {
		var err error
		v, err = tx.VersionByStage(t.Context(), arn, stage)
		return err
	})
	return v, err
}

func mustVersions(t *testing.T, s store.Store, arn string) []store.Version {
	t.Helper()
	var vers []store.Version
	mustRead(t, s, func(tx store.Tx) error {
		var err error
		vers, err = tx.Versions(t.Context(), arn)
		return err
	})
	return vers
}

func getMeta(t *testing.T, s store.Store, key string) (string, error) {
	t.Helper()
	var v string
	err := s.Read(t.Context(), func(tx store.Tx) error {
		var err error
		v, err = tx.Meta(t.Context(), key)
		return err
	})
	return v, err
}

// wantErr fails t unless err is target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

// Comparisons. Times must be equal instants, in UTC unless zero.

func diffTime(field string, got, want time.Time) string {
	switch {
	case want.IsZero():
		if !got.IsZero() {
			return fmt.Sprintf("%s: got %v, want the zero time", field, got)
		}
	case !got.Equal(want):
		return fmt.Sprintf("%s: got %v, want %v", field, got, want)
	case got.Location() != time.UTC:
		return fmt.Sprintf("%s: got %v in location %q, want UTC", field, got, got.Location())
	}
	return ""
}

func checkSecret(t *testing.T, got, want store.Secret) {
	t.Helper()
	var diffs []string
	str := func(field, got, want string) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s: got %q, want %q", field, got, want))
		}
	}
	tm := func(field string, got, want time.Time) {
		if d := diffTime(field, got, want); d != "" {
			diffs = append(diffs, d)
		}
	}
	str("ARN", got.ARN, want.ARN)
	str("Name", got.Name, want.Name)
	str("Description", got.Description, want.Description)
	str("KMSKeyID", got.KMSKeyID, want.KMSKeyID)
	if !slices.Equal(got.Tags, want.Tags) {
		diffs = append(diffs, fmt.Sprintf("Tags: got %v, want %v", got.Tags, want.Tags))
	}
	str("ResourcePolicy", got.ResourcePolicy, want.ResourcePolicy)
	tm("CreatedAt", got.CreatedAt, want.CreatedAt)
	tm("LastChangedAt", got.LastChangedAt, want.LastChangedAt)
	tm("LastAccessedAt", got.LastAccessedAt, want.LastAccessedAt)
	tm("DeletedAt", got.DeletedAt, want.DeletedAt)
	tm("DeletionDate", got.DeletionDate, want.DeletionDate)
	gr, wr := got.Rotation, want.Rotation
	if gr.Configured != wr.Configured || gr.Enabled != wr.Enabled {
		diffs = append(diffs, fmt.Sprintf("Rotation.Configured/Enabled: got %v/%v, want %v/%v",
			gr.Configured, gr.Enabled, wr.Configured, wr.Enabled))
	}
	str("Rotation.LambdaARN", gr.LambdaARN, wr.LambdaARN)
	str("Rotation.RulesJSON", gr.RulesJSON, wr.RulesJSON)
	tm("Rotation.LastRotatedAt", gr.LastRotatedAt, wr.LastRotatedAt)
	tm("Rotation.NextRotationAt", gr.NextRotationAt, wr.NextRotationAt)
	str("Rotation.StateJSON", gr.StateJSON, wr.StateJSON)
	for _, d := range diffs {
		t.Errorf("secret %s: %s", want.Name, d)
	}
}

// checkVersion compares everything but Stages, which the tests check
// separately. withSealed says whether got should carry its value (Version,
// VersionByStage) or not (Versions).
func checkVersion(t *testing.T, got, want store.Version, withSealed bool) {
	t.Helper()
	var diffs []string
	if got.SecretARN != want.SecretARN {
		diffs = append(diffs, fmt.Sprintf("SecretARN: got %q, want %q", got.SecretARN, want.SecretARN))
	}
	if got.VersionID != want.VersionID {
		diffs = append(diffs, fmt.Sprintf("VersionID: got %q, want %q", got.VersionID, want.VersionID))
	}
	for _, d := range []string{
		diffTime("CreatedAt", got.CreatedAt, want.CreatedAt),
		diffTime("LastAccessedAt", got.LastAccessedAt, want.LastAccessedAt),
	} {
		if d != "" {
			diffs = append(diffs, d)
		}
	}
	switch {
	case !withSealed:
		if got.Sealed != nil {
			diffs = append(diffs, fmt.Sprintf("Sealed: got %d bytes, want nil (metadata only)", len(got.Sealed)))
		}
	case (got.Sealed == nil) != (want.Sealed == nil):
		diffs = append(diffs, fmt.Sprintf("Sealed: got nil=%v, want nil=%v", got.Sealed == nil, want.Sealed == nil))
	case !bytes.Equal(got.Sealed, want.Sealed):
		diffs = append(diffs, fmt.Sprintf("Sealed: got %d bytes %.16x…, want %d bytes %.16x…",
			len(got.Sealed), got.Sealed, len(want.Sealed), want.Sealed))
	}
	if got.KeyID != want.KeyID {
		diffs = append(diffs, fmt.Sprintf("KeyID: got %q, want %q", got.KeyID, want.KeyID))
	}
	if got.Binary != want.Binary {
		diffs = append(diffs, fmt.Sprintf("Binary: got %v, want %v", got.Binary, want.Binary))
	}
	for _, d := range diffs {
		t.Errorf("version %s: %s", want.VersionID, d)
	}
}

func checkStages(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) || !slices.Equal(got, want) {
		t.Errorf("%s: stages %q, want %q", what, got, want)
	}
}

// versionIDs lists the ids of vers, in order.
func versionIDs(vers []store.Version) []string {
	ids := make([]string, len(vers))
	for i, v := range vers {
		ids[i] = v.VersionID
	}
	return ids
}

// within fails t if ch yields nothing within d: a guard against hangs, not
// a timing assertion.
func within[T any](t *testing.T, what string, d time.Duration, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: still blocked after %v", what, d)
		var zero T
		return zero
	}
}

// errBoom is an error of fn's own.
var errBoom = errors.New("storetest: boom")

// ctxErr fails t unless err reports that ctx ended.
func ctxErr(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got nil error after ctx was cancelled", what)
	} else if !errors.Is(err, context.Canceled) {
		t.Errorf("%s: got %v, want an error wrapping context.Canceled", what, err)
	}
}

package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
)

func (h harness) testSecrets(t *testing.T) {
	t.Run("CreateThenGetByARN", func(t *testing.T) {
		s := h.fresh(t)
		want := newSecret("prod/app/db")
		createSecrets(t, s, want)
		checkSecret(t, mustSecret(t, s, want.ARN), want)
	})

	t.Run("CreateThenGetByName", func(t *testing.T) {
		s := h.fresh(t)
		want := newSecret("prod/app/db")
		createSecrets(t, s, want, newSecret("prod/app/db2"))
		got, err := getSecretByName(t, s, want.Name)
		if err != nil {
			t.Fatalf("SecretByName: %v", err)
		}
		checkSecret(t, got, want)
	})

	t.Run("EveryFieldRoundTrips", func(t *testing.T) {
		s := h.fresh(t)
		want := fullSecret("prod/full")
		createSecrets(t, s, want)
		checkSecret(t, mustSecret(t, s, want.ARN), want)
		got, err := getSecretByName(t, s, want.Name)
		if err != nil {
			t.Fatalf("SecretByName: %v", err)
		}
		checkSecret(t, got, want)
	})

	t.Run("ZeroTimesAndEmptyFieldsStayEmpty", func(t *testing.T) {
		s := h.fresh(t)
		want := store.Secret{ARN: arnOf("bare"), Name: "bare"} // every time zero
		createSecrets(t, s, want)
		got := mustSecret(t, s, want.ARN)
		checkSecret(t, got, want)
		if len(got.Tags) != 0 {
			t.Errorf("Tags: got %v, want none", got.Tags)
		}
	})

	t.Run("TimesAreMillisecondsInUTC", func(t *testing.T) {
		s := h.fresh(t)
		cases := []struct {
			name string
			at   time.Time
		}{
			{"UTC", t0},
			{"EastOfUTC", t0.In(adelaide)},
			{"WestOfUTC", t0.Add(999 * time.Millisecond).In(newYork)},
			{"BeforeEpoch", time.Date(1969, 7, 20, 20, 17, 40, 1_000_000, time.UTC)},
			{"FarFuture", time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, adelaide)},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				want := newSecret("times/" + c.name)
				want.CreatedAt, want.LastAccessedAt, want.Rotation.NextRotationAt = c.at, c.at, c.at
				createSecrets(t, s, want)
				checkSecret(t, mustSecret(t, s, want.ARN), want)
			})
		}
	})

	t.Run("SubMillisecondDigitsKeepTheMillisecond", func(t *testing.T) {
		s := h.fresh(t)
		in := newSecret("submilli")
		in.CreatedAt = t0.Add(123_456 * time.Nanosecond) // .535123456
		createSecrets(t, s, in)
		got := mustSecret(t, s, in.ARN).CreatedAt
		if !got.Truncate(time.Millisecond).Equal(t0) || got.Before(t0) || got.After(in.CreatedAt) {
			t.Errorf("CreatedAt: got %v, want %v at millisecond precision", got, in.CreatedAt)
		}
	})

	t.Run("TagsKeepTheirOrder", func(t *testing.T) {
		s := h.fresh(t)
		want := newSecret("tagged")
		want.Tags = []store.Tag{
			{Key: "zeta", Value: "last letter first"},
			{Key: "alpha", Value: `quotes " and \ backslash`},
			{Key: "Mixed Case", Value: "ünïcødé ✓"},
			{Key: "empty", Value: ""},
			{Key: "aws:cloudformation:stack-name", Value: "a,b;c=d"},
		}
		createSecrets(t, s, want)
		checkSecret(t, mustSecret(t, s, want.ARN), want)
	})

	t.Run("ResourcePolicyEmptyOrSet", func(t *testing.T) {
		s := h.fresh(t)
		for _, policy := range []string{"", `{"Version":"2012-10-17","Statement":[]}`} {
			want := newSecret("policy/" + map[bool]string{true: "none", false: "set"}[policy == ""])
			want.ResourcePolicy = policy
			createSecrets(t, s, want)
			checkSecret(t, mustSecret(t, s, want.ARN), want)
		}
	})

	t.Run("RotationFields", func(t *testing.T) {
		s := h.fresh(t)
		cases := []struct {
			name string
			rot  store.Rotation
		}{
			{"NeverConfigured", store.Rotation{}},
			{"ConfiguredThenDisabled", store.Rotation{
				Configured: true, LambdaARN: "arn:aws:lambda:us-east-1:123456789012:function:rotor-redis",
				RulesJSON: `{"AutomaticallyAfterDays":7}`, LastRotatedAt: t0.In(newYork),
			}},
			{"EnabledMidRotation", fullSecret("x").Rotation},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				want := newSecret("rotation/" + c.name)
				want.Rotation = c.rot
				createSecrets(t, s, want)
				checkSecret(t, mustSecret(t, s, want.ARN), want)
			})
		}
	})

	t.Run("MissingSecretIsNotFound", func(t *testing.T) {
		s := h.fresh(t)
		createSecrets(t, s, newSecret("present"))
		_, err := getSecret(t, s, arnOf("absent"))
		wantErr(t, "Secret", err, store.ErrNotFound)
		_, err = getSecretByName(t, s, "absent")
		wantErr(t, "SecretByName", err, store.ErrNotFound)
	})

	t.Run("LookupsAreExact", func(t *testing.T) {
		s := h.fresh(t)
		lower, upper := newSecret("prod/db"), newSecret("PROD/db")
		createSecrets(t, s, lower, upper)
		for _, sec := range []store.Secret{lower, upper} {
			got, err := getSecretByName(t, s, sec.Name)
			if err != nil {
				t.Fatalf("SecretByName(%s): %v", sec.Name, err)
			}
			if got.ARN != sec.ARN {
				t.Errorf("SecretByName(%s) returned %s", sec.Name, got.Name)
			}
		}
		for _, name := range []string{"prod/DB", "prod/db ", "prod/d", "prod/%", "prod/_b"} {
			_, err := getSecretByName(t, s, name)
			wantErr(t, "SecretByName("+name+")", err, store.ErrNotFound)
		}
		_, err := getSecret(t, s, lower.ARN[:len(lower.ARN)-1])
		wantErr(t, "Secret(ARN prefix)", err, store.ErrNotFound)
	})

	t.Run("DuplicateNameConflicts", func(t *testing.T) {
		s := h.fresh(t)
		orig := fullSecret("dup")
		createSecrets(t, s, orig)
		dup := newSecret("dup")
		dup.ARN = arnPrefix + "dup-OTHERX"
		err := s.Write(t.Context(), func(tx store.Tx) error { return tx.CreateSecret(t.Context(), dup) })
		wantErr(t, "CreateSecret", err, store.ErrConflict)
		checkSecret(t, mustSecret(t, s, orig.ARN), orig)
		_, err = getSecret(t, s, dup.ARN)
		wantErr(t, "Secret(loser)", err, store.ErrNotFound)
	})

	t.Run("DuplicateARNConflicts", func(t *testing.T) {
		s := h.fresh(t)
		orig := fullSecret("dup")
		createSecrets(t, s, orig)
		dup := newSecret("another-name")
		dup.ARN = orig.ARN
		err := s.Write(t.Context(), func(tx store.Tx) error { return tx.CreateSecret(t.Context(), dup) })
		wantErr(t, "CreateSecret", err, store.ErrConflict)
		checkSecret(t, mustSecret(t, s, orig.ARN), orig)
		_, err = getSecretByName(t, s, dup.Name)
		wantErr(t, "SecretByName(loser)", err, store.ErrNotFound)
	})

	t.Run("UpdateReplacesEveryField", func(t *testing.T) {
		s := h.fresh(t)
		full := fullSecret("upd")
		createSecrets(t, s, full)

		// Everything set to new values.
		want := full
		want.Description = "changed"
		want.KMSKeyID = "alias/other"
		want.Tags = []store.Tag{{Key: "env", Value: "staging"}, {Key: "new", Value: "1"}}
		want.ResourcePolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny"}]}`
		want.CreatedAt = t0.Add(-time.Hour)
		want.LastChangedAt = t0.Add(5 * time.Hour).In(adelaide)
		want.LastAccessedAt = t0.Add(6 * time.Hour)
		want.DeletedAt = t0.Add(7 * time.Hour)
		want.DeletionDate = t0.Add(8 * time.Hour)
		want.Rotation = store.Rotation{
			Configured: true, Enabled: false, LambdaARN: "arn:aws:lambda:us-east-1:123456789012:function:other",
			RulesJSON: `{}`, LastRotatedAt: t0.Add(9 * time.Hour), NextRotationAt: t0.Add(10 * time.Hour), StateJSON: `{"step":"done"}`,
		}
		mustWrite(t, s, func(tx store.Tx) error { return tx.UpdateSecret(t.Context(), want) })
		checkSecret(t, mustSecret(t, s, full.ARN), want)

		// Everything optional cleared.
		bare := store.Secret{ARN: full.ARN, Name: full.Name}
		mustWrite(t, s, func(tx store.Tx) error { return tx.UpdateSecret(t.Context(), bare) })
		checkSecret(t, mustSecret(t, s, full.ARN), bare)
	})

	t.Run("UpdateRenames", func(t *testing.T) {
		s := h.fresh(t)
		orig := newSecret("old/name")
		createSecrets(t, s, orig)
		renamed := orig
		renamed.Name = "new/name"
		mustWrite(t, s, func(tx store.Tx) error { return tx.UpdateSecret(t.Context(), renamed) })
		got, err := getSecretByName(t, s, "new/name")
		if err != nil {
			t.Fatalf("SecretByName(new): %v", err)
		}
		checkSecret(t, got, renamed)
		_, err = getSecretByName(t, s, "old/name")
		wantErr(t, "SecretByName(old)", err, store.ErrNotFound)
		// The old name is free again, for another secret.
		reuse := newSecret("old/name")
		reuse.ARN = arnPrefix + "old/name-NEWONE"
		createSecrets(t, s, reuse)
	})

	t.Run("UpdateRenameToTakenNameConflicts", func(t *testing.T) {
		s := h.fresh(t)
		a, b := newSecret("a"), fullSecret("b")
		createSecrets(t, s, a, b)
		moved := a
		moved.Name = b.Name
		moved.Description = "should not land"
		err := s.Write(t.Context(), func(tx store.Tx) error { return tx.UpdateSecret(t.Context(), moved) })
		wantErr(t, "UpdateSecret", err, store.ErrConflict)
		checkSecret(t, mustSecret(t, s, a.ARN), a)
		checkSecret(t, mustSecret(t, s, b.ARN), b)
	})

	t.Run("UpdateUnknownIsNotFound", func(t *testing.T) {
		s := h.fresh(t)
		createSecrets(t, s, newSecret("present"))
		err := s.Write(t.Context(), func(tx store.Tx) error { return tx.UpdateSecret(t.Context(), newSecret("absent")) })
		wantErr(t, "UpdateSecret", err, store.ErrNotFound)
		_, err = getSecretByName(t, s, "absent")
		wantErr(t, "SecretByName(absent)", err, store.ErrNotFound)
	})

	t.Run("DeleteRemovesTheSecret", func(t *testing.T) {
		s := h.fresh(t)
		gone, kept := fullSecret("gone"), newSecret("kept")
		createSecrets(t, s, gone, kept)
		mustWrite(t, s, func(tx store.Tx) error { return tx.DeleteSecret(t.Context(), gone.ARN) })
		_, err := getSecret(t, s, gone.ARN)
		wantErr(t, "Secret(deleted)", err, store.ErrNotFound)
		_, err = getSecretByName(t, s, gone.Name)
		wantErr(t, "SecretByName(deleted)", err, store.ErrNotFound)
		checkSecret(t, mustSecret(t, s, kept.ARN), kept)
	})

	t.Run("DeleteUnknownIsNotFound", func(t *testing.T) {
		s := h.fresh(t)
		err := s.Write(t.Context(), func(tx store.Tx) error { return tx.DeleteSecret(t.Context(), arnOf("absent")) })
		wantErr(t, "DeleteSecret", err, store.ErrNotFound)
	})

	t.Run("DeleteCascadesToVersionsAndLabels", func(t *testing.T) {
		s := h.fresh(t)
		gone, kept := newSecret("gone"), newSecret("kept")
		createSecrets(t, s, gone, kept)
		createVersions(t, s,
			newVersion(gone.ARN, "v1", t0), newVersion(gone.ARN, "v2", t0.Add(time.Second)),
			newVersion(kept.ARN, "v1", t0))
		setStage(t, s, gone.ARN, "AWSCURRENT", "v2")
		setStage(t, s, gone.ARN, "AWSPREVIOUS", "v1")
		setStage(t, s, kept.ARN, "AWSCURRENT", "v1")

		mustWrite(t, s, func(tx store.Tx) error { return tx.DeleteSecret(t.Context(), gone.ARN) })

		if vers := mustVersions(t, s, gone.ARN); len(vers) != 0 {
			t.Errorf("Versions after delete: %v, want none", versionIDs(vers))
		}
		_, err := getVersion(t, s, gone.ARN, "v1")
		wantErr(t, "Version after delete", err, store.ErrNotFound)
		_, err = getByStage(t, s, gone.ARN, "AWSCURRENT")
		wantErr(t, "VersionByStage after delete", err, store.ErrNotFound)

		// A new secret with the same ARN and name starts empty: the rows
		// are gone, not hidden.
		createSecrets(t, s, gone)
		createVersions(t, s, newVersion(gone.ARN, "v3", t0))
		if ids := versionIDs(mustVersions(t, s, gone.ARN)); !slices.Equal(ids, []string{"v3"}) {
			t.Errorf("Versions of re-created secret: %q, want [v3]", ids)
		}
		_, err = getByStage(t, s, gone.ARN, "AWSCURRENT")
		wantErr(t, "VersionByStage of re-created secret", err, store.ErrNotFound)

		// The other secret is untouched.
		v, err := getByStage(t, s, kept.ARN, "AWSCURRENT")
		if err != nil {
			t.Fatalf("VersionByStage(kept): %v", err)
		}
		if v.VersionID != "v1" {
			t.Errorf("kept AWSCURRENT on %s, want v1", v.VersionID)
		}
	})
}

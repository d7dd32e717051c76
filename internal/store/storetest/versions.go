package storetest

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
)

func (h harness) testVersions(t *testing.T) {
	t.Run("CreateThenGet", func(t *testing.T) {
		s := h.fresh(t)
		sec := newSecret("s")
		createSecrets(t, s, sec)
		want := store.Version{
			SecretARN:      sec.ARN,
			VersionID:      "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1",
			CreatedAt:      t0.In(adelaide),
			LastAccessedAt: t0.Add(24 * time.Hour).In(newYork),
			Sealed:         []byte{0x01, 0x04, 'm', 'k', '-', '1', 0x00, 0xff, 0x80},
			KeyID:          "mk-1",
			Binary:         true,
		}
		createVersions(t, s, want)
		got := mustVersion(t, s, sec.ARN, want.VersionID)
		checkVersion(t, got, want, true)
		checkStages(t, "unlabelled version", got.Stages, nil)
	})

	t.Run("ZeroTimesStayZero", func(t *testing.T) {
		s := h.fresh(t)
		sec := newSecret("s")
		createSecrets(t, s, sec)
		want := store.Version{SecretARN: sec.ARN, VersionID: "v1", Sealed: []byte("x")}
		createVersions(t, s, want)
		checkVersion(t, mustVersion(t, s, sec.ARN, "v1"), want, true)
	})

	t.Run("MissingVersionIsNotFound", func(t *testing.T) {
		s := h.fresh(t)
		sec := newSecret("s")
		createSecrets(t, s, sec)
		createVersions(t, s, newVersion(sec.ARN, "v1", t0))
		_, err := getVersion(t, s, sec.ARN, "v2")
		wantErr(t, "Version(unknown id)", err, store.ErrNotFound)
		_, err = getVersion(t, s, arnOf("absent"), "v1")
		wantErr(t, "Version(unknown secret)", err, store.ErrNotFound)
	})

	t.Run("DuplicateVersionIDConflicts", func(t *testing.T) {
		s := h.fresh(t)
		sec := newSecret("s")
		createSecrets(t, s, sec)
		orig := newVersion(sec.ARN, "v1", t0)
		createVersions(t, s, orig)
		dup := newVersion(sec.ARN, "v1", t0.Add(time.Hour))
		dup.Sealed = []byte("other value")
		err := s.Write(t.Context(), func(tx store.Tx) error { return tx.CreateVersion(t.Context(), dup) })
		wantErr(t, "CreateVersion", err, store.ErrConflict)
		checkVersion(t, mustVersion(t, s, sec.ARN, "v1"), orig, true)
	})

	t.Run("VersionIDsAreUniquePerSecret", func(t *testing.T) {
		s := h.fresh(t)
		a, b := newSecret("a"), newSecret("b")
		createSecrets(t, s, a, b)
		va, vb := newVersion(a.ARN, "same-token", t0), newVersion(b.ARN, "same-token", t0.Add(time.Second))
		vb.Sealed = []byte("b's value")
		createVersions(t, s, va, vb)
		checkVersion(t, mustVersion(t, s, a.ARN, "same-token"), va, true)
		checkVersion(t, mustVersion(t, s, b.ARN, "same-token"), vb, true)
	})

	t.Run("VersionCount", func(t *testing.T) {
		s := h.fresh(t)
		a, b := newSecret("a"), newSecret("b")
		createSecrets(t, s, a, b)
		createVersions(t, s, newVersion(a.ARN, "v1", t0), newVersion(a.ARN, "v2", t0), newVersion(b.ARN, "v1", t0))
		var na, nb, nx int
		mustRead(t, s, func(tx store.Tx) (err error) {
			if na, err = tx.VersionCount(t.Context(), a.ARN); err != nil {
				return err
			}
			if nb, err = tx.VersionCount(t.Context(), b.ARN); err != nil {
				return err
			}
			nx, err = tx.VersionCount(t.Context(), arnOf("absent"))
			return err
		})
		if na != 2 || nb != 1 || nx != 0 {
			t.Errorf("VersionCount = %d, %d, %d; want 2, 1, 0", na, nb, nx)
		}
	})

	t.Run("CreateForMissingSecretIsNotFound", func(t *testing.T) {
		s := h.fresh(t)
		err := s.Write(t.Context(), func(tx store.Tx) error {
			return tx.CreateVersion(t.Context(), newVersion(arnOf("absent"), "v1", t0))
		})
		wantErr(t, "CreateVersion", err, store.ErrNotFound)
	})

	t.Run("PlaceholderHasNilSealed", func(t *testing.T) {
		s := h.fresh(t)
		sec := newSecret("s")
		createSecrets(t, s, sec)
		want := store.Version{SecretARN: sec.ARN, VersionID: "pending", CreatedAt: t0}
		createVersions(t, s, want)
		setStage(t, s, sec.ARN, "AWSPENDING", "pending")
		got := mustVersion(t, s, sec.ARN, "pending")
		checkVersion(t, got, want, true)
		checkStages(t, "placeholder", got.Stages, []string{"AWSPENDING"})
		got, err := getByStage(t, s, sec.ARN, "AWSPENDING")
		if err != nil {
			t.Fatalf("VersionByStage: %v", err)
		}
		checkVersion(t, got, want, true)
	})

	t.Run("EmptySealedIsNotAPlaceholder", func(t *testing.T) {
		s := h.fresh(t)
		sec := newSecret("s")
		createSecrets(t, s, sec)
		want := store.Version{SecretARN: sec.ARN, VersionID: "empty", CreatedAt: t0, Sealed: []byte{}}
		createVersions(t, s, want)
		checkVersion(t, mustVersion(t, s, sec.ARN, "empty"), want, true)
	})

	t.Run("LargeSealedRoundTrips", func(t *testing.T) {
		s := h.fresh(t)
		sec := newSecret("s")
		createSecrets(t, s, sec)
		want := newVersion(sec.ARN, "big", t0)
		want.Sealed = make([]byte, 70_000)
		rng := rand.NewChaCha8([32]byte{1})
		rng.Read(want.Sealed)
		createVersions(t, s, want)
		checkVersion(t, mustVersion(t, s, sec.ARN, "big"), want, true)
		setStage(t, s, sec.ARN, "AWSCURRENT", "big")
		got, err := getByStage(t, s, sec.ARN, "AWSCURRENT")
		if err != nil {
			t.Fatalf("VersionByStage: %v", err)
		}
		checkVersion(t, got, want, true)
	})

	t.Run("VersionsOldestFirstThenInsertionOrder", func(t *testing.T) {
		s := h.fresh(t)
		sec, other := newSecret("s"), newSecret("other")
		createSecrets(t, s, sec, other)
		// Inserted out of time order; "c" and "b" share a time and must
		// keep their insertion order, which is not their id order.
		vers := []store.Version{
			newVersion(sec.ARN, "newest", t0.Add(3*time.Hour)),
			newVersion(sec.ARN, "c", t0.Add(time.Hour)),
			newVersion(sec.ARN, "oldest", t0),
			newVersion(sec.ARN, "b", t0.Add(time.Hour)),
			newVersion(sec.ARN, "a", t0.Add(time.Hour)),
			newVersion(other.ARN, "not-mine", t0.Add(time.Hour)),
		}
		vers[2].Sealed = nil // a placeholder is listed like any version
		vers[4].Binary = true
		vers[4].LastAccessedAt = t0.Add(5 * time.Hour).In(adelaide)
		for _, v := range vers {
			createVersions(t, s, v) // one transaction each: insertion order is commit order too
		}
		setStage(t, s, sec.ARN, "AWSCURRENT", "newest")
		setStage(t, s, sec.ARN, "AWSPREVIOUS", "c")
		setStage(t, s, sec.ARN, "custom", "c")

		got := mustVersions(t, s, sec.ARN)
		wantOrder := []int{2, 1, 3, 4, 0}
		if ids := versionIDs(got); len(ids) != len(wantOrder) {
			t.Fatalf("Versions: %q, want %d versions", ids, len(wantOrder))
		}
		for i, j := range wantOrder {
			checkVersion(t, got[i], vers[j], false)
		}
		if ids, want := versionIDs(got), []string{"oldest", "c", "b", "a", "newest"}; !slices.Equal(ids, want) {
			t.Errorf("Versions order: %q, want %q", ids, want)
		}
		wantStages := map[string][]string{"newest": {"AWSCURRENT"}, "c": {"AWSPREVIOUS", "custom"}}
		for _, v := range got {
			checkStages(t, "Versions: "+v.VersionID, v.Stages, wantStages[v.VersionID])
		}
	})

	t.Run("VersionsOfSecretWithoutVersionsIsEmpty", func(t *testing.T) {
		s := h.fresh(t)
		sec := newSecret("s")
		createSecrets(t, s, sec)
		if vers := mustVersions(t, s, sec.ARN); len(vers) != 0 {
			t.Errorf("Versions: %q, want none", versionIDs(vers))
		}
	})

	t.Run("UpdateRewritesValueKeyBinaryAndAccessTime", func(t *testing.T) {
		s := h.fresh(t)
		sec := newSecret("s")
		createSecrets(t, s, sec)
		orig := store.Version{SecretARN: sec.ARN, VersionID: "v1", CreatedAt: t0} // placeholder
		createVersions(t, s, orig)
		setStage(t, s, sec.ARN, "AWSPENDING", "v1")

		upd := orig
		upd.Sealed = []byte("filled in")
		upd.KeyID = "mk-2"
		upd.Binary = true
		upd.LastAccessedAt = t0.Add(time.Hour).In(adelaide)
		upd.CreatedAt = t0.Add(99 * time.Hour) // not UpdateVersion's to change
		upd.Stages = []string{"ignored"}       // labels change through SetStage only
		mustWrite(t, s, func(tx store.Tx) error { return tx.UpdateVersion(t.Context(), upd) })

		want := upd
		want.CreatedAt = orig.CreatedAt
		got := mustVersion(t, s, sec.ARN, "v1")
		checkVersion(t, got, want, true)
		checkStages(t, "after UpdateVersion", got.Stages, []string{"AWSPENDING"})

		// And back: a value can be re-wrapped to different bytes, and the
		// binary flag and access time cleared.
		upd2 := want
		upd2.Sealed, upd2.Binary, upd2.LastAccessedAt = []byte("rewrapped"), false, time.Time{}
		mustWrite(t, s, func(tx store.Tx) error { return tx.UpdateVersion(t.Context(), upd2) })
		checkVersion(t, mustVersion(t, s, sec.ARN, "v1"), upd2, true)
	})

	t.Run("UpdateUnknownIsNotFound", func(t *testing.T) {
		s := h.fresh(t)
		sec := newSecret("s")
		createSecrets(t, s, sec)
		err := s.Write(t.Context(), func(tx store.Tx) error {
			return tx.UpdateVersion(t.Context(), newVersion(sec.ARN, "absent", t0))
		})
		wantErr(t, "UpdateVersion", err, store.ErrNotFound)
	})

	t.Run("DeleteRemovesVersionAndItsLabels", func(t *testing.T) {
		s := h.fresh(t)
		sec := newSecret("s")
		createSecrets(t, s, sec)
		createVersions(t, s, newVersion(sec.ARN, "v1", t0), newVersion(sec.ARN, "v2", t0.Add(time.Second)))
		setStage(t, s, sec.ARN, "AWSPREVIOUS", "v1")
		setStage(t, s, sec.ARN, "custom", "v1")
		setStage(t, s, sec.ARN, "AWSCURRENT", "v2")

		mustWrite(t, s, func(tx store.Tx) error { return tx.DeleteVersion(t.Context(), sec.ARN, "v1") })

		_, err := getVersion(t, s, sec.ARN, "v1")
		wantErr(t, "Version(deleted)", err, store.ErrNotFound)
		for _, stage := range []string{"AWSPREVIOUS", "custom"} {
			_, err := getByStage(t, s, sec.ARN, stage)
			wantErr(t, "VersionByStage("+stage+")", err, store.ErrNotFound)
		}
		v, err := getByStage(t, s, sec.ARN, "AWSCURRENT")
		if err != nil || v.VersionID != "v2" {
			t.Errorf("VersionByStage(AWSCURRENT) = %q, %v; want v2", v.VersionID, err)
		}
		if ids := versionIDs(mustVersions(t, s, sec.ARN)); !slices.Equal(ids, []string{"v2"}) {
			t.Errorf("Versions: %q, want [v2]", ids)
		}
		// The id can be used again.
		createVersions(t, s, newVersion(sec.ARN, "v1", t0.Add(time.Minute)))
		if got := mustVersion(t, s, sec.ARN, "v1"); len(got.Stages) != 0 {
			t.Errorf("re-created v1 has stages %q, want none", got.Stages)
		}
	})

	t.Run("DeleteUnknownIsNotFound", func(t *testing.T) {
		s := h.fresh(t)
		sec := newSecret("s")
		createSecrets(t, s, sec)
		err := s.Write(t.Context(), func(tx store.Tx) error { return tx.DeleteVersion(t.Context(), sec.ARN, "absent") })
		wantErr(t, "DeleteVersion", err, store.ErrNotFound)
	})
}

func (h harness) testLabels(t *testing.T) {
	// setup is a secret with versions v1 (oldest), v2 and v3.
	setup := func(t *testing.T) (store.Store, store.Secret) {
		s := h.fresh(t)
		sec := newSecret("labelled")
		createSecrets(t, s, sec)
		createVersions(t, s,
			newVersion(sec.ARN, "v1", t0), newVersion(sec.ARN, "v2", t0.Add(time.Second)),
			newVersion(sec.ARN, "v3", t0.Add(2*time.Second)))
		return s, sec
	}
	holder := func(t *testing.T, s store.Store, arn, stage string) string {
		t.Helper()
		v, err := getByStage(t, s, arn, stage)
		if err != nil {
			t.Fatalf("VersionByStage(%s): %v", stage, err)
		}
		return v.VersionID
	}

	t.Run("SetStageAttaches", func(t *testing.T) {
		s, sec := setup(t)
		setStage(t, s, sec.ARN, "AWSCURRENT", "v2")
		got, err := getByStage(t, s, sec.ARN, "AWSCURRENT")
		if err != nil {
			t.Fatalf("VersionByStage: %v", err)
		}
		checkVersion(t, got, newVersion(sec.ARN, "v2", t0.Add(time.Second)), true)
		checkStages(t, "VersionByStage", got.Stages, []string{"AWSCURRENT"})
		checkStages(t, "Version", mustVersion(t, s, sec.ARN, "v2").Stages, []string{"AWSCURRENT"})
	})

	t.Run("SetStageMoves", func(t *testing.T) {
		s, sec := setup(t)
		setStage(t, s, sec.ARN, "AWSCURRENT", "v1")
		setStage(t, s, sec.ARN, "AWSCURRENT", "v3")
		if got := holder(t, s, sec.ARN, "AWSCURRENT"); got != "v3" {
			t.Errorf("AWSCURRENT on %s, want v3", got)
		}
		checkStages(t, "v1 after the move", mustVersion(t, s, sec.ARN, "v1").Stages, nil)
		checkStages(t, "v3 after the move", mustVersion(t, s, sec.ARN, "v3").Stages, []string{"AWSCURRENT"})
	})

	t.Run("SetStageTwiceIsHarmless", func(t *testing.T) {
		s, sec := setup(t)
		setStage(t, s, sec.ARN, "AWSCURRENT", "v1")
		setStage(t, s, sec.ARN, "AWSCURRENT", "v1")
		checkStages(t, "v1", mustVersion(t, s, sec.ARN, "v1").Stages, []string{"AWSCURRENT"})
	})

	t.Run("RotationSequenceInOneTransaction", func(t *testing.T) {
		s, sec := setup(t)
		setStage(t, s, sec.ARN, "AWSCURRENT", "v1")
		setStage(t, s, sec.ARN, "AWSPENDING", "v2")
		// finishSecret: move AWSCURRENT, give the old one AWSPREVIOUS,
		// drop AWSPENDING.
		mustWrite(t, s, func(tx store.Tx) error {
			ctx := t.Context()
			if err := tx.SetStage(ctx, sec.ARN, "AWSCURRENT", "v2"); err != nil {
				return err
			}
			if err := tx.SetStage(ctx, sec.ARN, "AWSPREVIOUS", "v1"); err != nil {
				return err
			}
			return tx.RemoveStage(ctx, sec.ARN, "AWSPENDING")
		})
		vers := mustVersions(t, s, sec.ARN)
		got := map[string][]string{}
		for _, v := range vers {
			got[v.VersionID] = v.Stages
		}
		checkStages(t, "v1", got["v1"], []string{"AWSPREVIOUS"})
		checkStages(t, "v2", got["v2"], []string{"AWSCURRENT"})
		checkStages(t, "v3", got["v3"], nil)
	})

	t.Run("LabelsOfDifferentSecretsAreIndependent", func(t *testing.T) {
		s, a := setup(t)
		b := newSecret("other")
		createSecrets(t, s, b)
		createVersions(t, s, newVersion(b.ARN, "v1", t0), newVersion(b.ARN, "v2", t0.Add(time.Second)))
		setStage(t, s, a.ARN, "AWSCURRENT", "v1")
		setStage(t, s, b.ARN, "AWSCURRENT", "v1")
		setStage(t, s, b.ARN, "AWSCURRENT", "v2")
		if got := holder(t, s, a.ARN, "AWSCURRENT"); got != "v1" {
			t.Errorf("a's AWSCURRENT on %s after moving b's, want v1", got)
		}
		if got := holder(t, s, b.ARN, "AWSCURRENT"); got != "v2" {
			t.Errorf("b's AWSCURRENT on %s, want v2", got)
		}
		mustWrite(t, s, func(tx store.Tx) error { return tx.RemoveStage(t.Context(), b.ARN, "AWSCURRENT") })
		if got := holder(t, s, a.ARN, "AWSCURRENT"); got != "v1" {
			t.Errorf("a's AWSCURRENT on %s after removing b's, want v1", got)
		}
	})

	t.Run("StagesComeBackSorted", func(t *testing.T) {
		s, sec := setup(t)
		for _, stage := range []string{"zeta", "AWSPREVIOUS", "alpha", "AWSCURRENT", "Beta", "_x", "1"} {
			setStage(t, s, sec.ARN, stage, "v2")
		}
		want := []string{"1", "AWSCURRENT", "AWSPREVIOUS", "Beta", "_x", "alpha", "zeta"} // byte order
		checkStages(t, "Version", mustVersion(t, s, sec.ARN, "v2").Stages, want)
		v, err := getByStage(t, s, sec.ARN, "zeta")
		if err != nil {
			t.Fatalf("VersionByStage: %v", err)
		}
		checkStages(t, "VersionByStage", v.Stages, want)
		for _, v := range mustVersions(t, s, sec.ARN) {
			if v.VersionID == "v2" {
				checkStages(t, "Versions", v.Stages, want)
			}
		}
	})

	t.Run("StagesWithOddCharacters", func(t *testing.T) {
		s, sec := setup(t)
		odd := []string{"a,b", `quote"d`, "sp ace", "ünï", "semi;colon", "{brace}", "x'y", "%_"}
		for _, stage := range odd {
			setStage(t, s, sec.ARN, stage, "v1")
		}
		want := slices.Clone(odd)
		slices.Sort(want)
		checkStages(t, "Version", mustVersion(t, s, sec.ARN, "v1").Stages, want)
		for _, stage := range odd {
			if got := holder(t, s, sec.ARN, stage); got != "v1" {
				t.Errorf("VersionByStage(%q) = %s, want v1", stage, got)
			}
		}
		_, err := getByStage(t, s, sec.ARN, "a")
		wantErr(t, "VersionByStage(prefix of a label)", err, store.ErrNotFound)
	})

	t.Run("TwentyLabelsOnOneVersion", func(t *testing.T) {
		s, sec := setup(t)
		var want []string
		for i := range 20 {
			stage := string(rune('a'+i)) + "-label"
			want = append(want, stage)
			setStage(t, s, sec.ARN, stage, "v3")
		}
		checkStages(t, "Version", mustVersion(t, s, sec.ARN, "v3").Stages, want)
	})

	t.Run("VersionByStageMissingIsNotFound", func(t *testing.T) {
		s, sec := setup(t)
		setStage(t, s, sec.ARN, "AWSCURRENT", "v1")
		_, err := getByStage(t, s, sec.ARN, "AWSPENDING")
		wantErr(t, "VersionByStage(unknown label)", err, store.ErrNotFound)
		_, err = getByStage(t, s, sec.ARN, "awscurrent")
		wantErr(t, "VersionByStage(label in other case)", err, store.ErrNotFound)
		_, err = getByStage(t, s, arnOf("absent"), "AWSCURRENT")
		wantErr(t, "VersionByStage(unknown secret)", err, store.ErrNotFound)
	})

	t.Run("SetStageOnMissingVersionIsNotFound", func(t *testing.T) {
		s, sec := setup(t)
		setStage(t, s, sec.ARN, "AWSCURRENT", "v1")
		err := s.Write(t.Context(), func(tx store.Tx) error { return tx.SetStage(t.Context(), sec.ARN, "AWSCURRENT", "absent") })
		wantErr(t, "SetStage(unknown version)", err, store.ErrNotFound)
		if got := holder(t, s, sec.ARN, "AWSCURRENT"); got != "v1" {
			t.Errorf("AWSCURRENT on %s after the failed move, want v1", got)
		}
		err = s.Write(t.Context(), func(tx store.Tx) error { return tx.SetStage(t.Context(), arnOf("absent"), "AWSCURRENT", "v1") })
		wantErr(t, "SetStage(unknown secret)", err, store.ErrNotFound)
	})

	t.Run("RemoveStage", func(t *testing.T) {
		s, sec := setup(t)
		setStage(t, s, sec.ARN, "AWSCURRENT", "v1")
		setStage(t, s, sec.ARN, "AWSPENDING", "v1")
		mustWrite(t, s, func(tx store.Tx) error { return tx.RemoveStage(t.Context(), sec.ARN, "AWSPENDING") })
		_, err := getByStage(t, s, sec.ARN, "AWSPENDING")
		wantErr(t, "VersionByStage(removed)", err, store.ErrNotFound)
		checkStages(t, "v1", mustVersion(t, s, sec.ARN, "v1").Stages, []string{"AWSCURRENT"})
	})

	t.Run("RemoveAbsentStageIsNoError", func(t *testing.T) {
		s, sec := setup(t)
		setStage(t, s, sec.ARN, "AWSCURRENT", "v1")
		mustWrite(t, s, func(tx store.Tx) error {
			if err := tx.RemoveStage(t.Context(), sec.ARN, "never-set"); err != nil {
				return err
			}
			return tx.RemoveStage(t.Context(), arnOf("absent"), "AWSCURRENT")
		})
		if got := holder(t, s, sec.ARN, "AWSCURRENT"); got != "v1" {
			t.Errorf("AWSCURRENT on %s, want v1", got)
		}
	})
}

package storetest

import (
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
)

func (h harness) testOutbox(t *testing.T) {
	s := h.fresh(t)
	entries := []store.OutboxEntry{
		{Target: "hook-a", EventID: "e1", Body: `{"id":"e1"}`, CreatedAt: t0, NextAttemptAt: t0},
		{Target: "hook-b", EventID: "e1", Body: `{"id":"e1"}`, CreatedAt: t0, NextAttemptAt: t0.Add(time.Minute)},
		{Target: "hook-a", EventID: "e2", Body: `{"id":"e2"}`, CreatedAt: t0, NextAttemptAt: t0.Add(-time.Minute).In(adelaide)},
	}
	mustWrite(t, s, func(tx store.Tx) error { return tx.AddOutbox(t.Context(), entries) })
	if entries[0].Seq == 0 || entries[1].Seq <= entries[0].Seq || entries[2].Seq <= entries[1].Seq {
		t.Fatalf("AddOutbox seqs = %d, %d, %d; want increasing", entries[0].Seq, entries[1].Seq, entries[2].Seq)
	}
	due := func(at time.Time) []store.OutboxEntry {
		t.Helper()
		var out []store.OutboxEntry
		mustRead(t, s, func(tx store.Tx) (err error) { out, err = tx.OutboxDue(t.Context(), at, 10); return })
		return out
	}
	got := due(t0)
	if len(got) != 2 || got[0].EventID != "e2" || got[1].EventID != "e1" || got[1].Target != "hook-a" ||
		got[1].Body != `{"id":"e1"}` || diffTime("CreatedAt", got[1].CreatedAt, t0) != "" {
		t.Fatalf("OutboxDue(t0) = %+v", got)
	}

	// A failed attempt moves the entry later; parking takes it out of the queue.
	e := got[0]
	e.Attempts, e.NextAttemptAt, e.LastError = 1, t0.Add(time.Hour), "connection refused"
	mustWrite(t, s, func(tx store.Tx) error { return tx.UpdateOutbox(t.Context(), e) })
	b := entries[1]
	b.Attempts, b.Parked, b.LastError = 5, true, "HTTP 500"
	mustWrite(t, s, func(tx store.Tx) error { return tx.UpdateOutbox(t.Context(), b) })
	if got := due(t0.Add(2 * time.Minute)); len(got) != 1 || got[0].EventID != "e1" || got[0].Target != "hook-a" {
		t.Errorf("OutboxDue after update = %+v", got)
	}
	if got := due(t0.Add(2 * time.Hour)); len(got) != 2 || got[1].Attempts != 1 || got[1].LastError != "connection refused" {
		t.Errorf("OutboxDue(t0+2h) = %+v", got)
	}
	var parked, pending []store.OutboxEntry
	var np, nk int
	mustRead(t, s, func(tx store.Tx) (err error) {
		if parked, err = tx.ListOutbox(t.Context(), true, 0, 10); err != nil {
			return err
		}
		if pending, err = tx.ListOutbox(t.Context(), false, entries[0].Seq, 10); err != nil {
			return err
		}
		np, nk, err = tx.OutboxCounts(t.Context())
		return err
	})
	if len(parked) != 1 || !parked[0].Parked || parked[0].LastError != "HTTP 500" || parked[0].Attempts != 5 {
		t.Errorf("ListOutbox(parked) = %+v", parked)
	}
	if len(pending) != 1 || pending[0].EventID != "e2" {
		t.Errorf("ListOutbox(pending, after first) = %+v", pending)
	}
	if np != 2 || nk != 1 {
		t.Errorf("OutboxCounts = %d, %d; want 2, 1", np, nk)
	}

	mustWrite(t, s, func(tx store.Tx) error { return tx.DeleteOutbox(t.Context(), entries[0].Seq) })
	err := s.Write(t.Context(), func(tx store.Tx) error { return tx.DeleteOutbox(t.Context(), entries[0].Seq) })
	wantErr(t, "DeleteOutbox(missing)", err, store.ErrNotFound)
	err = s.Write(t.Context(), func(tx store.Tx) error { return tx.UpdateOutbox(t.Context(), entries[0]) })
	wantErr(t, "UpdateOutbox(missing)", err, store.ErrNotFound)
}

func (h harness) testSecretStats(t *testing.T) {
	s := h.fresh(t)
	live, deleted, rotating, overdue, future := newSecret("live"), newSecret("deleted"), newSecret("rotating"), newSecret("overdue"), newSecret("future")
	deleted.DeletedAt, deleted.DeletionDate = t0, t0.Add(time.Hour)
	for _, sec := range []*store.Secret{&rotating, &overdue, &future} {
		sec.Rotation.Configured, sec.Rotation.Enabled = true, true
	}
	overdue.Rotation.NextRotationAt = t0.Add(-time.Minute)
	future.Rotation.NextRotationAt = t0.Add(time.Minute)
	createSecrets(t, s, live, deleted, rotating, overdue, future)
	var got store.SecretStats
	mustRead(t, s, func(tx store.Tx) (err error) { got, err = tx.SecretStats(t.Context(), t0); return })
	want := store.SecretStats{Live: 4, PendingDeletion: 1, RotationEnabled: 3, RotationOverdue: 1}
	if got != want {
		t.Errorf("SecretStats = %+v, want %+v", got, want)
	}
}

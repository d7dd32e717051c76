package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
)

var sortOrders = []store.SortBy{store.SortByCreated, store.SortByName, store.SortByLastChanged, store.SortByLastAccessed}

// listFixture is a set of secrets built to trip ListSecrets: names whose
// byte order differs from their case-folded order, ARNs whose order differs
// from their names' order (a name that is a prefix of another), ties in
// every date order, never-accessed secrets, and secrets scheduled for
// deletion. It is inserted in none of the orders.
func listFixture() []store.Secret {
	names := []string{
		"prod/db", "Prod/db", "prod/db-replica", "prod/db/x", "app", "app-db", "app-cache",
		"zulu", "Zulu", "_under", "0zero", "über", "alpha", "alpha.beta", "beta", "beta_2",
		"beta-2", "gamma~", "delta", "omega",
	}
	secs := make([]store.Secret, len(names))
	for i, name := range names {
		sec := newSecret(name)
		// Four creation times, three change times, so many ties.
		sec.CreatedAt = t0.Add(time.Duration((i*7)%4) * time.Hour)
		sec.LastChangedAt = t0.Add(time.Duration((i*5)%3) * time.Minute).In(adelaide)
		// Every third secret was never read; the others in two groups.
		if i%3 != 0 {
			sec.LastAccessedAt = t0.Add(time.Duration(i%2) * 24 * time.Hour)
		}
		if i%4 == 1 {
			sec.DeletedAt = t0.Add(time.Duration(i) * time.Second)
			sec.DeletionDate = sec.DeletedAt.Add(7 * 24 * time.Hour)
		}
		secs[i] = sec
	}
	return secs
}

// sortKey is the value of s that ListSecrets orders by.
func sortKey(by store.SortBy, s store.Secret) (string, time.Time) {
	switch by {
	case store.SortByName:
		return s.Name, time.Time{}
	case store.SortByCreated:
		return "", s.CreatedAt
	case store.SortByLastChanged:
		return "", s.LastChangedAt
	case store.SortByLastAccessed:
		return "", s.LastAccessedAt
	}
	panic("storetest: unknown sort order " + by)
}

// cursorAt is the Cursor a caller builds from the last row of a page.
func cursorAt(by store.SortBy, s store.Secret) *store.Cursor {
	name, at := sortKey(by, s)
	return &store.Cursor{Name: name, Time: at, ARN: s.ARN}
}

// expectedOrder is what ListSecrets must return: secs (without those
// scheduled for deletion unless includeDeleted) by key, ties by ARN, byte-wise,
// all reversed when descending.
func expectedOrder(secs []store.Secret, by store.SortBy, desc, includeDeleted bool) []string {
	var sel []store.Secret
	for _, s := range secs {
		if includeDeleted || s.DeletedAt.IsZero() {
			sel = append(sel, s)
		}
	}
	slices.SortFunc(sel, func(a, b store.Secret) int {
		an, at := sortKey(by, a)
		bn, bt := sortKey(by, b)
		c := strings.Compare(an, bn)
		if c == 0 {
			c = at.Compare(bt)
		}
		if c == 0 {
			c = strings.Compare(a.ARN, b.ARN)
		}
		if desc {
			c = -c
		}
		return c
	})
	arns := make([]string, len(sel))
	for i, s := range sel {
		arns[i] = s.ARN
	}
	return arns
}

// listAll pages through q's order with pages of q.Limit and returns every
// row. It fails t if a page is longer than q.Limit or the walk does not end.
func listAll(t *testing.T, s store.Store, q store.ListQuery, max int) []store.Secret {
	t.Helper()
	var all []store.Secret
	for range max + 2 {
		var page []store.Secret
		mustRead(t, s, func(tx store.Tx) error {
			var err error
			page, err = tx.ListSecrets(t.Context(), q)
			return err
		})
		if len(page) > q.Limit {
			t.Fatalf("ListSecrets returned %d rows, limit %d", len(page), q.Limit)
		}
		all = append(all, page...)
		if len(page) < q.Limit {
			return all
		}
		q.After = cursorAt(q.SortBy, page[len(page)-1])
	}
	t.Fatalf("ListSecrets: still returning rows after %d pages of %d", max+2, q.Limit)
	return nil
}

func arnsOf(secs []store.Secret) []string {
	arns := make([]string, len(secs))
	for i, s := range secs {
		arns[i] = s.ARN
	}
	return arns
}

func dirName(desc bool) string {
	if desc {
		return "Descending"
	}
	return "Ascending"
}

func (h harness) testListSecrets(t *testing.T) {
	t.Run("EveryOrderAndPageSize", func(t *testing.T) {
		s := h.fresh(t)
		secs := listFixture()
		createSecrets(t, s, secs...)
		for _, by := range sortOrders {
			for _, desc := range []bool{false, true} {
				for _, includeDeleted := range []bool{false, true} {
					name := fmt.Sprintf("%s/%s/IncludeDeleted=%v", by, dirName(desc), includeDeleted)
					t.Run(name, func(t *testing.T) {
						want := expectedOrder(secs, by, desc, includeDeleted)
						for _, limit := range []int{1, 2, 3, 7, len(want), len(want) + 1, 100} {
							q := store.ListQuery{SortBy: by, Descending: desc, IncludeDeleted: includeDeleted, Limit: limit}
							got := arnsOf(listAll(t, s, q, len(secs)))
							if !slices.Equal(got, want) {
								t.Errorf("pages of %d:\n got  %s\n want %s", limit, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
							}
						}
					})
				}
			}
		}
	})

	t.Run("RowsAreWholeSecrets", func(t *testing.T) {
		s := h.fresh(t)
		want := fullSecret("full")
		want.DeletedAt = time.Time{}
		createSecrets(t, s, want)
		var got []store.Secret
		mustRead(t, s, func(tx store.Tx) error {
			var err error
			got, err = tx.ListSecrets(t.Context(), store.ListQuery{SortBy: store.SortByName, Limit: 10})
			return err
		})
		if len(got) != 1 {
			t.Fatalf("ListSecrets returned %d rows, want 1", len(got))
		}
		checkSecret(t, got[0], want)
	})

	t.Run("TiesBrokenByARN", func(t *testing.T) {
		s := h.fresh(t)
		// Same creation time. Insertion order, name order and ARN order all
		// differ: ARN order is app-cache-…, app-db-…, app-….
		secs := []store.Secret{newSecret("app-db"), newSecret("app"), newSecret("app-cache")}
		secs[0].ARN = arnPrefix + "app-db-AAAAAA"
		secs[1].ARN = arnPrefix + "app-zzzzzz"
		secs[2].ARN = arnPrefix + "app-cache-mmmmmm"
		createSecrets(t, s, secs...)
		for _, desc := range []bool{false, true} {
			want := []string{secs[2].ARN, secs[0].ARN, secs[1].ARN}
			if desc {
				slices.Reverse(want)
			}
			for _, limit := range []int{1, 10} {
				q := store.ListQuery{SortBy: store.SortByCreated, Descending: desc, Limit: limit}
				if got := arnsOf(listAll(t, s, q, 3)); !slices.Equal(got, want) {
					t.Errorf("%s, pages of %d: got %q, want %q", dirName(desc), limit, got, want)
				}
			}
		}
	})

	t.Run("NamesSortByteWise", func(t *testing.T) {
		s := h.fresh(t)
		names := []string{"b", "B", "a", "_", "A", "a/b", "a-b", "ä", "0"}
		for _, n := range names {
			createSecrets(t, s, newSecret(n))
		}
		var got []string
		for _, sec := range listAll(t, s, store.ListQuery{SortBy: store.SortByName, Limit: 100}, len(names)) {
			got = append(got, sec.Name)
		}
		want := []string{"0", "A", "B", "_", "a", "a-b", "a/b", "b", "ä"}
		if !slices.Equal(got, want) {
			t.Errorf("name order %q, want %q", got, want)
		}
	})

	t.Run("NeverAccessedSortsFirstAscending", func(t *testing.T) {
		s := h.fresh(t)
		read, never := newSecret("read"), newSecret("never")
		read.LastAccessedAt = time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC) // early, still after zero
		createSecrets(t, s, read, never)
		for _, desc := range []bool{false, true} {
			want := []string{never.ARN, read.ARN}
			if desc {
				slices.Reverse(want)
			}
			q := store.ListQuery{SortBy: store.SortByLastAccessed, Descending: desc, Limit: 1}
			if got := arnsOf(listAll(t, s, q, 2)); !slices.Equal(got, want) {
				t.Errorf("%s: got %q, want %q", dirName(desc), got, want)
			}
		}
	})

	t.Run("IncludeDeleted", func(t *testing.T) {
		s := h.fresh(t)
		live, deleted := newSecret("live"), newSecret("deleted")
		deleted.DeletedAt = t0.Add(time.Hour)
		deleted.DeletionDate = t0.Add(8 * 24 * time.Hour)
		createSecrets(t, s, live, deleted)
		for _, by := range sortOrders {
			q := store.ListQuery{SortBy: by, Limit: 10}
			if got := arnsOf(listAll(t, s, q, 2)); !slices.Equal(got, []string{live.ARN}) {
				t.Errorf("%s without deleted: %q, want only %s", by, got, live.Name)
			}
			q.IncludeDeleted = true
			if got := arnsOf(listAll(t, s, q, 2)); len(got) != 2 {
				t.Errorf("%s with deleted: %q, want both", by, got)
			}
		}
		// Restoring (clearing DeletedAt) brings it back.
		deleted.DeletedAt, deleted.DeletionDate = time.Time{}, time.Time{}
		mustWrite(t, s, func(tx store.Tx) error { return tx.UpdateSecret(t.Context(), deleted) })
		if got := listAll(t, s, store.ListQuery{SortBy: store.SortByName, Limit: 10}, 2); len(got) != 2 {
			t.Errorf("after restore: %q, want both", arnsOf(got))
		}
	})

	t.Run("CursorNeedNotBeARow", func(t *testing.T) {
		s := h.fresh(t)
		secs := []store.Secret{newSecret("a"), newSecret("b"), newSecret("c"), newSecret("d")}
		createSecrets(t, s, secs...)
		// The row the cursor came from was deleted between pages.
		mustWrite(t, s, func(tx store.Tx) error { return tx.DeleteSecret(t.Context(), secs[1].ARN) })
		var got []store.Secret
		mustRead(t, s, func(tx store.Tx) error {
			var err error
			got, err = tx.ListSecrets(t.Context(), store.ListQuery{
				SortBy: store.SortByName, Limit: 10, After: cursorAt(store.SortByName, secs[1]),
			})
			return err
		})
		if want := []string{secs[2].ARN, secs[3].ARN}; !slices.Equal(arnsOf(got), want) {
			t.Errorf("after a deleted row's cursor: %q, want %q", arnsOf(got), want)
		}
	})

	t.Run("EmptyStoreListsNothing", func(t *testing.T) {
		s := h.fresh(t)
		for _, by := range sortOrders {
			if got := listAll(t, s, store.ListQuery{SortBy: by, Limit: 10, IncludeDeleted: true}, 0); len(got) != 0 {
				t.Errorf("%s: %q, want nothing", by, arnsOf(got))
			}
		}
	})

	t.Run("UnknownOrderFails", func(t *testing.T) {
		s := h.fresh(t)
		createSecrets(t, s, newSecret("a"))
		err := s.Read(t.Context(), func(tx store.Tx) error {
			_, err := tx.ListSecrets(t.Context(), store.ListQuery{SortBy: "size", Limit: 10})
			return err
		})
		if err == nil {
			t.Error("ListSecrets with SortBy \"size\": got nil error")
		}
	})
}

func (h harness) testDeletedBefore(t *testing.T) {
	h.testQueue(t, "DeletedBefore", func(sec *store.Secret, due time.Time) {
		sec.DeletedAt = due.Add(-7 * 24 * time.Hour)
		sec.DeletionDate = due
	}, store.Tx.DeletedBefore)

	t.Run("IgnoresDeletedAt", func(t *testing.T) {
		// Only DeletionDate decides; DeletedAt alone does not.
		at := t0.Add(30 * 24 * time.Hour)
		s := h.fresh(t)
		odd := newSecret("deleted-without-date")
		odd.DeletedAt = at.Add(-24 * time.Hour)
		createSecrets(t, s, odd)
		var got []string
		mustRead(t, s, func(tx store.Tx) error {
			var err error
			got, err = tx.DeletedBefore(t.Context(), at, 10)
			return err
		})
		if len(got) != 0 {
			t.Errorf("DeletedBefore: %q, want none", got)
		}
	})
}

func (h harness) testRotationsDue(t *testing.T) {
	h.testQueue(t, "RotationsDue", func(sec *store.Secret, due time.Time) {
		sec.Rotation.WakeAt = due
	}, store.Tx.RotationsDue)
}

// testQueue checks one of the time-ordered queues (DeletedBefore,
// RotationsDue): setDue makes a secret due at a time, query reads the queue.
func (h harness) testQueue(t *testing.T, name string, setDue func(*store.Secret, time.Time),
	query func(store.Tx, context.Context, time.Time, int) ([]string, error)) {
	at := t0.Add(30 * 24 * time.Hour)
	setup := func(t *testing.T) (store.Store, map[string]store.Secret) {
		s := h.fresh(t)
		secs := map[string]store.Secret{}
		for name, due := range map[string]time.Time{
			"never":       {},
			"long-ago":    at.Add(-30 * 24 * time.Hour).In(newYork),
			"just-before": at.Add(-time.Millisecond),
			"exactly":     at.In(adelaide),
			"just-after":  at.Add(time.Millisecond),
			"later":       at.Add(24 * time.Hour),
		} {
			sec := newSecret(name)
			if !due.IsZero() {
				setDue(&sec, due)
			}
			secs[name] = sec
			createSecrets(t, s, sec)
		}
		return s, secs
	}
	due := func(t *testing.T, s store.Store, at time.Time, limit int) []string {
		t.Helper()
		var arns []string
		mustRead(t, s, func(tx store.Tx) error {
			var err error
			arns, err = query(tx, t.Context(), at, limit)
			return err
		})
		return arns
	}

	t.Run("DueSecrets", func(t *testing.T) {
		s, secs := setup(t)
		got := due(t, s, at, 100)
		want := []string{secs["long-ago"].ARN, secs["just-before"].ARN, secs["exactly"].ARN}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q (earliest first)", name, got, want)
		}
	})

	t.Run("Limit", func(t *testing.T) {
		s, secs := setup(t)
		got := due(t, s, at, 2)
		if want := []string{secs["long-ago"].ARN, secs["just-before"].ARN}; !slices.Equal(got, want) {
			t.Errorf("%s(limit 2): %q, want %q", name, got, want)
		}
	})

	t.Run("NothingDue", func(t *testing.T) {
		s, _ := setup(t)
		if got := due(t, s, at.Add(-60*24*time.Hour), 10); len(got) != 0 {
			t.Errorf("%s: %q, want none", name, got)
		}
	})
}

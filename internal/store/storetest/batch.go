package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
)

// testConcurrentWrites pins down what batching concurrent Writes into one
// commit (group commit) must leave intact: each Write stands alone. Exactly
// the fns that returned nil commit; a failing or panicking fn's changes are
// invisible, even to the fns after it, and its error or panic reaches its
// own caller only; the fns run serially, each seeing the commits before it;
// and a Write's changes are visible once it returns nil.
func (h harness) testConcurrentWrites(t *testing.T) {
	t.Run("EachWriteStandsAlone", func(t *testing.T) {
		s := h.fresh(t)
		const n = 64
		ctx := t.Context()
		createSecrets(t, s, newSecret("taken"))

		// What fn i does after its changes: the kinds cycle through i%5.
		const (
			succeed         = iota
			succeedConflict // meets ErrConflict, carries on, succeeds
			fail
			panics
			cancelled // its ctx ends while it waits behind the first Write
		)
		kind := func(i int) int { return i % 5 }
		errs := make([]error, n)
		for i := range errs {
			errs[i] = fmt.Errorf("%w %d", errBoom, i)
		}
		panicValue := func(i int) string { return fmt.Sprintf("storetest panic %d", i) }
		key := func(i int) string { return fmt.Sprintf("order/%02d", i) }
		name := func(i int) string { return fmt.Sprintf("s%02d", i) }

		counter := func(tx store.Tx, ctx context.Context) (int, error) {
			v, err := tx.Meta(ctx, "counter")
			if errors.Is(err, store.ErrNotFound) {
				return 0, nil
			}
			if err != nil {
				return 0, err
			}
			return strconv.Atoi(v)
		}

		type outcome struct {
			err      error
			panicked any
			visible  error // reading its changes back right after Write returned nil
		}
		results := make([]outcome, n)
		cancels := make([]context.CancelFunc, n)
		write := func(i int, ctx context.Context) (r outcome) {
			defer func() { r.panicked = recover() }()
			r.err = s.Write(ctx, func(tx store.Tx) error {
				c, err := counter(tx, ctx)
				if err != nil {
					return err
				}
				// Every fn changes the counter, its own key and a secret
				// of its own before deciding how to end.
				if err := tx.PutMeta(ctx, "counter", strconv.Itoa(c+1)); err != nil {
					return err
				}
				if err := tx.PutMeta(ctx, key(i), strconv.Itoa(c+1)); err != nil {
					return err
				}
				if err := tx.CreateSecret(ctx, newSecret(name(i))); err != nil {
					return err
				}
				switch kind(i) {
				case succeedConflict:
					if err := tx.CreateSecret(ctx, newSecret("taken")); !errors.Is(err, store.ErrConflict) {
						return fmt.Errorf("CreateSecret(taken): got %v, want ErrConflict", err)
					}
				case fail:
					return errs[i]
				case panics:
					panic(panicValue(i))
				}
				return nil
			})
			if r.err == nil {
				r.visible = s.Read(t.Context(), func(tx store.Tx) error {
					if _, err := tx.Meta(t.Context(), key(i)); err != nil {
						return err
					}
					_, err := tx.SecretByName(t.Context(), name(i))
					return err
				})
			}
			return r
		}

		// A first Write holds the store while the others start, so that a
		// batching backend gets them all waiting at once. Waiting a moment
		// for them can only make batching less likely, never fail the test.
		holding, release := make(chan struct{}), make(chan struct{})
		firstDone := make(chan error, 1)
		go func() {
			firstDone <- s.Write(ctx, func(tx store.Tx) error {
				close(holding)
				<-release
				return tx.PutMeta(ctx, "first", "committed")
			})
		}()
		within(t, "first Write start", hangGuard, holding)
		var started, wg sync.WaitGroup
		for i := range n {
			wctx, cancel := context.WithCancel(ctx)
			cancels[i] = cancel
			started.Add(1)
			wg.Go(func() {
				started.Done()
				results[i] = write(i, wctx)
			})
		}
		started.Wait()
		time.Sleep(20 * time.Millisecond)
		for i := range n {
			if kind(i) == cancelled {
				cancels[i]()
			}
		}
		close(release)
		allDone := make(chan struct{})
		go func() { wg.Wait(); close(allDone) }()
		within(t, "concurrent Writes", hangGuard, allDone)
		for _, cancel := range cancels {
			cancel()
		}
		if err := within(t, "first Write", hangGuard, firstDone); err != nil {
			t.Fatalf("first Write: %v", err)
		}

		var committed []int // the counter value each successful fn wrote
		for i, r := range results {
			switch kind(i) {
			case succeed, succeedConflict:
				if r.err != nil || r.panicked != nil {
					t.Errorf("Write %d: got error %v, panic %v; want success", i, r.err, r.panicked)
				} else if r.visible != nil {
					t.Errorf("Write %d returned nil but its changes are not visible: %v", i, r.visible)
				}
			case fail:
				if !errors.Is(r.err, errs[i]) || r.panicked != nil {
					t.Errorf("Write %d: got error %v, panic %v; want its own fn's error %v", i, r.err, r.panicked, errs[i])
				}
			case panics:
				if r.panicked != panicValue(i) {
					t.Errorf("Write %d: recovered %v (error %v); want its own fn's panic %q", i, r.panicked, r.err, panicValue(i))
				}
			case cancelled:
				if r.panicked != nil {
					t.Errorf("Write %d: panic %v", i, r.panicked)
				}
				ctxErr(t, fmt.Sprintf("Write %d", i), r.err)
			}
			v, err := getMeta(t, s, key(i))
			_, serr := getSecretByName(t, s, name(i))
			switch kind(i) {
			case succeed, succeedConflict:
				if err != nil || serr != nil {
					t.Errorf("Write %d succeeded: Meta %v, SecretByName %v; want both present", i, err, serr)
					continue
				}
				c, err := strconv.Atoi(v)
				if err != nil {
					t.Fatalf("Meta(%s) = %q: %v", key(i), v, err)
				}
				committed = append(committed, c)
			default:
				wantErr(t, fmt.Sprintf("Meta(%s) of failed Write %d", key(i), i), err, store.ErrNotFound)
				wantErr(t, fmt.Sprintf("SecretByName(%s) of failed Write %d", name(i), i), serr, store.ErrNotFound)
			}
		}
		// Serial: each successful fn saw exactly the ones committed before
		// it, so their counter values are 1…k with no gap and no repeat.
		slices.Sort(committed)
		for j, c := range committed {
			if c != j+1 {
				t.Fatalf("counter values of the committed Writes, sorted: %v; want 1…%d (each fn sees every commit before it and no failed fn's change)", committed, len(committed))
			}
		}
		if v, err := getMeta(t, s, "counter"); err != nil || v != strconv.Itoa(len(committed)) {
			t.Errorf("counter = %q, %v; want %d", v, err, len(committed))
		}
		if v, err := getMeta(t, s, "first"); err != nil || v != "committed" {
			t.Errorf("Meta(first) = %q, %v; want committed", v, err)
		}
	})
}

package secrets_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/events"
	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

// labelRecorder is an OnLabelChange hook that keeps every call, and checks
// on each that the changes are already committed: the labels it reports
// are visible to a fresh read.
type labelRecorder struct {
	t   *testing.T
	svc *secrets.Service

	mu    sync.Mutex
	calls [][]events.LabelChange
}

func (r *labelRecorder) hook(ctx context.Context, changes []events.LabelChange) {
	for _, c := range changes {
		d, err := r.svc.DescribeSecret(context.WithoutCancel(ctx), c.SecretARN)
		if err != nil {
			if secrets.KindOf(err) != secrets.KindNotFound || !c.Removed() {
				r.t.Errorf("hook: describe %s: %v", c.SecretARN, err)
			}
			continue
		}
		if c.VersionID != "" && !slices.Contains(d.VersionIdsToStages[c.VersionID], c.Label) {
			r.t.Errorf("hook called before commit: %s not on %s (%v)", c.Label, c.VersionID, d.VersionIdsToStages)
		}
	}
	r.mu.Lock()
	r.calls = append(r.calls, changes)
	r.mu.Unlock()
}

// take returns the calls since the last take, each change as
// "LABEL FROM->TO".
func (r *labelRecorder) take() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]string
	for _, call := range r.calls {
		var s []string
		for _, c := range call {
			s = append(s, fmt.Sprintf("%s %s->%s", c.Label, short(c.FromVersionID), short(c.VersionID)))
		}
		out = append(out, s)
	}
	r.calls = nil
	return out
}

// short names the test tokens v0, v1, …; other ids pass through.
func short(id string) string {
	for n := range 200 {
		if id == token(n) {
			return fmt.Sprintf("v%d", n)
		}
	}
	if id == "" {
		return "-"
	}
	return id
}

type hasAll struct{}

func (hasAll) Has(string) bool { return true }

func newLabelHarness(t *testing.T) (*harness, *labelRecorder) {
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
	rec := &labelRecorder{t: t}
	rec.svc = secrets.New(secrets.Config{
		Region: "us-east-1", AccountID: "000000000000", Store: st, Keyring: kr, Now: c.Now,
		Functions: hasAll{}, OnLabelChange: rec.hook,
	})
	return &harness{svc: rec.svc, clock: c}, rec
}

func wantCalls(t *testing.T, rec *labelRecorder, step string, want ...[]string) {
	t.Helper()
	got := rec.take()
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("%s: label changes = %q, want %q", step, got, want)
	}
}

func TestOnLabelChange(t *testing.T) {
	h, rec := newLabelHarness(t)
	ctx := t.Context()
	created := h.create(t, "s", "v0")
	wantCalls(t, rec, "create", []string{"AWSCURRENT -->v0"})

	h.put(t, "s", 1, "v1")
	wantCalls(t, rec, "put", []string{"AWSCURRENT v0->v1", "AWSPREVIOUS -->v0"})

	h.put(t, "s", 1, "v1")
	wantCalls(t, rec, "idempotent retry of put")

	h.put(t, "s", 2, "v2")
	wantCalls(t, rec, "second put", []string{"AWSCURRENT v1->v2", "AWSPREVIOUS v0->v1"})

	h.put(t, "s", 3, "v3", "AWSPENDING")
	wantCalls(t, rec, "put AWSPENDING", []string{"AWSPENDING -->v3"})

	move := func(stage, to, from string) error {
		_, err := h.svc.UpdateSecretVersionStage(ctx, secrets.UpdateSecretVersionStageInput{
			SecretID: "s", VersionStage: stage, MoveToVersionID: to, RemoveFromVersionID: from})
		return err
	}
	wantKind(t, move("AWSCURRENT", token(3), ""), secrets.KindInvalidParameter)
	wantCalls(t, rec, "refused move")

	must[struct{}](t)(struct{}{}, move("AWSCURRENT", token(3), token(2)))
	wantCalls(t, rec, "finishSecret", []string{"AWSCURRENT v2->v3", "AWSPREVIOUS v1->v2"})

	must[struct{}](t)(struct{}{}, move("AWSCURRENT", token(3), ""))
	wantCalls(t, rec, "move to the holder")

	must[struct{}](t)(struct{}{}, move("AWSPENDING", "", token(3)))
	wantCalls(t, rec, "remove AWSPENDING", []string{"AWSPENDING v3->-"})

	must[secrets.UpdateSecretOutput](t)(h.svc.UpdateSecret(ctx, secrets.UpdateSecretInput{SecretID: "s", Description: str("d")}))
	wantCalls(t, rec, "update description")

	must[secrets.UpdateSecretOutput](t)(h.svc.UpdateSecret(ctx, secrets.UpdateSecretInput{SecretID: created.ARN, ClientRequestToken: token(4), Value: secrets.StringValue("v4")}))
	wantCalls(t, rec, "update value", []string{"AWSCURRENT v3->v4", "AWSPREVIOUS v2->v3"})

	// A manual put during a rotation abandons it: AWSPENDING goes too.
	h.put(t, "s", 5, "v5", "AWSPENDING")
	rec.take()
	h.put(t, "s", 6, "v6")
	wantCalls(t, rec, "put during rotation", []string{"AWSCURRENT v4->v6", "AWSPREVIOUS v3->v4", "AWSPENDING v5->-"})

	must[secrets.DeleteSecretOutput](t)(h.svc.DeleteSecret(ctx, secrets.DeleteSecretInput{SecretID: "s", ForceDeleteWithoutRecovery: true}))
	got := rec.take()
	if len(got) != 1 || !sameSet(got[0], []string{"AWSCURRENT v6->-", "AWSPREVIOUS v4->-"}) {
		t.Errorf("force delete: label changes = %q", got)
	}
}

func TestOnLabelChangeRotation(t *testing.T) {
	h, rec := newLabelHarness(t)
	ctx := t.Context()
	created := h.create(t, "s", "v0")
	rec.take()

	lambda := "arn:aws:lambda:us-east-1:000000000000:function:f"
	_, version, err := h.svc.RotateSecret(ctx, secrets.RotateSecretInput{SecretID: "s", ClientRequestToken: token(1), RotationLambdaARN: lambda})
	if err != nil {
		t.Fatal(err)
	}
	wantCalls(t, rec, "RotateSecret", []string{"AWSPENDING -->v1"})

	// The engine ends a test rotation by removing its placeholder.
	if err := h.svc.EndTestRotation(ctx, created.ARN, version); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, rec, "EndTestRotation", []string{"AWSPENDING v1->-"})
	if err := h.svc.EndTestRotation(ctx, created.ARN, version); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, rec, "EndTestRotation again")
}

func TestOnLabelChangeCarriesIdentity(t *testing.T) {
	h, rec := newLabelHarness(t)
	var got []events.LabelChange
	created := h.create(t, "prod/db", "hunter2-value")
	rec.mu.Lock()
	for _, call := range rec.calls {
		got = append(got, call...)
	}
	rec.mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("got %d changes, want 1", len(got))
	}
	c := got[0]
	want := events.LabelChange{SecretARN: created.ARN, Name: "prod/db", Label: "AWSCURRENT", VersionID: token(0), Time: h.clock.Now()}
	if c != want {
		t.Errorf("change = %+v, want %+v", c, want)
	}
	if s := fmt.Sprintf("%+v", c); strings.Contains(s, "hunter2") {
		t.Errorf("change shows the value: %s", s)
	}
}

// TestOnLabelChangeNotCalledOnRollback: a put whose label moves are undone
// because the transaction fails afterwards (too many recent deprecated
// versions) reports nothing.
func TestOnLabelChangeNotCalledOnRollback(t *testing.T) {
	h, rec := newLabelHarness(t)
	h.create(t, "s", "v0")
	n := 1
	for ; n < 200; n++ {
		_, err := h.svc.PutSecretValue(t.Context(), secrets.PutSecretValueInput{SecretID: "s", ClientRequestToken: token(n), Value: secrets.StringValue("v")})
		if err != nil {
			wantKind(t, err, secrets.KindLimitExceeded)
			break
		}
	}
	if n == 200 {
		t.Fatal("the version limit was never reached")
	}
	calls := rec.take()
	if len(calls) != n { // create + n-1 successful puts
		t.Fatalf("%d calls reported, want %d (the refused put must not be reported)", len(calls), n)
	}
	if last := calls[len(calls)-1]; !slices.Contains(last, fmt.Sprintf("AWSCURRENT v%d->v%d", n-2, n-1)) {
		t.Errorf("last report = %q, want the last successful put", last)
	}
}

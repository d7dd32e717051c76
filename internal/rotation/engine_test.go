package rotation_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/rotation"
	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

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

// dailyPlanner rotates every 24 hours after the last rotation.
type dailyPlanner struct{}

func (dailyPlanner) Plan(rules string, last, now time.Time) (time.Time, time.Time, error) {
	if rules == `{"ScheduleExpression":"bad"}` {
		return time.Time{}, time.Time{}, errors.New("bad schedule")
	}
	base := last
	if base.IsZero() {
		base = now
	}
	return base.Add(24 * time.Hour), base.Add(25 * time.Hour), nil
}

// recorder keeps events.
type recorder struct {
	mu     sync.Mutex
	events []rotation.Record
}

func (r *recorder) Record(_ context.Context, rec rotation.Record) {
	r.mu.Lock()
	r.events = append(r.events, rec)
	r.mu.Unlock()
}

// typesAfter waits until at least n events were recorded (the engine
// records an event after the transaction that the status shows), up to a
// few seconds, and returns their types.
func (r *recorder) typesAfter(n int) []rotation.EventType {
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.types()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *recorder) types() []rotation.EventType {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []rotation.EventType
	for _, e := range r.events {
		out = append(out, e.Type)
	}
	return out
}

// fn is a scripted rotation function: it moves labels like a real one
// through the domain and can fail chosen steps.
type fn struct {
	svc   *secrets.Service
	mu    sync.Mutex
	calls []rotation.Step
	fail  map[rotation.Step]int // fail this step this many more times
	block chan struct{}         // if set, setSecret waits for it
}

func (f *fn) Invoke(ctx context.Context, ev rotation.Event) error {
	f.mu.Lock()
	f.calls = append(f.calls, ev.Step)
	if f.fail[ev.Step] > 0 {
		f.fail[ev.Step]--
		f.mu.Unlock()
		return fmt.Errorf("database unreachable during %s", ev.Step)
	}
	block := f.block
	f.mu.Unlock()
	switch ev.Step {
	case rotation.StepCreate:
		_, err := f.svc.PutSecretValue(ctx, secrets.PutSecretValueInput{SecretID: ev.SecretID, ClientRequestToken: ev.ClientRequestToken,
			Value: secrets.StringValue("new-" + ev.ClientRequestToken), VersionStages: []string{"AWSPENDING"}})
		return err
	case rotation.StepSet:
		if block != nil {
			select {
			case <-block:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	case rotation.StepFinish:
		d, err := f.svc.DescribeSecret(ctx, ev.SecretID)
		if err != nil {
			return err
		}
		for id, st := range d.VersionIdsToStages {
			if slices.Contains(st, "AWSCURRENT") && id != ev.ClientRequestToken {
				_, err = f.svc.UpdateSecretVersionStage(ctx, secrets.UpdateSecretVersionStageInput{SecretID: ev.SecretID,
					VersionStage: "AWSCURRENT", MoveToVersionID: ev.ClientRequestToken, RemoveFromVersionID: id})
				return err
			}
		}
	}
	return nil
}

func (f *fn) steps() []rotation.Step {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

type env struct {
	svc    *secrets.Service
	store  store.Store
	clock  *clock
	fn     *fn
	rec    *recorder
	engine *rotation.Engine
	cancel context.CancelFunc
	done   chan struct{}
}

const fnARN = "arn:aws:lambda:us-east-1:000000000000:function:scripted"

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rotor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk, _ := keyring.NewMasterKey()
	kr, _ := keyring.New(mk)
	e := &env{store: st, clock: &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}, rec: &recorder{}}
	reg := rotation.NewRegistry()
	var engine *rotation.Engine
	e.svc = secrets.New(secrets.Config{
		Region: "us-east-1", AccountID: "000000000000", Store: st, Keyring: kr, Now: e.clock.Now,
		Functions: reg, Planner: dailyPlanner{}, Recorder: e.rec,
		Kick: func() { engine.Kick() },
	})
	e.fn = &fn{svc: e.svc, fail: map[rotation.Step]int{}}
	reg.Register("scripted", e.fn)
	engine = rotation.NewEngine(rotation.Config{
		Store: st, Functions: reg, Domain: e.svc, Planner: dailyPlanner{}, Recorder: e.rec, Now: e.clock.Now,
		MaxAttempts: 3, BaseBackoff: time.Minute, MaxBackoff: time.Hour, PollInterval: 5 * time.Millisecond,
	})
	e.engine = engine
	e.start(t)
	return e
}

func (e *env) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan struct{})
	go func() { e.engine.Run(ctx); close(e.done) }()
	t.Cleanup(e.stop)
}

func (e *env) stop() {
	e.cancel()
	<-e.done
}

func (e *env) secret(t *testing.T, name string) string {
	t.Helper()
	out, err := e.svc.CreateSecret(t.Context(), secrets.CreateSecretInput{Name: name, Value: secrets.StringValue("v0"), ClientRequestToken: fmt.Sprintf("%032d", 0)})
	if err != nil {
		t.Fatal(err)
	}
	return out.ARN
}

// waitFor polls the rotation status until cond holds (bounded).
func (e *env) waitFor(t *testing.T, id string, what string, cond func(secrets.RotationStatus) bool) secrets.RotationStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := e.svc.RotationStatus(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; status %+v in progress %+v", what, st, st.InProgress)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func finished(n int) func(secrets.RotationStatus) bool {
	return func(s secrets.RotationStatus) bool { return s.InProgress == nil && len(s.History) >= n }
}

func (e *env) current(t *testing.T, id string) string {
	t.Helper()
	v, err := e.svc.GetSecretValue(t.Context(), secrets.GetSecretValueInput{SecretID: id})
	if err != nil {
		t.Fatal(err)
	}
	return string(v.Value.Reveal())
}

func TestRotationRunsFourSteps(t *testing.T) {
	e := newEnv(t)
	arn := e.secret(t, "db")
	_, version, err := e.svc.RotateSecret(t.Context(), secrets.RotateSecretInput{SecretID: "db", RotationLambdaARN: fnARN,
		RotationRules: &secrets.RotationRules{ScheduleExpression: "rate(1 day)"}})
	if err != nil {
		t.Fatal(err)
	}
	st := e.waitFor(t, "db", "the rotation to finish", finished(1))
	if got := e.fn.steps(); !slices.Equal(got, rotation.Steps) {
		t.Fatalf("steps = %v, want %v", got, rotation.Steps)
	}
	if st.History[0].Outcome != rotation.OutcomeSucceeded || st.History[0].Token != version {
		t.Fatalf("history = %+v", st.History)
	}
	if got := e.current(t, arn); got != "new-"+version {
		t.Fatalf("AWSCURRENT = %q", got)
	}
	if !st.LastRotatedDate.Equal(e.clock.Now()) || !st.NextRotationDate.Equal(e.clock.Now().Add(25*time.Hour)) {
		t.Fatalf("LastRotated %v NextRotation %v", st.LastRotatedDate, st.NextRotationDate)
	}
	d, _ := e.svc.DescribeSecret(t.Context(), "db")
	if d.RotationEnabled == nil || !*d.RotationEnabled || d.RotationLambdaARN != fnARN || d.RotationRules == nil {
		t.Fatalf("describe = %+v", d)
	}
	if got := e.rec.typesAfter(2); !slices.Equal(got, []rotation.EventType{rotation.EventStarted, rotation.EventSucceeded}) {
		t.Fatalf("events = %v", got)
	}

	// The schedule: nothing happens before the next window, a rotation when it comes.
	e.clock.Add(23 * time.Hour)
	e.engine.Kick()
	time.Sleep(50 * time.Millisecond) // give a wrong engine the chance to misbehave
	if n := len(e.fn.steps()); n != 4 {
		t.Fatalf("rotated before the window: %d calls", n)
	}
	e.clock.Add(2 * time.Hour)
	e.waitFor(t, "db", "the scheduled rotation", finished(2))
	if n := len(e.fn.steps()); n != 8 {
		t.Fatalf("scheduled rotation made %d calls, want 8", n)
	}
}

func TestRotationRetriesWithBackoff(t *testing.T) {
	e := newEnv(t)
	e.secret(t, "db")
	e.fn.fail[rotation.StepSet] = 2
	if _, _, err := e.svc.RotateSecret(t.Context(), secrets.RotateSecretInput{SecretID: "db", RotationLambdaARN: fnARN}); err != nil {
		t.Fatal(err)
	}
	st := e.waitFor(t, "db", "the first failure", func(s secrets.RotationStatus) bool { return s.InProgress != nil && s.InProgress.Attempt == 1 })
	if st.InProgress.Next != rotation.StepSet || st.InProgress.LastError == "" || st.InProgress.RetryAt.IsZero() {
		t.Fatalf("after a failure: %+v", st.InProgress)
	}
	// No retry before the backoff (45–75 s for the first retry) has passed.
	time.Sleep(30 * time.Millisecond)
	if st, _ := e.svc.RotationStatus(t.Context(), "db"); st.InProgress.Attempt != 1 {
		t.Fatalf("retried before the backoff: %+v", st.InProgress)
	}
	e.clock.Add(80 * time.Second)
	e.waitFor(t, "db", "the second failure", func(s secrets.RotationStatus) bool { return s.InProgress != nil && s.InProgress.Attempt == 2 })
	e.clock.Add(3 * time.Minute)
	st = e.waitFor(t, "db", "success", finished(1))
	if st.History[0].Outcome != rotation.OutcomeSucceeded || st.History[0].Attempts != 3 {
		t.Fatalf("history = %+v", st.History)
	}
	// createSecret ran once: a retry resumes at the failed step.
	want := []rotation.Step{"createSecret", "setSecret", "setSecret", "setSecret", "testSecret", "finishSecret"}
	if got := e.fn.steps(); !slices.Equal(got, want) {
		t.Fatalf("steps = %v, want %v", got, want)
	}
	if got := e.rec.typesAfter(4); !slices.Equal(got, []rotation.EventType{"RotationStarted", "RotationFailed", "RotationFailed", "RotationSucceeded"}) {
		t.Fatalf("events = %v", got)
	}
}

func TestRotationGivesUpThenResumesOnReattempt(t *testing.T) {
	e := newEnv(t)
	arn := e.secret(t, "db")
	e.fn.fail[rotation.StepTest] = 100
	_, version, err := e.svc.RotateSecret(t.Context(), secrets.RotateSecretInput{SecretID: "db", RotationLambdaARN: fnARN})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 3; i++ {
		e.waitFor(t, "db", "a failure", func(s secrets.RotationStatus) bool { return s.InProgress != nil && s.InProgress.Attempt == i })
		e.clock.Add(2 * time.Hour)
	}
	st := e.waitFor(t, "db", "giving up", func(s secrets.RotationStatus) bool { return s.InProgress != nil && s.InProgress.Exhausted })
	if st.InProgress.Attempt != 3 {
		t.Fatalf("gave up after %d attempts", st.InProgress.Attempt)
	}
	if got := e.current(t, arn); got != "v0" {
		t.Fatalf("AWSCURRENT changed to %q by a failed rotation", got)
	}
	// The database is back. A new RotateSecret says the previous rotation
	// isn't complete, and reattempts it.
	e.fn.mu.Lock()
	e.fn.fail[rotation.StepTest] = 0
	e.fn.mu.Unlock()
	_, _, err = e.svc.RotateSecret(t.Context(), secrets.RotateSecretInput{SecretID: "db"})
	if secrets.KindOf(err) != secrets.KindInvalidRequest {
		t.Fatalf("RotateSecret during a rotation: %v", err)
	}
	st = e.waitFor(t, "db", "the reattempt to finish", finished(1))
	if st.History[0].Token != version {
		t.Fatalf("the reattempt used version %s, want the original %s", st.History[0].Token, version)
	}
	if got := e.current(t, arn); got != "new-"+version {
		t.Fatalf("AWSCURRENT = %q", got)
	}
}

func TestRotationResumesAfterRestart(t *testing.T) {
	e := newEnv(t)
	arn := e.secret(t, "db")
	e.fn.block = make(chan struct{})
	_, version, err := e.svc.RotateSecret(t.Context(), secrets.RotateSecretInput{SecretID: "db", RotationLambdaARN: fnARN})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "db", "setSecret to start", func(s secrets.RotationStatus) bool {
		return s.InProgress != nil && s.InProgress.Next == rotation.StepSet && slices.Contains(e.fn.steps(), rotation.StepSet)
	})
	e.stop() // the process goes away in the middle of setSecret
	e.fn.mu.Lock()
	e.fn.block = nil
	e.fn.mu.Unlock()
	e.start(t)
	e.waitFor(t, "db", "the resumed rotation", finished(1))
	want := []rotation.Step{"createSecret", "setSecret", "setSecret", "testSecret", "finishSecret"}
	if got := e.fn.steps(); !slices.Equal(got, want) {
		t.Fatalf("steps = %v, want %v", got, want)
	}
	if got := e.current(t, arn); got != "new-"+version {
		t.Fatalf("AWSCURRENT = %q", got)
	}
}

func TestConcurrentRotateSecretMakesOneVersion(t *testing.T) {
	e := newEnv(t)
	e.secret(t, "db")
	e.fn.block = make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	versions := map[string]bool{}
	errs := 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, v, err := e.svc.RotateSecret(context.Background(), secrets.RotateSecretInput{SecretID: "db", RotationLambdaARN: fnARN})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if secrets.KindOf(err) != secrets.KindInvalidRequest {
					t.Errorf("RotateSecret: %v", err)
				}
				errs++
				return
			}
			versions[v] = true
		}()
	}
	wg.Wait()
	if len(versions) != 1 || errs != 19 {
		t.Fatalf("%d versions started, %d refused; want 1 and 19", len(versions), errs)
	}
	close(e.fn.block)
	e.waitFor(t, "db", "the rotation", finished(1))
	out, _ := e.svc.ListSecretVersionIds(t.Context(), secrets.ListSecretVersionIdsInput{SecretID: "db", IncludeDeprecated: true})
	if len(out.Versions) != 2 {
		t.Fatalf("%d versions, want 2", len(out.Versions))
	}
}

func TestManualUpdateAbandonsRotation(t *testing.T) {
	e := newEnv(t)
	arn := e.secret(t, "db")
	e.fn.block = make(chan struct{})
	if _, _, err := e.svc.RotateSecret(t.Context(), secrets.RotateSecretInput{SecretID: "db", RotationLambdaARN: fnARN}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "db", "setSecret", func(s secrets.RotationStatus) bool { return slices.Contains(e.fn.steps(), rotation.StepSet) })
	if _, err := e.svc.PutSecretValue(t.Context(), secrets.PutSecretValueInput{SecretID: "db", Value: secrets.StringValue("manual")}); err != nil {
		t.Fatal(err)
	}
	close(e.fn.block)
	st := e.waitFor(t, "db", "the abandoned run", finished(1))
	if st.History[0].Outcome != rotation.OutcomeAbandoned {
		t.Fatalf("history = %+v", st.History)
	}
	time.Sleep(30 * time.Millisecond)
	if got := e.current(t, arn); got != "manual" {
		t.Fatalf("AWSCURRENT = %q, want the manual value", got)
	}
	if slices.Contains(e.fn.steps(), rotation.StepFinish) {
		t.Fatal("the abandoned rotation went on to finishSecret")
	}
	if !slices.Contains(e.rec.types(), rotation.EventAbandoned) {
		t.Fatalf("events = %v", e.rec.types())
	}
	d, _ := e.svc.DescribeSecret(t.Context(), "db")
	for _, stages := range d.VersionIdsToStages {
		if slices.Contains(stages, "AWSPENDING") {
			t.Fatalf("AWSPENDING left behind: %v", d.VersionIdsToStages)
		}
	}
}

func TestCancelRotateSecret(t *testing.T) {
	e := newEnv(t)
	e.secret(t, "db")
	e.fn.fail[rotation.StepSet] = 100
	_, version, err := e.svc.RotateSecret(t.Context(), secrets.RotateSecretInput{SecretID: "db", RotationLambdaARN: fnARN})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "db", "a failure", func(s secrets.RotationStatus) bool { return s.InProgress != nil && s.InProgress.Attempt == 1 })
	_, pending, err := e.svc.CancelRotateSecret(t.Context(), "db")
	if err != nil || pending != version {
		t.Fatalf("CancelRotateSecret = %q, %v; want the pending version %s", pending, err, version)
	}
	d, _ := e.svc.DescribeSecret(t.Context(), "db")
	if d.RotationEnabled == nil || *d.RotationEnabled || d.RotationLambdaARN != fnARN || !slices.Contains(d.VersionIdsToStages[version], "AWSPENDING") {
		t.Fatalf("after cancel: %+v", d)
	}
	st, _ := e.svc.RotationStatus(t.Context(), "db")
	if st.InProgress != nil || st.History[0].Outcome != rotation.OutcomeCancelled {
		t.Fatalf("status after cancel: %+v", st)
	}
	e.clock.Add(time.Hour)
	time.Sleep(30 * time.Millisecond)
	if n := len(e.fn.steps()); n != 2 {
		t.Fatalf("a cancelled rotation kept running: %v", e.fn.steps())
	}
}

func TestTestRotationRunsOnlyTestSecret(t *testing.T) {
	e := newEnv(t)
	arn := e.secret(t, "db")
	no := false
	_, version, err := e.svc.RotateSecret(t.Context(), secrets.RotateSecretInput{SecretID: "db", RotationLambdaARN: fnARN, RotateImmediately: &no,
		RotationRules: &secrets.RotationRules{ScheduleExpression: "rate(1 day)"}})
	if err != nil {
		t.Fatal(err)
	}
	st := e.waitFor(t, "db", "the test rotation", finished(1))
	if got := e.fn.steps(); !slices.Equal(got, []rotation.Step{rotation.StepTest}) {
		t.Fatalf("steps = %v", got)
	}
	if st.History[0].Mode != rotation.ModeTest || !st.LastRotatedDate.IsZero() {
		t.Fatalf("status = %+v", st)
	}
	if got := e.current(t, arn); got != "v0" {
		t.Fatalf("a test rotation changed AWSCURRENT to %q", got)
	}
	if _, err := e.svc.GetSecretValue(t.Context(), secrets.GetSecretValueInput{SecretID: "db", VersionID: version}); secrets.KindOf(err) != secrets.KindNotFound {
		t.Fatalf("the test placeholder remains: %v", err)
	}
	if got := e.rec.typesAfter(2); !slices.Equal(got, []rotation.EventType{rotation.EventTestStarted, rotation.EventTestSucceeded}) {
		t.Fatalf("events = %v", got)
	}
}

func TestRotateSecretRefusals(t *testing.T) {
	e := newEnv(t)
	e.secret(t, "db")
	cases := []struct {
		name string
		in   secrets.RotateSecretInput
		kind secrets.Kind
	}{
		{"no function configured", secrets.RotateSecretInput{SecretID: "db"}, secrets.KindInvalidRequest},
		{"unknown function", secrets.RotateSecretInput{SecretID: "db", RotationLambdaARN: "arn:aws:lambda:us-east-1:000000000000:function:nope"}, secrets.KindAccessDenied},
		{"not a function ARN", secrets.RotateSecretInput{SecretID: "db", RotationLambdaARN: "nope"}, secrets.KindInvalidParameter},
		{"bad schedule", secrets.RotateSecretInput{SecretID: "db", RotationLambdaARN: fnARN, RotationRules: &secrets.RotationRules{ScheduleExpression: "bad"}}, secrets.KindInvalidParameter},
		{"unknown secret", secrets.RotateSecretInput{SecretID: "nope", RotationLambdaARN: fnARN}, secrets.KindNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := e.svc.RotateSecret(t.Context(), c.in)
			if secrets.KindOf(err) != c.kind {
				t.Fatalf("err = %v, want kind %d", err, c.kind)
			}
		})
	}
	if _, err := e.svc.CreateSecret(t.Context(), secrets.CreateSecretInput{Name: "empty"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.RotateSecret(t.Context(), secrets.RotateSecretInput{SecretID: "empty", RotationLambdaARN: fnARN}); secrets.KindOf(err) != secrets.KindInvalidRequest {
		t.Fatalf("rotating a secret without a value: %v", err)
	}
	if _, _, err := e.svc.CancelRotateSecret(t.Context(), "empty"); secrets.KindOf(err) != secrets.KindInvalidRequest {
		t.Fatalf("cancelling an unconfigured rotation: %v", err)
	}
}

func TestStateDecodeRefusesUnknownFormat(t *testing.T) {
	if _, err := rotation.DecodeState(`{"v":2,"token":"x","next":"setSecret"}`); err == nil {
		t.Fatal("a state record of an unknown format was accepted")
	}
	if _, err := rotation.DecodeState(`not json`); err == nil {
		t.Fatal("a corrupt state record was accepted")
	}
	st, err := rotation.DecodeState("")
	if err != nil || st.Active() {
		t.Fatalf("empty state: %+v %v", st, err)
	}
	s := st.Begin("tok", "f", rotation.ModeRotate, time.Unix(1, 0))
	back, err := rotation.DecodeState(s.Encode())
	if err != nil || back.Token != "tok" || back.Next != rotation.StepCreate {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

package rotation

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
)

// Domain is what the engine needs from the secrets domain.
type Domain interface {
	// StartScheduledRotation starts a rotation of the secret with its stored
	// configuration, as RotateSecret without parameters does: an AWSPENDING
	// placeholder version and a State whose Next is createSecret. It does
	// nothing if a rotation is already in progress.
	StartScheduledRotation(ctx context.Context, secretARN string) error
	// EndTestRotation removes the AWSPENDING placeholder a test rotation
	// (RotateImmediately false) created.
	EndTestRotation(ctx context.Context, secretARN, token string) error
}

// Planner computes a secret's schedule from its stored rotation rules.
type Planner interface {
	// Plan returns when the engine should start the next rotation (inside
	// the next window) and the NextRotationDate to report ("on or before"),
	// given the last successful rotation (zero if none) and now.
	Plan(rulesJSON string, lastRotated, now time.Time) (wake, nextRotation time.Time, err error)
}

// Config wires an Engine.
type Config struct {
	Store     store.Store
	Functions *Registry
	Domain    Domain
	Planner   Planner
	Recorder  Recorder     // nil: events are only logged
	Logger    *slog.Logger // nil: discard
	Now       func() time.Time

	// MaxAttempts bounds the attempts of one run before it waits for the
	// next window (default 5). Backoff doubles from BaseBackoff up to
	// MaxBackoff (defaults 15s, 10m), with ±25 % jitter.
	MaxAttempts int
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// StepTimeout bounds one step (default 2m).
	StepTimeout time.Duration
	// Concurrency bounds the rotations running at once (default 8).
	Concurrency int
	// PollInterval is how often the queue is read when nothing kicks the
	// engine (default 1s).
	PollInterval time.Duration

	// CrashAfter is a test hook: the process kills itself (SIGKILL) right
	// after the completion of this step is stored. Never set in production.
	CrashAfter Step
}

// Engine runs due rotations. Create it with NewEngine and call Run.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	kick    chan struct{}
	slots   chan struct{}
	mu      sync.Mutex
	running map[string]bool
	wg      sync.WaitGroup
	rnd     *rand.Rand
	rndMu   sync.Mutex
}

// NewEngine returns an engine; Run starts it.
func NewEngine(cfg Config) *Engine {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = 15 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Minute
	}
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = 2 * time.Minute
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		cfg: cfg, log: log,
		kick:    make(chan struct{}, 1),
		slots:   make(chan struct{}, cfg.Concurrency),
		running: make(map[string]bool),
		rnd:     rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x9e3779b97f4a7c15)),
	}
}

// Kick makes Run read the queue now (after RotateSecret, for example).
func (e *Engine) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Run processes due rotations until ctx ends, then waits for the steps in
// flight to return (their contexts are cancelled).
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.cfg.PollInterval)
	defer t.Stop()
	defer e.wg.Wait()
	for {
		e.dispatch(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-e.kick:
		}
	}
}

// dispatch starts a goroutine for every due secret not already running, up
// to the concurrency bound.
func (e *Engine) dispatch(ctx context.Context) {
	var due []string
	err := e.cfg.Store.Read(ctx, func(tx store.Tx) error {
		var err error
		due, err = tx.RotationsDue(ctx, e.cfg.Now(), 2*e.cfg.Concurrency)
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("read rotation queue", "err", err)
		}
		return
	}
	for _, arn := range due {
		e.mu.Lock()
		busy := e.running[arn]
		if !busy {
			select {
			case e.slots <- struct{}{}:
				e.running[arn] = true
			default:
				busy = true // no free slot: next round
			}
		}
		e.mu.Unlock()
		if busy {
			continue
		}
		e.wg.Add(1)
		go func() {
			defer func() {
				e.mu.Lock()
				delete(e.running, arn)
				e.mu.Unlock()
				<-e.slots
				e.Kick() // a slot is free: look for more due work now
				e.wg.Done()
			}()
			e.process(ctx, arn)
		}()
	}
}

// process does the due work of one secret: start a scheduled rotation, run
// the steps of a run in progress, or reschedule.
func (e *Engine) process(ctx context.Context, arn string) {
	sec, st, err := e.load(ctx, arn)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			e.log.Error("load rotation state", "secret_arn", arn, "err", err)
		}
		return
	}
	if w := sec.Rotation.WakeAt; w.IsZero() || w.After(e.cfg.Now()) {
		return // the queue was read before another goroutine rescheduled this secret
	}
	if !st.Active() {
		if !sec.Rotation.Enabled || !sec.DeletedAt.IsZero() {
			e.setWake(ctx, arn, time.Time{})
			return
		}
		if err := e.cfg.Domain.StartScheduledRotation(ctx, arn); err != nil {
			e.log.Error("start scheduled rotation", "secret_arn", arn, "err", err)
			e.setWake(ctx, arn, e.cfg.Now().Add(e.cfg.BaseBackoff))
			return
		}
		if sec, st, err = e.load(ctx, arn); err != nil || !st.Active() {
			return
		}
	}
	if st.Exhausted {
		// The next window came: try again from the stored step.
		st, err = e.update(ctx, arn, st.Token, func(s *State, _ *store.Secret) {
			s.Exhausted, s.Attempt = false, 0
		})
		if err != nil {
			return
		}
	}
	if st.Attempt == 0 && st.Next == firstStep(st.Mode) {
		e.record(ctx, st, arn, EventStarted, "")
	}
	e.runSteps(ctx, sec, st)
}

func firstStep(m Mode) Step {
	if m == ModeTest {
		return StepTest
	}
	return StepCreate
}

// runSteps runs the steps of the run in progress from st.Next, storing each
// completion before the next step starts.
func (e *Engine) runSteps(ctx context.Context, sec store.Secret, st State) {
	arn, token := sec.ARN, st.Token
	fn, ok := e.cfg.Functions.Lookup(st.Function)
	for st.Active() {
		step := st.Next
		var err error
		if !ok {
			err = errors.New("rotation function " + st.Function + " is not registered")
		} else {
			sctx, cancel := context.WithTimeout(ctx, e.cfg.StepTimeout)
			err = fn.Invoke(sctx, Event{Step: step, SecretID: arn, ClientRequestToken: token})
			cancel()
		}
		if ctx.Err() != nil {
			return // shutting down: the step resumes on the next start
		}
		if err != nil {
			e.fail(ctx, arn, st, step, err)
			return
		}
		var nst State
		nst, err = e.update(ctx, arn, token, func(s *State, sec *store.Secret) {
			if s.Next != step {
				return
			}
			s.Next = next(step)
			if s.Mode == ModeTest {
				s.Next = ""
			}
			if s.Next == "" {
				// The last step: the run ends in the same transaction, so a
				// crash cannot leave a finished run looking unfinished.
				e.succeed(s, sec)
			}
		})
		if err != nil {
			return // abandoned, cancelled or store failure: logged by update
		}
		e.crashHook(step)
		if !nst.Active() && nst.Token == "" {
			break
		}
		st = nst
	}
	if st.Mode == ModeTest {
		if err := e.cfg.Domain.EndTestRotation(ctx, arn, st.Token); err != nil {
			e.log.Error("remove test rotation version", "secret_arn", arn, "version_id", st.Token, "err", err)
		}
	}
	e.record(ctx, st, arn, EventSucceeded, "")
}

// succeed ends the run in s as succeeded and schedules the next one.
func (e *Engine) succeed(s *State, sec *store.Secret) {
	now := e.cfg.Now()
	if s.Mode == ModeRotate {
		sec.Rotation.LastRotatedAt = now
	}
	*s = s.End(OutcomeSucceeded, now)
	e.reschedule(sec, now)
}

// fail records a failed step and schedules the retry, or gives the run up
// until the next window once its attempts are spent. The version and the
// target are left as they are: the retry resumes the same step with the
// same pending value, so the database and the stored versions converge.
func (e *Engine) fail(ctx context.Context, arn string, st State, step Step, stepErr error) {
	now := e.cfg.Now()
	msg := string(step) + ": " + ErrorText(stepErr)
	var exhausted bool
	_, err := e.update(ctx, arn, st.Token, func(s *State, sec *store.Secret) {
		s.Attempt++
		s.LastError = msg
		if s.Attempt >= e.cfg.MaxAttempts {
			s.Exhausted, exhausted = true, true
			s.RetryAt = time.Time{}
			sec.Rotation.WakeAt = time.Time{}
			if sec.Rotation.Enabled {
				wake, nextDate, err := e.cfg.Planner.Plan(sec.Rotation.RulesJSON, sec.Rotation.LastRotatedAt, now.Add(time.Minute))
				if err == nil {
					sec.Rotation.WakeAt, sec.Rotation.NextRotationAt = wake, nextDate
				}
			}
			return
		}
		s.RetryAt = now.Add(e.backoff(s.Attempt))
		sec.Rotation.WakeAt = s.RetryAt
	})
	if err != nil {
		return
	}
	e.log.Warn("rotation step failed", "secret_arn", arn, "version_id", st.Token, "step", step,
		"attempt", st.Attempt+1, "gave_up", exhausted, "err", msg)
	st.Attempt++
	e.record(ctx, st, arn, EventFailed, msg)
}

// backoff is BaseBackoff·2^(attempt-1), capped, with ±25 % jitter.
func (e *Engine) backoff(attempt int) time.Duration {
	d := e.cfg.BaseBackoff
	for i := 1; i < attempt && d < e.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, e.cfg.MaxBackoff)
	e.rndMu.Lock()
	j := e.rnd.Float64()*0.5 - 0.25
	e.rndMu.Unlock()
	return d + time.Duration(float64(d)*j)
}

// reschedule sets the next scheduled rotation of sec after a run.
func (e *Engine) reschedule(sec *store.Secret, now time.Time) {
	sec.Rotation.WakeAt = time.Time{}
	if !sec.Rotation.Enabled || sec.Rotation.RulesJSON == "" {
		return
	}
	wake, nextDate, err := e.cfg.Planner.Plan(sec.Rotation.RulesJSON, sec.Rotation.LastRotatedAt, now)
	if err != nil {
		e.log.Error("plan next rotation", "secret_arn", sec.ARN, "err", err)
		return
	}
	sec.Rotation.WakeAt, sec.Rotation.NextRotationAt = wake, nextDate
}

func (e *Engine) crashHook(step Step) {
	if e.cfg.CrashAfter != "" && e.cfg.CrashAfter == step {
		e.log.Warn("test hook: killing the process after a rotation step", "step", step)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never returns
	}
}

func (e *Engine) record(ctx context.Context, st State, arn string, t EventType, errText string) {
	if st.Mode == ModeTest {
		t = testEvent(t)
	}
	r := Record{Type: t, Time: e.cfg.Now(), SecretARN: arn, VersionID: st.Token, Step: st.Next,
		Function: st.Function, Attempt: st.Attempt, Error: errText}
	if e.cfg.Recorder == nil {
		e.log.Info("rotation event", "event", string(t), "secret_arn", arn, "version_id", st.Token, "function", st.Function)
		return
	}
	e.cfg.Recorder.Record(ctx, r)
}

func (e *Engine) load(ctx context.Context, arn string) (store.Secret, State, error) {
	var sec store.Secret
	err := e.cfg.Store.Read(ctx, func(tx store.Tx) error {
		var err error
		sec, err = tx.Secret(ctx, arn)
		return err
	})
	if err != nil {
		return sec, State{}, err
	}
	st, err := DecodeState(sec.Rotation.StateJSON)
	return sec, st, err
}

// errStale means the run the engine holds is no longer the secret's
// (abandoned by a manual update, cancelled, replaced).
var errStale = errors.New("rotation run is no longer current")

// update applies fn to the stored state of the run with token, in one write
// transaction, and returns the new state. It fails with errStale when the
// stored run is another one or is no longer active.
func (e *Engine) update(ctx context.Context, arn, token string, fn func(*State, *store.Secret)) (State, error) {
	var out State
	err := e.cfg.Store.Write(ctx, func(tx store.Tx) error {
		sec, err := tx.Secret(ctx, arn)
		if err != nil {
			return err
		}
		st, err := DecodeState(sec.Rotation.StateJSON)
		if err != nil {
			return err
		}
		if st.Token != token || !st.Active() {
			return errStale
		}
		fn(&st, &sec)
		sec.Rotation.StateJSON = st.Encode()
		out = st
		return tx.UpdateSecret(ctx, sec)
	})
	switch {
	case errors.Is(err, errStale):
		e.log.Info("rotation run ended elsewhere", "secret_arn", arn, "version_id", token)
	case err != nil && ctx.Err() == nil:
		e.log.Error("store rotation state", "secret_arn", arn, "version_id", token, "err", err)
	}
	return out, err
}

// setWake sets a secret's wake-up time when it has no run in progress.
func (e *Engine) setWake(ctx context.Context, arn string, t time.Time) {
	err := e.cfg.Store.Write(ctx, func(tx store.Tx) error {
		sec, err := tx.Secret(ctx, arn)
		if err != nil {
			return err
		}
		sec.Rotation.WakeAt = t
		return tx.UpdateSecret(ctx, sec)
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
		e.log.Error("set rotation wake-up", "secret_arn", arn, "err", err)
	}
}

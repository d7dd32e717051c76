// Package rotation runs secret rotations: AWS's four steps (createSecret,
// setSecret, testSecret, finishSecret) executed by a rotation Function, with
// each step's completion stored before the next begins, bounded retries with
// exponential backoff and jitter, schedules, and crash resume.
//
// The engine's record of a rotation is a State, stored (versioned JSON) with
// the secret; Rotation.WakeAt in the store is the engine's queue. Engine.Run
// polls the queue and runs due work, at most one rotation per secret at a
// time. After a crash, the next Run finds the stored step and resumes it;
// every step is idempotent, so a step that ran but was not recorded simply
// runs again with the same version id and the same pending value.
//
// The domain (internal/secrets) starts rotations — it creates the AWSPENDING
// placeholder version and the State in one transaction — through the Domain
// interface the engine is given; the engine never moves labels itself.
// Functions (built-in rotators, custom functions) do, through the secrets
// API, as AWS rotation Lambdas do.
//
// Events (RotationStarted, RotationSucceeded, RotationFailed,
// RotationAbandoned, TestRotation*) are recorded through one Recorder so
// that sinks (audit, webhooks, metrics) are added in one place.
package rotation

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Step is one of AWS's four rotation steps.
type Step string

// The steps, in order.
const (
	StepCreate Step = "createSecret"
	StepSet    Step = "setSecret"
	StepTest   Step = "testSecret"
	StepFinish Step = "finishSecret"
)

// Steps lists the steps of a rotation in order.
var Steps = []Step{StepCreate, StepSet, StepTest, StepFinish}

// next returns the step after s, or "" after the last.
func next(s Step) Step {
	for i, st := range Steps {
		if st == s && i+1 < len(Steps) {
			return Steps[i+1]
		}
	}
	return ""
}

// Event is the input of a rotation Function: AWS's Lambda rotation event.
type Event struct {
	Step               Step   `json:"Step"`
	SecretID           string `json:"SecretId"`
	ClientRequestToken string `json:"ClientRequestToken"`
	RotationToken      string `json:"RotationToken,omitempty"`
}

// Function performs one step of a rotation. It must be idempotent: the engine
// repeats a step after a failure or a crash with the same event.
type Function interface {
	Invoke(ctx context.Context, ev Event) error
}

// FunctionFunc adapts a function to Function.
type FunctionFunc func(ctx context.Context, ev Event) error

// Invoke calls f.
func (f FunctionFunc) Invoke(ctx context.Context, ev Event) error { return f(ctx, ev) }

// Registry maps function names (the NAME of
// arn:aws:lambda:REGION:ACCOUNT:function:NAME) to Functions. It is safe for
// concurrent use.
type Registry struct {
	mu       sync.RWMutex
	fns      map[string]Function
	fallback func(name string) (Function, bool)
}

// SetFallback makes Lookup ask fn for names not registered (the custom
// functions kept in the store).
func (r *Registry) SetFallback(fn func(name string) (Function, bool)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fallback = fn
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{fns: make(map[string]Function)} }

// Register adds or replaces a function.
func (r *Registry) Register(name string, fn Function) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fns[name] = fn
}

// Lookup returns the function registered under name.
func (r *Registry) Lookup(name string) (Function, bool) {
	r.mu.RLock()
	fn, ok := r.fns[name]
	fallback := r.fallback
	r.mu.RUnlock()
	if !ok && fallback != nil {
		return fallback(name)
	}
	return fn, ok
}

// Has reports whether name is registered.
func (r *Registry) Has(name string) bool {
	_, ok := r.Lookup(name)
	return ok
}

// Names lists the registered functions, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.fns))
	for n := range r.fns {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// EventType names a rotation event, as CloudTrail does.
type EventType string

// The rotation events.
const (
	EventStarted       EventType = "RotationStarted"
	EventSucceeded     EventType = "RotationSucceeded"
	EventFailed        EventType = "RotationFailed"
	EventAbandoned     EventType = "RotationAbandoned"
	EventTestStarted   EventType = "TestRotationStarted"
	EventTestSucceeded EventType = "TestRotationSucceeded"
	EventTestFailed    EventType = "TestRotationFailed"
)

// Record is one rotation event. Error never contains a secret value.
type Record struct {
	Type      EventType
	Time      time.Time
	SecretARN string
	VersionID string
	Step      Step
	Function  string
	Attempt   int
	Error     string
}

// Recorder receives rotation events. Implementations must be safe for
// concurrent use and must not block for long.
type Recorder interface {
	Record(ctx context.Context, r Record)
}

// RecorderFunc adapts a function to Recorder.
type RecorderFunc func(ctx context.Context, r Record)

// Record calls f.
func (f RecorderFunc) Record(ctx context.Context, r Record) { f(ctx, r) }

// Recorders fans a record out to several recorders.
type Recorders []Recorder

// Record sends r to every recorder.
func (rs Recorders) Record(ctx context.Context, r Record) {
	for _, rec := range rs {
		rec.Record(ctx, r)
	}
}

func (t EventType) String() string { return string(t) }

// testEvent maps a rotation event to its test-rotation twin.
func testEvent(t EventType) EventType {
	switch t {
	case EventStarted:
		return EventTestStarted
	case EventSucceeded:
		return EventTestSucceeded
	case EventFailed:
		return EventTestFailed
	}
	return t
}

// ErrorText is how a step error is stored and shown: one line, bounded.
func ErrorText(err error) string {
	s := fmt.Sprint(err)
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '\n' || r == '\r' || r == '\t' {
			r = ' '
		}
		out = append(out, r)
		if len(out) >= 1000 {
			out = append(out, '…')
			break
		}
	}
	return string(out)
}

package rotation

import (
	"encoding/json"
	"fmt"
	"time"
)

// stateFormat is the version of the State record. Decode refuses other
// versions rather than dropping a rotation it does not understand.
const stateFormat = 1

// Mode is what a rotation run does.
type Mode string

// The modes.
const (
	// ModeRotate runs the four steps.
	ModeRotate Mode = "rotate"
	// ModeTest runs only testSecret (RotateSecret with RotateImmediately
	// false), then removes its AWSPENDING placeholder.
	ModeTest Mode = "test"
)

// maxHistory bounds the runs a State remembers.
const maxHistory = 10

// State is the engine's record of a secret's rotation: the run in progress
// (if Next is set) and the recent runs.
type State struct {
	Format int `json:"v"`
	// The run in progress.
	Token     string    `json:"token,omitempty"`    // the pending version id
	Function  string    `json:"function,omitempty"` // function name
	Mode      Mode      `json:"mode,omitempty"`
	Next      Step      `json:"next,omitempty"` // the next step to run; "" when idle
	Attempt   int       `json:"attempt,omitempty"`
	RetryAt   time.Time `json:"retry_at,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// Exhausted is set when the run gave up after its attempts; it resumes
	// at the next scheduled window or the next RotateSecret.
	Exhausted bool `json:"exhausted,omitempty"`
	// Recent runs, newest first.
	History []Run `json:"history,omitempty"`
}

// Run is a finished rotation run.
type Run struct {
	Token     string    `json:"token"`
	Mode      Mode      `json:"mode"`
	Function  string    `json:"function"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	Outcome   Outcome   `json:"outcome"`
	Attempts  int       `json:"attempts"`
	Error     string    `json:"error,omitempty"`
}

// Outcome is how a run ended.
type Outcome string

// The outcomes.
const (
	OutcomeSucceeded Outcome = "succeeded"
	OutcomeFailed    Outcome = "failed"
	OutcomeAbandoned Outcome = "abandoned"
	OutcomeCancelled Outcome = "cancelled"
)

// Active reports whether a run is in progress.
func (s State) Active() bool { return s.Next != "" }

// Begin starts a run of mode with function fn for version token.
func (s State) Begin(token, fn string, mode Mode, now time.Time) State {
	s.Format = stateFormat
	s.Token, s.Function, s.Mode = token, fn, mode
	s.Next = StepCreate
	if mode == ModeTest {
		s.Next = StepTest
	}
	s.Attempt, s.RetryAt, s.LastError, s.Exhausted = 0, time.Time{}, "", false
	s.StartedAt = now
	return s
}

// End closes the run in progress with outcome and records it in History.
func (s State) End(outcome Outcome, now time.Time) State {
	if !s.Active() && s.Token == "" {
		return s
	}
	run := Run{Token: s.Token, Mode: s.Mode, Function: s.Function, StartedAt: s.StartedAt, EndedAt: now,
		Outcome: outcome, Attempts: s.Attempt + 1, Error: s.LastError}
	if outcome == OutcomeSucceeded {
		run.Error = ""
	}
	s.History = append([]Run{run}, s.History...)
	if len(s.History) > maxHistory {
		s.History = s.History[:maxHistory]
	}
	s.Format = stateFormat
	s.Token, s.Function, s.Mode, s.Next = "", "", "", ""
	s.Attempt, s.RetryAt, s.LastError, s.StartedAt, s.Exhausted = 0, time.Time{}, "", time.Time{}, false
	return s
}

// Encode returns the stored form of s.
func (s State) Encode() string {
	s.Format = stateFormat
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("rotation: encode state: %v", err)) // plain data: cannot fail
	}
	return string(b)
}

// DecodeState reads a stored State; "" is the zero State.
func DecodeState(s string) (State, error) {
	if s == "" {
		return State{Format: stateFormat}, nil
	}
	var st State
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		return State{}, fmt.Errorf("rotation: corrupt state record: %v", err)
	}
	if st.Format != stateFormat {
		return State{}, fmt.Errorf("rotation: state record format %d is not supported (want %d): refusing to guess", st.Format, stateFormat)
	}
	return st, nil
}

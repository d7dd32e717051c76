// Package bench measures Rotor as its users meet it: the load generator and
// the modes behind `rotor bench` (cmd/rotor/bench.go prints them).
//
// # Modes
//
//   - [Get] and [Put]: GetSecretValue and PutSecretValue through
//     aws-sdk-go-v2 (SigV4, HTTP keep-alive, no retries) on K secrets of B
//     bytes, C workers, for a duration. By default against a rotor server
//     started as a child process of the given executable on a temporary data
//     directory ([StartChild]), whose CPU time (/proc/<pid>/stat) is read
//     before and after the measured run; or against an existing endpoint,
//     whose CPU is then unknown. Each is followed by a ceiling pass.
//   - [RunCeiling]: the same client against a trivial HTTP server in this
//     process that answers with a body of the same size ([Ceiling]): the
//     loopback limit of the machine, which get and put are a percentage of.
//   - [Rotate]: complete rotations through an in-process server against
//     throwaway PostgreSQL and MariaDB servers (internal/dbtest).
//   - [Scale]: a store of N secrets, loaded directly through the domain
//     service, then served by a child server: store size, RSS, startup time,
//     GetSecretValue and ListSecrets latency, next to the same figures for
//     a small baseline store.
//   - [Cluster]: N child servers sharing a throwaway PostgreSQL store:
//     get and put spread over the nodes and on one, read-your-writes across
//     nodes, the leader's failover after SIGKILL and handover after SIGTERM.
//
// Every mode takes a context and its options, and returns a result with JSON
// tags that records the machine, the date and the options. When the
// context ends a mode stops, cleans up (child server, temporary
// directories, database servers) and returns the context's error.
//
// # Measuring
//
// [Run] drives an operation with a fixed number of workers for a duration
// or a count. Latencies are exact: every sample is kept and sorted, and
// percentiles are nearest-rank ([Percentile]); failures are counted by AWS
// error code ([ErrorCode]) and kept out of the latencies. The /proc parsing
// is Linux's; elsewhere CPU and memory figures are unavailable.
package bench

import (
	"encoding/json"
	"errors"
	"time"
)

// Duration is a time.Duration that reads "10s" in JSON.
type Duration time.Duration

// MarshalJSON encodes d as its String.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d Duration) String() string { return time.Duration(d).String() }

// OptionsError reports invalid options of a mode, every one at once;
// nothing was started.
type OptionsError struct{ Err error }

func (e *OptionsError) Error() string { return e.Err.Error() }
func (e *OptionsError) Unwrap() error { return e.Err }

// optionsError joins errs into an *OptionsError, nil when there are none.
func optionsError(errs []error) error {
	if err := errors.Join(errs...); err != nil {
		return &OptionsError{Err: err}
	}
	return nil
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

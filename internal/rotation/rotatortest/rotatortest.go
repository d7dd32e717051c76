// Package rotatortest is the conformance suite for rotator.Rotator drivers:
// the executable form of the contract in package rotator. A driver's whole
// test is one call against a real server:
//
//	func TestConformance(t *testing.T) {
//		rotatortest.Run(t, rotatortest.Harness{Rotator: postgres.New(…), …})
//	}
//
// The suite is engine-neutral: everything engine-specific comes in through
// the Harness (how to create a login, how to check one, how to grant a
// privilege). It proves, for each strategy the driver lists:
//
// Single user:
//   - after Set the pending password logs in and the current one does not;
//     Test accepts the pending credentials;
//   - repeating Set with the same request is harmless, including after a
//     "crash" where the target already has the pending password and neither
//     Current nor Previous logs in any more;
//   - Set logs in with Previous when Current no longer works;
//   - Master is never used to take over a user: when none of Pending,
//     Current and Previous logs in, Set fails with KindAuth even when Master
//     is given, and the target is unchanged; with Master given and a working
//     Current, Set rotates (a driver may use Master when the user may not
//     change its own password).
//
// Single user with two live passwords (Harness.DualPasswords, such as Redis
// ACL users), instead of the old password failing from Set — the
// AWSCURRENT and AWSPREVIOUS passwords both log in at all times, so that
// a client holding either never fails for a whole rotation period:
//   - after Set the pending and the current password both log in, and any
//     other no longer does; after Finish (with the pending credentials as
//     Current and the old ones as Previous) the new current and the
//     previous one do, and the next rotation's Set removes the latter;
//   - repeating Set, and repeating Finish, is harmless; a crash between Set
//     and Finish leaves both passwords working and the resumed rotation
//     completes; a Set repeated after Finish changes nothing;
//   - the password of a rotation abandoned after Set no longer logs in once
//     the next rotation's Set ran;
//   - Set logs in with Previous when Current no longer does, and keeps that
//     working password (it is what clients hold);
//   - neither Set nor Finish acts when the password they must prove does
//     not log in, Master given or not: KindAuth, target unchanged.
//
// Alternating users:
//   - the first Set creates NAME_clone, which logs in with the pending
//     password while NAME's password keeps working (zero downtime);
//   - NAME_clone has NAME's privileges, including one granted to NAME after
//     the clone was created (re-synced by the next Set), and objects either
//     user creates are usable by the other (Harness.CheckInterchangeable);
//   - the second rotation returns to NAME and NAME_clone keeps working;
//     repeating Set is harmless; many rotations in a row keep every
//     credential that is current or previous working;
//   - Set refuses, with KindInvalid and before any change, a missing Master,
//     a Pending user that is not the alternate of Current's, and a Master on
//     another server than the user; it fails with KindAuth when Current does
//     not log in (the guard against a confused deputy: whoever wrote the
//     secret must know the current password before Master acts for them) or
//     when Master's password is wrong.
//
// Both:
//   - user names that need quoting (uppercase, space, double and single
//     quotes, dash; less Harness.NameExclude) and passwords with every
//     printable ASCII character not in Harness.PasswordExclude work;
//   - a missing user fails with KindAuth or KindInvalid; a closed port fails
//     with KindUnreachable, and a server that accepts connections but never
//     answers fails with KindUnreachable once the context ends (Finish too,
//     with DualPasswords);
//   - every error a driver returns is a *rotator.Error and no error text
//     (Error(), %+v, nor any error in its Unwrap chain) contains any password
//     the suite used, right or wrong, master's included.
//
// Subtests run in parallel and every user has a unique name, so one server
// can serve the whole suite and other tests at once; the driver must be safe
// for concurrent use.
package rotatortest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

// Harness is what the suite needs from an engine.
type Harness struct {
	// Rotator is the driver under test.
	Rotator rotator.Rotator
	// Strategies are those the driver supports; the suite runs the specs of
	// each. Listing AlternatingUsers makes Master and Grant required.
	Strategies []rotator.Strategy
	// Master are admin credentials that can create users and set their
	// passwords, on the server NewLogin creates users on.
	Master rotator.Credentials
	// NewLogin creates a user named exactly name (the suite's names may need
	// quoting) with a fresh password, able to log in to a database where it
	// may create objects, and returns its working credentials. It registers
	// any clean-up with t.Cleanup.
	NewLogin func(t *testing.T, name string) rotator.Credentials
	// CanLogin logs in with c and runs a trivial query, independently of the
	// Rotator; nil means the credentials work.
	CanLogin func(ctx context.Context, c rotator.Credentials) error
	// Grant gives username a new privilege it did not have (for example on a
	// fresh table) and returns a probe that exercises that privilege with
	// the given credentials. Required for AlternatingUsers: it proves that
	// the alternate user has the base user's privileges, also those granted
	// after the alternate was created.
	Grant func(t *testing.T, username string) (probe func(ctx context.Context, c rotator.Credentials) error)
	// CheckInterchangeable, when set, proves that objects created by either
	// user of an alternating pair are usable by the other (for PostgreSQL:
	// ownership). The suite calls it after rotations with the two users'
	// working credentials.
	CheckInterchangeable func(t *testing.T, a, b rotator.Credentials)
	// PasswordExclude lists the characters the engine's default password
	// generator excludes (AWS: `:/@"'\` for PostgreSQL, `/@"'\` for
	// MySQL); the suite's passwords use every other printable ASCII
	// character, the space included. "" means none are excluded.
	PasswordExclude string
	// NameExclude lists the characters the engine does not allow in user
	// names (Redis: the space); the suite's odd names leave them out. ""
	// means none.
	NameExclude string
	// DualPasswords declares that the driver's single-user rotation keeps
	// two live passwords: Set replaces every password but the current one
	// with the pending one, and the Rotator is a rotator.Finisher whose
	// Finish, called once AWSCURRENT moved to the pending version, removes
	// every password but the new current and the previous one. The suite then holds
	// SingleUser to those semantics (see the package comment) instead of
	// "the old password stops working at Set".
	DualPasswords bool
	// Timeout bounds each call to the Rotator and to CanLogin; 0 means 30s.
	Timeout time.Duration
}

// Run runs the conformance suite.
func Run(t *testing.T, h Harness) {
	t.Helper()
	s := newSuite(t, h)
	t.Run("Test", s.testTest)
	t.Run("Unreachable", s.testUnreachable)
	for _, st := range h.Strategies {
		t.Run(st.String(), func(t *testing.T) {
			switch st {
			case rotator.SingleUser:
				s.testSingleUser(t)
			case rotator.AlternatingUsers:
				s.testAlternating(t)
			default:
				t.Fatalf("harness lists unknown strategy %d", int(st))
			}
			t.Run("odd names and passwords", func(t *testing.T) { s.testOdd(t, st) })
			t.Run("a missing user fails with KindAuth or KindInvalid", func(t *testing.T) { s.testMissingUser(t, st) })
		})
	}
}

type suite struct {
	h     Harness
	token string // unique per Run, so several runs can share a server
	seq   atomic.Int64

	mu        sync.Mutex
	passwords []string // every password the suite used: no error may contain one
}

func newSuite(t *testing.T, h Harness) *suite {
	t.Helper()
	switch {
	case h.Rotator == nil:
		t.Fatal("rotatortest: Harness.Rotator is nil")
	case len(h.Strategies) == 0:
		t.Fatal("rotatortest: Harness.Strategies is empty")
	case h.NewLogin == nil || h.CanLogin == nil:
		t.Fatal("rotatortest: Harness.NewLogin and Harness.CanLogin are required")
	}
	if slices.Contains(h.Strategies, rotator.AlternatingUsers) {
		if h.Master.Username == "" || h.Master.Password == "" {
			t.Fatal("rotatortest: AlternatingUsers needs Harness.Master")
		}
		if h.Grant == nil {
			t.Fatal("rotatortest: AlternatingUsers needs Harness.Grant")
		}
	}
	if h.DualPasswords {
		if _, ok := h.Rotator.(rotator.Finisher); !ok {
			t.Fatal("rotatortest: Harness.DualPasswords needs a Rotator that implements rotator.Finisher")
		}
		if !slices.Contains(h.Strategies, rotator.SingleUser) {
			t.Fatal("rotatortest: Harness.DualPasswords describes SingleUser, which Harness.Strategies does not list")
		}
	}
	if h.Timeout == 0 {
		h.Timeout = 30 * time.Second
	}
	s := &suite{h: h, token: randomString(4, "abcdefghijklmnopqrstuvwxyz0123456789")}
	s.remember(h.Master.Password)
	return s
}

// name returns a user name unique on the server: prefix, the run's token
// and a sequence number. The suite's names stay under 26 bytes so that
// NAME_clone fits MySQL's 32.
func (s *suite) name(prefix string) string {
	return fmt.Sprintf("%s%s%d", prefix, s.token, s.seq.Add(1))
}

// login creates a user through the harness and remembers its password.
func (s *suite) login(t *testing.T, prefix string) rotator.Credentials {
	t.Helper()
	c := s.h.NewLogin(t, s.name(prefix))
	s.remember(c.Password)
	return c
}

func (s *suite) remember(pw string) {
	if pw == "" {
		return
	}
	s.mu.Lock()
	s.passwords = append(s.passwords, pw)
	s.mu.Unlock()
}

// alphabet is every printable ASCII character the engine's generator
// allows.
func (s *suite) alphabet() string {
	var b strings.Builder
	for c := byte(' '); c <= '~'; c++ {
		if !strings.ContainsRune(s.h.PasswordExclude, rune(c)) {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// password returns a fresh 32-character password drawn from the engine's
// whole alphabet, starting and ending with a letter so that no layer can
// trim it.
func (s *suite) password() string {
	pw := randomString(1, letters) + randomString(30, s.alphabet()) + randomString(1, letters)
	s.remember(pw)
	return pw
}

// oddPassword contains every character of the alphabet.
func (s *suite) oddPassword() string {
	pw := randomString(4, letters) + s.alphabet() + randomString(4, letters)
	s.remember(pw)
	return pw
}

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err)
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}

func (s *suite) ctx(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), s.h.Timeout)
}

// set calls Set and checks any error it returns for leaks.
func (s *suite) set(t *testing.T, req rotator.SetRequest) error {
	t.Helper()
	ctx, cancel := s.ctx(t)
	defer cancel()
	err := s.h.Rotator.Set(ctx, req)
	s.checkError(t, err)
	return err
}

// finish calls Finish (DualPasswords) and checks any error it returns for
// leaks.
func (s *suite) finish(t *testing.T, req rotator.FinishRequest) error {
	t.Helper()
	ctx, cancel := s.ctx(t)
	defer cancel()
	err := s.h.Rotator.(rotator.Finisher).Finish(ctx, req)
	s.checkError(t, err)
	return err
}

// test calls Test and checks any error it returns for leaks.
func (s *suite) test(t *testing.T, c rotator.Credentials) error {
	t.Helper()
	ctx, cancel := s.ctx(t)
	defer cancel()
	err := s.h.Rotator.Test(ctx, rotator.TestRequest{Credentials: c})
	s.checkError(t, err)
	return err
}

// checkError fails t unless err is nil or a *rotator.Error whose texts
// contain none of the suite's passwords.
func (s *suite) checkError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	texts := []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%s", err)}
	var re *rotator.Error
	if errors.As(err, &re) {
		texts = append(texts, re.Msg)
	}
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		texts = append(texts, e.Error(), fmt.Sprintf("%+v", e))
	}
	s.mu.Lock()
	pws := slices.Clone(s.passwords)
	s.mu.Unlock()
	leaked := false
	for _, pw := range pws {
		for _, txt := range texts {
			if strings.Contains(txt, pw) {
				leaked = true
			}
		}
	}
	if leaked {
		// Do not print the error: it holds a password.
		t.Errorf("an error of kind %v contains a password", rotator.KindOf(err))
		return
	}
	if re == nil {
		t.Errorf("error is a %T, not a *rotator.Error: %v", err, err)
	}
}

// wantKind fails t unless err has one of kinds.
func wantKind(t *testing.T, err error, kinds ...rotator.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want kind %v", kinds)
	}
	if k := rotator.KindOf(err); !slices.Contains(kinds, k) {
		t.Fatalf("err = %v (kind %v), want kind %v", err, k, kinds)
	}
}

// mustLogin fails t unless c logs in.
func (s *suite) mustLogin(t *testing.T, c rotator.Credentials, what string) {
	t.Helper()
	ctx, cancel := s.ctx(t)
	defer cancel()
	if err := s.h.CanLogin(ctx, c); err != nil {
		t.Fatalf("%s (%s) does not log in: %v", what, c.Username, redact(err.Error(), c.Password))
	}
}

// mustNotLogin fails t if c logs in.
func (s *suite) mustNotLogin(t *testing.T, c rotator.Credentials, what string) {
	t.Helper()
	ctx, cancel := s.ctx(t)
	defer cancel()
	if err := s.h.CanLogin(ctx, c); err == nil {
		t.Fatalf("%s (%s) still logs in", what, c.Username)
	}
}

func redact(s, pw string) string {
	if pw == "" {
		return s
	}
	return strings.ReplaceAll(s, pw, "[REDACTED]")
}

func with(c rotator.Credentials, username, password string) rotator.Credentials {
	if username != "" {
		c.Username = username
	}
	c.Password = password
	return c
}

func ptr[T any](v T) *T { return &v }

// master is the harness's Master, or nil when it has none.
func (s *suite) master() *rotator.Credentials {
	if s.h.Master.Username == "" {
		return nil
	}
	return ptr(s.h.Master)
}

// alternate is the other user of an alternating pair.
func alternate(t *testing.T, name string) string {
	t.Helper()
	alt, err := rotator.AlternateUser(name, 255)
	if err != nil {
		t.Fatal(err)
	}
	return alt
}

func (s *suite) testTest(t *testing.T) {
	t.Run("accepts working credentials", func(t *testing.T) {
		t.Parallel()
		c := s.login(t, "tt")
		if err := s.test(t, c); err != nil {
			t.Fatalf("Test: %v", err)
		}
	})
	t.Run("a wrong password fails with KindAuth", func(t *testing.T) {
		t.Parallel()
		c := s.login(t, "tw")
		wantKind(t, s.test(t, with(c, "", s.password())), rotator.KindAuth)
	})
	t.Run("an unknown user fails with KindAuth", func(t *testing.T) {
		t.Parallel()
		c := s.login(t, "tu")
		wantKind(t, s.test(t, with(c, s.name("nobody"), s.password())), rotator.KindAuth)
	})
}

func (s *suite) testUnreachable(t *testing.T) {
	// A port nothing listens on: bind one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()

	// A server that accepts connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		silent.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	silentPort := silent.Addr().(*net.TCPAddr).Port

	for _, tc := range []struct {
		name  string
		port  int
		bound time.Duration // the context's deadline
	}{
		{"a closed port fails with KindUnreachable", closedPort, s.h.Timeout},
		{"a server that never answers fails with KindUnreachable when the context ends", silentPort, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := rotator.Credentials{
				Engine: s.h.Master.Engine, Host: "127.0.0.1", Port: tc.port,
				Username: s.name("un"), Password: s.password(), DBName: s.h.Master.DBName, SSLMode: s.h.Master.SSLMode,
			}
			master := target
			master.Username, master.Password = s.h.Master.Username, s.h.Master.Password
			calls := []struct {
				name string
				call func(context.Context) error
			}{
				{"Test", func(ctx context.Context) error {
					return s.h.Rotator.Test(ctx, rotator.TestRequest{Credentials: target})
				}},
			}
			for _, st := range s.h.Strategies {
				pending := with(target, "", s.password())
				if st == rotator.AlternatingUsers {
					pending.Username = alternate(t, target.Username)
				}
				req := rotator.SetRequest{Strategy: st, Pending: pending, Current: target, Master: &master}
				calls = append(calls, struct {
					name string
					call func(context.Context) error
				}{"Set " + st.String(), func(ctx context.Context) error { return s.h.Rotator.Set(ctx, req) }})
			}
			if s.h.DualPasswords {
				req := rotator.FinishRequest{Strategy: rotator.SingleUser, Current: target, Master: &master}
				calls = append(calls, struct {
					name string
					call func(context.Context) error
				}{"Finish", func(ctx context.Context) error { return s.h.Rotator.(rotator.Finisher).Finish(ctx, req) }})
			}
			for _, c := range calls {
				ctx, cancel := context.WithTimeout(t.Context(), tc.bound)
				start := time.Now()
				err := c.call(ctx)
				elapsed := time.Since(start)
				cancel()
				s.checkError(t, err)
				if err == nil {
					t.Fatalf("%s: err = nil, want KindUnreachable", c.name)
				}
				if k := rotator.KindOf(err); k != rotator.KindUnreachable {
					t.Errorf("%s: err = %v (kind %v), want KindUnreachable", c.name, err, k)
				}
				// The context bounds the call; allow a little for clean-up.
				if limit := tc.bound + 2*time.Second; elapsed > limit {
					t.Errorf("%s took %v, want at most %v", c.name, elapsed, limit)
				}
			}
		})
	}
}

// rotateSingle runs one single-user Set and checks its promises.
func (s *suite) rotateSingle(t *testing.T, cur rotator.Credentials, prev, master *rotator.Credentials) rotator.Credentials {
	t.Helper()
	pending := with(cur, "", s.password())
	req := rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Previous: prev, Master: master}
	if err := s.set(t, req); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := s.test(t, pending); err != nil {
		t.Fatalf("Test(pending): %v", err)
	}
	s.mustLogin(t, pending, "the pending password")
	s.mustNotLogin(t, cur, "the old password")
	return pending
}

func (s *suite) testSingleUser(t *testing.T) {
	if s.h.DualPasswords {
		s.testDualPasswords(t)
	} else {
		s.testOldPasswordStops(t)
	}
	t.Run("a pending user other than the current user fails with KindInvalid", func(t *testing.T) {
		t.Parallel()
		cur := s.login(t, "sv")
		other := s.login(t, "sw")
		pending := with(other, "", s.password())
		wantKind(t, s.set(t, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur}), rotator.KindInvalid)
		s.mustLogin(t, other, "the other user")
	})
}

// testOldPasswordStops holds single-user rotation to "the old password
// stops working at Set".
func (s *suite) testOldPasswordStops(t *testing.T) {
	t.Run("the pending password logs in and the old one no longer does", func(t *testing.T) {
		t.Parallel()
		cur := s.login(t, "su")
		pending := s.rotateSingle(t, cur, nil, nil)
		wantKind(t, s.test(t, cur), rotator.KindAuth)
		// And once more, with the first password as Previous.
		s.rotateSingle(t, pending, &cur, nil)
	})
	t.Run("repeating Set is harmless", func(t *testing.T) {
		t.Parallel()
		cur := s.login(t, "sr")
		pending := with(cur, "", s.password())
		req := rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur}
		for i := range 3 {
			if err := s.set(t, req); err != nil {
				t.Fatalf("Set #%d: %v", i+1, err)
			}
		}
		s.mustLogin(t, pending, "the pending password")
		s.mustNotLogin(t, cur, "the old password")
	})
	t.Run("after a crash the target already has the pending password and nothing else logs in", func(t *testing.T) {
		t.Parallel()
		cur := s.login(t, "sc")
		pending := with(cur, "", s.password())
		if err := s.set(t, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur}); err != nil {
			t.Fatalf("Set: %v", err)
		}
		// The engine resumes with the same request; Current's password
		// (and a stale Previous) no longer log in, only Pending does.
		prev := with(cur, "", s.password())
		if err := s.set(t, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Previous: &prev}); err != nil {
			t.Fatalf("Set after the crash: %v", err)
		}
		if err := s.test(t, pending); err != nil {
			t.Fatalf("Test(pending): %v", err)
		}
	})
	t.Run("Set logs in with Previous when Current no longer does", func(t *testing.T) {
		t.Parallel()
		real := s.login(t, "sp")
		cur := with(real, "", s.password()) // a password the target never had
		pending := with(real, "", s.password())
		if err := s.set(t, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Previous: &real}); err != nil {
			t.Fatalf("Set: %v", err)
		}
		s.mustLogin(t, pending, "the pending password")
		s.mustNotLogin(t, real, "the previous password")
	})
	t.Run("no working password fails with KindAuth and changes nothing", func(t *testing.T) {
		t.Parallel()
		real := s.login(t, "sn")
		cur := with(real, "", s.password())
		prev := with(real, "", s.password())
		pending := with(real, "", s.password())
		wantKind(t, s.set(t, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Previous: &prev}), rotator.KindAuth)
		s.mustLogin(t, real, "the untouched password")
		s.mustNotLogin(t, pending, "the pending password")
	})
	if s.h.Master.Username != "" {
		t.Run("with Master given, Set rotates", func(t *testing.T) {
			t.Parallel()
			cur := s.login(t, "sm")
			s.rotateSingle(t, cur, nil, ptr(s.h.Master))
		})
		t.Run("Master never takes over a user whose passwords do not log in", func(t *testing.T) {
			t.Parallel()
			real := s.login(t, "sx")
			cur := with(real, "", s.password())
			pending := with(real, "", s.password())
			wantKind(t, s.set(t, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Master: ptr(s.h.Master)}), rotator.KindAuth)
			s.mustLogin(t, real, "the untouched password")
			s.mustNotLogin(t, pending, "the pending password")
		})
	}
	t.Run("several rotations in a row", func(t *testing.T) {
		t.Parallel()
		cur := s.login(t, "ss")
		var prev *rotator.Credentials
		for range 4 {
			next := s.rotateSingle(t, cur, prev, nil)
			prev, cur = ptr(cur), next
		}
	})
}

// rotateDual runs one single-user rotation of a DualPasswords driver — Set,
// Test, Finish, as the steps call them — and checks its promises after
// each.
func (s *suite) rotateDual(t *testing.T, cur rotator.Credentials, prev, master *rotator.Credentials) rotator.Credentials {
	t.Helper()
	pending := with(cur, "", s.password())
	req := rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Previous: prev, Master: master}
	if err := s.set(t, req); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := s.test(t, pending); err != nil {
		t.Fatalf("Test(pending): %v", err)
	}
	s.mustLogin(t, pending, "the pending password")
	s.mustLogin(t, cur, "the current password between Set and Finish")
	if err := s.test(t, cur); err != nil {
		t.Fatalf("Test(current) between Set and Finish: %v", err)
	}
	if prev != nil && prev.Password != cur.Password {
		s.mustNotLogin(t, *prev, "the password before the current one, after Set")
	}
	fin := rotator.FinishRequest{Strategy: rotator.SingleUser, Current: pending, Previous: &cur, Master: master}
	if err := s.finish(t, fin); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	s.mustLogin(t, pending, "the new current password")
	s.mustLogin(t, cur, "the previous password after Finish (until the next rotation)")
	return pending
}

// testDualPasswords holds single-user rotation to two live passwords
// between Set and Finish (Harness.DualPasswords).
func (s *suite) testDualPasswords(t *testing.T) {
	t.Run("the current and previous passwords log in; the next Set removes the older", func(t *testing.T) {
		t.Parallel()
		cur := s.login(t, "su")
		pending := s.rotateDual(t, cur, nil, nil)
		if err := s.test(t, cur); err != nil {
			t.Fatalf("Test(previous) after Finish: %v", err)
		}
		// And once more, with the first password as Previous: its Set
		// removes it.
		s.rotateDual(t, pending, &cur, nil)
		wantKind(t, s.test(t, cur), rotator.KindAuth)
	})
	t.Run("repeating Set and Finish is harmless", func(t *testing.T) {
		t.Parallel()
		cur := s.login(t, "sr")
		pending := with(cur, "", s.password())
		req := rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur}
		for i := range 3 {
			if err := s.set(t, req); err != nil {
				t.Fatalf("Set #%d: %v", i+1, err)
			}
			s.mustLogin(t, pending, "the pending password")
			s.mustLogin(t, cur, "the current password")
		}
		fin := rotator.FinishRequest{Strategy: rotator.SingleUser, Current: pending, Previous: &cur}
		for i := range 3 {
			if err := s.finish(t, fin); err != nil {
				t.Fatalf("Finish #%d: %v", i+1, err)
			}
			s.mustLogin(t, pending, "the new current password")
			s.mustLogin(t, cur, "the previous password")
		}
	})
	t.Run("after a crash between Set and Finish both passwords log in and the resumed rotation completes", func(t *testing.T) {
		t.Parallel()
		cur := s.login(t, "sc")
		pending := with(cur, "", s.password())
		if err := s.set(t, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur}); err != nil {
			t.Fatalf("Set: %v", err)
		}
		// The engine resumes setSecret with the same request (and a stale
		// Previous).
		prev := with(cur, "", s.password())
		if err := s.set(t, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Previous: &prev}); err != nil {
			t.Fatalf("Set after the crash: %v", err)
		}
		s.mustLogin(t, pending, "the pending password")
		s.mustLogin(t, cur, "the current password")
		if err := s.finish(t, rotator.FinishRequest{Strategy: rotator.SingleUser, Current: pending, Previous: &cur}); err != nil {
			t.Fatalf("Finish: %v", err)
		}
		s.mustLogin(t, pending, "the new current password")
		s.mustLogin(t, cur, "the previous password")
	})
	t.Run("a Set repeated after Finish changes nothing", func(t *testing.T) {
		t.Parallel()
		cur := s.login(t, "sa")
		pending := s.rotateDual(t, cur, nil, nil)
		// Pending and cur log in now; a stale Previous never did.
		prev := with(cur, "", s.password())
		if err := s.set(t, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Previous: &prev}); err != nil {
			t.Fatalf("Set after Finish: %v", err)
		}
		if err := s.test(t, pending); err != nil {
			t.Fatalf("Test(pending): %v", err)
		}
		s.mustLogin(t, cur, "the previous password")
		s.mustNotLogin(t, prev, "a stale previous password")
	})
	t.Run("the password of a rotation abandoned after Set no longer logs in once the next rotation's Set ran", func(t *testing.T) {
		t.Parallel()
		cur := s.login(t, "sb")
		abandoned := with(cur, "", s.password())
		if err := s.set(t, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: abandoned, Current: cur}); err != nil {
			t.Fatalf("Set: %v", err)
		}
		s.mustLogin(t, abandoned, "the pending password of the abandoned rotation")
		// AWSCURRENT never moved: the next rotation starts from cur again.
		s.rotateDual(t, cur, nil, nil)
		s.mustNotLogin(t, abandoned, "the password of the abandoned rotation")
	})
	t.Run("Set logs in with Previous when Current no longer does and keeps it", func(t *testing.T) {
		t.Parallel()
		real := s.login(t, "sp")
		cur := with(real, "", s.password()) // a password the target never had
		pending := with(real, "", s.password())
		if err := s.set(t, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Previous: &real}); err != nil {
			t.Fatalf("Set: %v", err)
		}
		s.mustLogin(t, pending, "the pending password")
		s.mustLogin(t, real, "the previous password between Set and Finish")
		s.mustNotLogin(t, cur, "a current password the target never had")
		if err := s.finish(t, rotator.FinishRequest{Strategy: rotator.SingleUser, Current: pending, Previous: &real}); err != nil {
			t.Fatalf("Finish: %v", err)
		}
		s.mustLogin(t, pending, "the new current password")
		s.mustLogin(t, real, "the previous password after Finish")
		s.mustNotLogin(t, cur, "a current password the target never had")
	})
	t.Run("no working password fails with KindAuth and changes nothing", func(t *testing.T) {
		t.Parallel()
		real := s.login(t, "sn")
		cur := with(real, "", s.password())
		prev := with(real, "", s.password())
		pending := with(real, "", s.password())
		wantKind(t, s.set(t, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Previous: &prev}), rotator.KindAuth)
		s.mustLogin(t, real, "the untouched password")
		s.mustNotLogin(t, pending, "the pending password")
		// Finish never removes the working password for one that does not
		// log in.
		wantKind(t, s.finish(t, rotator.FinishRequest{Strategy: rotator.SingleUser, Current: pending, Previous: &real}), rotator.KindAuth)
		s.mustLogin(t, real, "the untouched password after Finish")
		s.mustNotLogin(t, pending, "the pending password after Finish")
	})
	if s.h.Master.Username != "" {
		t.Run("with Master given, Set and Finish rotate", func(t *testing.T) {
			t.Parallel()
			cur := s.login(t, "sm")
			next := s.rotateDual(t, cur, nil, ptr(s.h.Master))
			s.rotateDual(t, next, &cur, ptr(s.h.Master))
		})
		t.Run("Master never takes over a user whose passwords do not log in", func(t *testing.T) {
			t.Parallel()
			real := s.login(t, "sx")
			cur := with(real, "", s.password())
			pending := with(real, "", s.password())
			wantKind(t, s.set(t, rotator.SetRequest{Strategy: rotator.SingleUser, Pending: pending, Current: cur, Master: ptr(s.h.Master)}), rotator.KindAuth)
			wantKind(t, s.finish(t, rotator.FinishRequest{Strategy: rotator.SingleUser, Current: pending, Previous: &cur, Master: ptr(s.h.Master)}), rotator.KindAuth)
			s.mustLogin(t, real, "the untouched password")
			s.mustNotLogin(t, pending, "the pending password")
		})
	}
	t.Run("several rotations in a row", func(t *testing.T) {
		t.Parallel()
		cur := s.login(t, "ss")
		var prev *rotator.Credentials
		for range 4 {
			next := s.rotateDual(t, cur, prev, nil)
			prev, cur = ptr(cur), next
		}
	})
}

// pair is the state of an alternating rotation: the credentials clients
// hold now and those they held before.
type pair struct {
	cur  rotator.Credentials
	prev *rotator.Credentials
}

// rotateAlternating runs one alternating Set and checks its promises: the
// pending user logs in and Test accepts it, and the current user (what
// clients hold during the rotation) still logs in.
func (s *suite) rotateAlternating(t *testing.T, p pair, master rotator.Credentials) pair {
	t.Helper()
	pending := with(p.cur, alternate(t, p.cur.Username), s.password())
	req := rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: p.cur, Previous: p.prev, Master: &master}
	if err := s.set(t, req); err != nil {
		t.Fatalf("Set %s -> %s: %v", p.cur.Username, pending.Username, err)
	}
	if err := s.test(t, pending); err != nil {
		t.Fatalf("Test(pending %s): %v", pending.Username, err)
	}
	s.mustLogin(t, pending, "the pending user")
	s.mustLogin(t, p.cur, "the current user")
	return pair{cur: pending, prev: ptr(p.cur)}
}

func (s *suite) testAlternating(t *testing.T) {
	master := s.h.Master
	t.Run("the first rotation creates NAME_clone and NAME keeps working", func(t *testing.T) {
		t.Parallel()
		base := s.login(t, "af")
		clone := with(base, alternate(t, base.Username), s.password())
		s.mustNotLogin(t, clone, "NAME_clone before the first rotation")
		p := s.rotateAlternating(t, pair{cur: base}, master)
		if p.cur.Username != base.Username+rotator.CloneSuffix {
			t.Fatalf("pending user = %q, want %q", p.cur.Username, base.Username+rotator.CloneSuffix)
		}
	})
	t.Run("NAME_clone has the privileges of NAME, also those granted later", func(t *testing.T) {
		t.Parallel()
		base := s.login(t, "ag")
		before := s.h.Grant(t, base.Username)
		p := s.rotateAlternating(t, pair{cur: base}, master)
		clone := p.cur
		ctx, cancel := s.ctx(t)
		defer cancel()
		if err := before(ctx, clone); err != nil {
			t.Fatalf("NAME_clone lacks a privilege NAME had before the rotation: %v", err)
		}
		// Granted after the clone exists: the next rotation re-syncs.
		later := s.h.Grant(t, base.Username)
		p = s.rotateAlternating(t, p, master)
		if err := later(ctx, clone); err != nil {
			t.Fatalf("NAME_clone lacks a privilege granted to NAME after it was created: %v", err)
		}
		if err := before(ctx, p.cur); err != nil {
			t.Fatalf("NAME lost a privilege: %v", err)
		}
		if s.h.CheckInterchangeable != nil {
			s.h.CheckInterchangeable(t, p.cur, *p.prev)
		}
	})
	t.Run("repeating Set is harmless", func(t *testing.T) {
		t.Parallel()
		base := s.login(t, "ar")
		pending := with(base, alternate(t, base.Username), s.password())
		req := rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: base, Master: &master}
		for i := range 3 {
			if err := s.set(t, req); err != nil {
				t.Fatalf("Set #%d: %v", i+1, err)
			}
			s.mustLogin(t, pending, "the pending user")
			s.mustLogin(t, base, "the current user")
		}
		// The repeats did not disturb the next rotation.
		s.rotateAlternating(t, pair{cur: pending, prev: &base}, master)
		s.mustLogin(t, pending, "NAME_clone after rotating back")
	})
	t.Run("the second rotation returns to NAME and NAME_clone keeps working", func(t *testing.T) {
		t.Parallel()
		base := s.login(t, "as")
		p := s.rotateAlternating(t, pair{cur: base}, master)
		clone := p.cur
		p = s.rotateAlternating(t, p, master)
		if p.cur.Username != base.Username {
			t.Fatalf("second rotation went to %q, want %q", p.cur.Username, base.Username)
		}
		s.mustLogin(t, clone, "NAME_clone with its password")
		s.mustNotLogin(t, base, "NAME with its first password")
		if s.h.CheckInterchangeable != nil {
			s.h.CheckInterchangeable(t, p.cur, clone)
		}
	})
	t.Run("many rotations in a row keep the current and previous credentials working", func(t *testing.T) {
		t.Parallel()
		p := pair{cur: s.login(t, "am")}
		for range 6 {
			p = s.rotateAlternating(t, p, master)
			s.mustLogin(t, *p.prev, "the previous credentials")
		}
		if s.h.CheckInterchangeable != nil {
			s.h.CheckInterchangeable(t, p.cur, *p.prev)
		}
	})
	t.Run("without Master Set fails with KindInvalid", func(t *testing.T) {
		t.Parallel()
		base := s.login(t, "an")
		pending := with(base, alternate(t, base.Username), s.password())
		wantKind(t, s.set(t, rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: base}), rotator.KindInvalid)
		s.mustNotLogin(t, pending, "the pending user")
	})
	t.Run("a wrong master password fails with KindAuth", func(t *testing.T) {
		t.Parallel()
		base := s.login(t, "aw")
		pending := with(base, alternate(t, base.Username), s.password())
		bad := with(master, "", s.password())
		wantKind(t, s.set(t, rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: base, Master: &bad}), rotator.KindAuth)
		s.mustNotLogin(t, pending, "the pending user")
		// Nothing was left half-done: the right master completes it.
		s.rotateAlternating(t, pair{cur: base}, master)
	})
	t.Run("a pending user that is not the alternate of the current user fails with KindInvalid", func(t *testing.T) {
		t.Parallel()
		base := s.login(t, "ap")
		other := s.login(t, "aq")
		pending := with(other, "", s.password())
		wantKind(t, s.set(t, rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: base, Master: &master}), rotator.KindInvalid)
		s.mustLogin(t, other, "the other user")
		s.mustNotLogin(t, pending, "the pending password")
	})
	t.Run("a master on another server fails with KindInvalid", func(t *testing.T) {
		t.Parallel()
		base := s.login(t, "ao")
		pending := with(base, alternate(t, base.Username), s.password())
		elsewhere := master
		elsewhere.Port++
		wantKind(t, s.set(t, rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: base, Master: &elsewhere}), rotator.KindInvalid)
		s.mustNotLogin(t, pending, "the pending user")
	})
	t.Run("current credentials that do not log in fail with KindAuth", func(t *testing.T) {
		t.Parallel()
		// The guard against a confused deputy: Master only acts for a
		// secret whose writer knows the current password.
		base := s.login(t, "ac")
		cur := with(base, "", s.password())
		pending := with(base, alternate(t, base.Username), s.password())
		wantKind(t, s.set(t, rotator.SetRequest{Strategy: rotator.AlternatingUsers, Pending: pending, Current: cur, Master: &master}), rotator.KindAuth)
		s.mustNotLogin(t, pending, "the pending user")
		s.mustLogin(t, base, "the untouched user")
	})
}

// oddName is a user name with uppercase letters, a space, double and single
// quotes and a dash, less the characters of Harness.NameExclude.
func (s *suite) oddName() string {
	prefix := strings.Map(func(r rune) rune {
		if strings.ContainsRune(s.h.NameExclude, r) {
			return -1
		}
		return r
	}, `Odd "Q'u-`)
	return s.name(prefix)
}

func (s *suite) testOdd(t *testing.T, st rotator.Strategy) {
	t.Parallel()
	cur := s.h.NewLogin(t, s.oddName())
	s.remember(cur.Password)
	// Rotate onto passwords with every allowed character, twice, so that
	// the odd password is also the one logged in with.
	for range 2 {
		pending := with(cur, "", s.oddPassword())
		if st == rotator.AlternatingUsers {
			pending.Username = alternate(t, cur.Username)
		}
		req := rotator.SetRequest{Strategy: st, Pending: pending, Current: cur, Master: s.master()}
		if err := s.set(t, req); err != nil {
			t.Fatalf("Set %q: %v", pending.Username, err)
		}
		if err := s.test(t, pending); err != nil {
			t.Fatalf("Test %q: %v", pending.Username, err)
		}
		s.mustLogin(t, pending, "the pending credentials")
		if st == rotator.AlternatingUsers {
			s.mustLogin(t, cur, "the current credentials")
		}
		if st == rotator.SingleUser && s.h.DualPasswords {
			s.mustLogin(t, cur, "the current credentials between Set and Finish")
			if err := s.finish(t, rotator.FinishRequest{Strategy: st, Current: pending, Previous: &cur, Master: s.master()}); err != nil {
				t.Fatalf("Finish %q: %v", pending.Username, err)
			}
			s.mustLogin(t, pending, "the new current credentials")
			s.mustLogin(t, cur, "the previous credentials after Finish")
		}
		cur = pending
	}
}

func (s *suite) testMissingUser(t *testing.T, st rotator.Strategy) {
	t.Parallel()
	real := s.login(t, "mu") // a working login on the same server and database
	cur := with(real, s.name("missing"), s.password())
	pending := with(cur, "", s.password())
	if st == rotator.AlternatingUsers {
		pending.Username = alternate(t, cur.Username)
	}
	req := rotator.SetRequest{Strategy: st, Pending: pending, Current: cur, Master: s.master()}
	wantKind(t, s.set(t, req), rotator.KindAuth, rotator.KindInvalid)
	s.mustNotLogin(t, pending, "the pending credentials of a missing user")
	if st == rotator.SingleUser && s.h.DualPasswords {
		fin := rotator.FinishRequest{Strategy: st, Current: cur, Master: s.master()}
		wantKind(t, s.finish(t, fin), rotator.KindAuth, rotator.KindInvalid)
		s.mustNotLogin(t, cur, "the credentials of a missing user after Finish")
	}
}

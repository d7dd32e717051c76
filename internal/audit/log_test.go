package audit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestAppend(t *testing.T) {
	f := &memFile{}
	clk := newClock(time.Millisecond)
	l := openLog(t, Options{File: f, Now: clk.Now})

	r := req(0)
	r.Time = time.Date(2026, 3, 1, 13, 0, 0, 0, time.FixedZone("x", 3600))
	r.Seq, r.PrevHash, r.Hash = 99, "junk", "junk"
	r.Message = strings.Repeat("m", MaxFieldLen+10)
	r.UserAgent = "ua\xff"
	first := mustAppend(t, l, r)
	if first.Seq != 1 || first.PrevHash != zeroHash || len(first.Hash) != 64 {
		t.Errorf("first record: seq %d prev %s hash %s", first.Seq, first.PrevHash, first.Hash)
	}
	if !first.Time.Equal(r.Time) || first.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want %v in UTC", first.Time, r.Time)
	}
	if len(first.Message) != MaxFieldLen || first.UserAgent != "ua\uFFFD" {
		t.Errorf("fields not bounded: %d-byte message, user agent %q", len(first.Message), first.UserAgent)
	}

	second := mustAppend(t, l, req(1)) // no time: the clock's
	if second.Seq != 2 || second.PrevHash != first.Hash {
		t.Errorf("second record: seq %d prev %s, want 2 %s", second.Seq, second.PrevHash, first.Hash)
	}
	if second.Time.IsZero() || second.Time.Before(t0) {
		t.Errorf("Time = %v, want the injected clock's", second.Time)
	}

	// What Append returned is what the file holds.
	lines := splitLines(f.bytes())
	for i, want := range []Record{first, second} {
		got := decode(t, lines[i])
		if got.Hash != want.Hash || got.Message != want.Message || got.UserAgent != want.UserAgent || !got.Time.Equal(want.Time) {
			t.Errorf("line %d = %+v\nAppend returned %+v", i+1, got, want)
		}
	}
	if f.syncCount() != 2 {
		t.Errorf("%d syncs for 2 sequential appends", f.syncCount())
	}
	if n := l.Failures(); n != 0 {
		t.Errorf("Failures = %d", n)
	}
}

func TestAppendInvalid(t *testing.T) {
	f := &memFile{}
	l := openLog(t, Options{File: f})
	cases := map[string]func(*Record){
		"no type":         func(r *Record) { r.Type = "" },
		"checkpoint type": func(r *Record) { r.Type = TypeCheckpoint },
		"unknown outcome": func(r *Record) { r.Outcome = "ok" },
		"no event name":   func(r *Record) { r.EventName = "" },
		"checkpoint":      func(r *Record) { r.Checkpoint = &Checkpoint{} },
		"year 10000":      func(r *Record) { r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			r := req(0)
			edit(&r)
			if _, err := l.Append(t.Context(), r); !errors.Is(err, ErrInvalidRecord) {
				t.Errorf("Append = %v, want ErrInvalidRecord", err)
			}
		})
	}
	if n := l.Failures(); n != uint64(len(cases)) {
		t.Errorf("Failures = %d, want %d", n, len(cases))
	}
	if len(f.bytes()) != 0 {
		t.Errorf("invalid records written: %s", f.bytes())
	}
}

// syncCounter is a real file that counts its syncs.
type syncCounter struct {
	*os.File
	syncs atomic.Int64
}

func (s *syncCounter) Sync() error {
	s.syncs.Add(1)
	return s.File.Sync()
}

func TestConcurrentAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	osf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f := &syncCounter{File: osf}
	l := openLog(t, Options{File: f, CheckpointEvery: 100})

	const writers, each = 64, 20
	var wg sync.WaitGroup
	seqs := make(chan uint64, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rec, err := l.Append(t.Context(), req(w*each+i))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- rec.Seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	syncs := f.syncs.Load()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	seen := make(map[uint64]bool)
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d returned twice", s)
		}
		seen[s] = true
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rep := verifyBytes(t, b, pubOf(testKey(1)), nil)
	const n = writers * each
	cps := n / 100
	if rep.Problem != nil || rep.Records != n+cps+1 || rep.Checkpoints != cps+1 || rep.LastSeq != uint64(n+cps+1) {
		t.Fatalf("after %d concurrent appends: %+v", n, rep)
	}
	// Verify checked that seqs run 1..LastSeq without gaps.
	t.Logf("%d appends, %d syncs", n, syncs)
	if syncs > n/4 {
		t.Errorf("%d syncs for %d concurrent appends: no group commit", syncs, n)
	}
}

// TestGroupCommit shows that appends queued during an fsync share the next
// one: 1 append, then 63 while its fsync hangs, make 2 fsyncs.
func TestGroupCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &memFile{gate: make(chan struct{})}
		l := openLog(t, Options{File: f})
		var wg sync.WaitGroup
		appendOne := func(i int) {
			if _, err := l.Append(t.Context(), req(i)); err != nil {
				t.Error(err)
			}
		}
		wg.Go(func() { appendOne(0) })
		synctest.Wait() // the first is in Sync
		for i := 1; i < 64; i++ {
			wg.Go(func() { appendOne(i) })
		}
		synctest.Wait() // 63 wait for the writer
		close(f.gate)
		wg.Wait()
		if got := f.syncCount(); got != 2 {
			t.Errorf("%d syncs for 64 appends, want 2", got)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if rep := verifyBytes(t, f.bytes(), pubOf(testKey(1)), nil); rep.Problem != nil || rep.LastSeq != 65 {
			t.Errorf("%+v", rep)
		}
	})
}

func TestFailClosed(t *testing.T) {
	boom := errors.New("boom")
	failSecond := func(n int) error {
		if n == 2 {
			return boom
		}
		return nil
	}
	cases := map[string]*memFile{
		"write fails": {failW: failSecond},
		"sync fails":  {failS: failSecond},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			l := openLog(t, Options{File: f})
			mustAppend(t, l, req(0))
			if _, err := l.Append(t.Context(), req(1)); !errors.Is(err, ErrBroken) || !errors.Is(err, boom) {
				t.Fatalf("Append on a failing file = %v, want ErrBroken and the cause", err)
			}
			for i := range 3 { // the file works again; the log does not
				if _, err := l.Append(t.Context(), req(2+i)); !errors.Is(err, ErrBroken) {
					t.Fatalf("Append after a failure = %v, want ErrBroken", err)
				}
			}
			if err := l.Checkpoint(t.Context()); !errors.Is(err, ErrBroken) {
				t.Errorf("Checkpoint = %v, want ErrBroken", err)
			}
			if n := l.Failures(); n != 4 {
				t.Errorf("Failures = %d, want 4", n)
			}
			before := len(f.bytes())
			if err := l.Close(); !errors.Is(err, ErrBroken) {
				t.Errorf("Close = %v, want ErrBroken", err)
			}
			if len(f.bytes()) != before {
				t.Error("Close wrote on a broken log")
			}
		})
	}
}

// TestFailClosedGroup shows that every caller of a failed group gets the
// error.
func TestFailClosedGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		f := &memFile{gate: make(chan struct{}), failS: func(n int) error {
			if n == 2 {
				return boom
			}
			return nil
		}}
		l := openLog(t, Options{File: f})
		errs := make(chan error, 11)
		var wg sync.WaitGroup
		wg.Go(func() { _, err := l.Append(t.Context(), req(0)); errs <- err })
		synctest.Wait()
		for i := 1; i <= 10; i++ {
			wg.Go(func() { _, err := l.Append(t.Context(), req(i)); errs <- err })
		}
		synctest.Wait()
		close(f.gate)
		wg.Wait()
		close(errs)
		var ok, broken int
		for err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, boom):
				broken++
			default:
				t.Errorf("Append = %v", err)
			}
		}
		if ok != 1 || broken != 10 {
			t.Errorf("%d succeeded, %d failed; want 1, 10", ok, broken)
		}
		l.Close()
	})
}

func TestAppendContext(t *testing.T) {
	t.Run("canceled before", func(t *testing.T) {
		f := &memFile{}
		l := openLog(t, Options{File: f})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := l.Append(ctx, req(0)); !errors.Is(err, context.Canceled) {
			t.Errorf("Append = %v", err)
		}
		if len(f.bytes()) != 0 || l.Failures() != 0 {
			t.Error("a canceled append was written or counted")
		}
	})
	t.Run("canceled while queued", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &memFile{gate: make(chan struct{})}
			l := openLog(t, Options{File: f})
			go l.Append(t.Context(), req(0))
			synctest.Wait() // in Sync
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error)
			go func() { _, err := l.Append(ctx, req(1)); done <- err }()
			synctest.Wait()
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Append = %v", err)
			}
			close(f.gate)
			l.Close()
			if rep := verifyBytes(t, f.bytes(), pubOf(testKey(1)), nil); rep.Records != 2 { // record 1 and a checkpoint
				t.Errorf("%d records; the canceled one should not have been handed over", rep.Records)
			}
		})
	})
	t.Run("canceled while written", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &memFile{gate: make(chan struct{})}
			l := openLog(t, Options{File: f})
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error)
			go func() { _, err := l.Append(ctx, req(0)); done <- err }()
			synctest.Wait() // in Sync
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Append = %v", err)
			}
			close(f.gate)
			l.Close()
			// As documented: the record was handed over and is written.
			if rep := verifyBytes(t, f.bytes(), pubOf(testKey(1)), nil); rep.Records != 2 {
				t.Errorf("%d records, want the canceled one and a checkpoint", rep.Records)
			}
		})
	})
}

func TestCheckpointEvery(t *testing.T) {
	f := &memFile{}
	l := openLog(t, Options{File: f, CheckpointEvery: 2})
	var recs []Record
	for i := range 5 {
		recs = append(recs, mustAppend(t, l, req(i)))
	}
	// 1 2 cp3 4 5 cp6 7
	for i, want := range []uint64{1, 2, 4, 5, 7} {
		if recs[i].Seq != want {
			t.Errorf("record %d has seq %d, want %d", i, recs[i].Seq, want)
		}
	}
	lines := splitLines(f.bytes())
	for _, i := range []int{2, 5} {
		r := decode(t, lines[i])
		if r.Type != TypeCheckpoint || r.EventName != EventCheckpoint || r.Checkpoint.Seq != uint64(i) || r.Checkpoint.Hash != r.PrevHash {
			t.Errorf("line %d = %+v, want the checkpoint of seq %d", i+1, r, i)
		}
	}
}

func TestCheckpoint(t *testing.T) {
	f := &memFile{}
	l := openLog(t, Options{File: f})
	if err := l.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(f.bytes()) != 0 {
		t.Fatalf("checkpoint of an empty log written: %s", f.bytes())
	}
	mustAppend(t, l, req(0))
	for range 2 { // the second has nothing new to cover
		if err := l.Checkpoint(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	rep := verifyBytes(t, f.bytes(), pubOf(testKey(1)), nil)
	if rep.Problem != nil || rep.Records != 2 || rep.Checkpoints != 1 {
		t.Errorf("%+v", rep)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := verifyBytes(t, f.bytes(), pubOf(testKey(1)), nil); got.Records != 2 {
		t.Errorf("Close wrote a checkpoint with nothing to cover: %d records", got.Records)
	}
	if _, err := l.Append(t.Context(), req(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if err := l.Checkpoint(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Checkpoint after Close = %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestCheckpointInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &memFile{}
		l := openLog(t, Options{File: f, Now: time.Now, CheckpointInterval: time.Minute})
		checkpoints := func() int {
			return verifyBytes(t, f.bytes(), pubOf(testKey(1)), nil).Checkpoints
		}
		// Ticks come every minute after Open; the record comes between two.
		time.Sleep(5*time.Minute + 30*time.Second)
		synctest.Wait()
		if n := checkpoints(); n != 0 {
			t.Fatalf("%d checkpoints without records", n)
		}
		mustAppend(t, l, req(0))
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if n := checkpoints(); n != 0 {
			t.Fatalf("checkpoint before the interval")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := checkpoints(); n != 1 {
			t.Fatalf("%d checkpoints a minute after Open with a record, want 1", n)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if n := checkpoints(); n != 1 {
			t.Fatalf("%d checkpoints; none was due", n)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAnchor(t *testing.T) {
	f := &memFile{}
	var (
		anchored []Checkpoint
		fail     error
	)
	l := openLog(t, Options{File: f, CheckpointEvery: 2, Anchor: func(cp Checkpoint) error {
		if fail != nil {
			return fail
		}
		anchored = append(anchored, cp)
		return nil
	}})
	mustAppend(t, l, req(0))
	second := mustAppend(t, l, req(1))
	if len(anchored) != 1 || anchored[0].Seq != 2 || anchored[0].Hash != second.Hash {
		t.Fatalf("anchored %+v, want the checkpoint of seq 2", anchored)
	}
	if err := checkSignature(anchored[0], pubOf(testKey(1))); err != nil {
		t.Fatal(err)
	}

	// The anchor fails: the append that made the checkpoint fails, though
	// its record is written, and appends fail until the anchor works.
	fail = errors.New("store down")
	mustAppend(t, l, req(2)) // seq 4
	if _, err := l.Append(t.Context(), req(3)); !errors.Is(err, ErrAnchor) {
		t.Fatalf("Append whose checkpoint cannot be anchored = %v, want ErrAnchor", err)
	}
	written := len(f.bytes())
	if _, err := l.Append(t.Context(), req(4)); !errors.Is(err, ErrAnchor) {
		t.Fatalf("Append while the anchor fails = %v, want ErrAnchor", err)
	}
	if len(f.bytes()) != written {
		t.Fatal("a record was written while the anchor failed")
	}
	if n := l.Failures(); n != 2 {
		t.Errorf("Failures = %d, want 2", n)
	}

	fail = nil
	rec := mustAppend(t, l, req(5))
	if rec.Seq != 7 {
		t.Errorf("seq %d after the anchor recovered, want 7", rec.Seq)
	}
	if len(anchored) != 2 || anchored[1].Seq != 5 {
		t.Errorf("anchored %+v, want the retried checkpoint of seq 5", anchored)
	}
	l.Close()
	rep := verifyBytes(t, f.bytes(), pubOf(testKey(1)), &anchored[len(anchored)-1])
	if rep.Problem != nil {
		t.Errorf("%+v", rep.Problem)
	}
}

func TestOpenFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	path := filepath.Join(dir, "audit.log")
	l := openLog(t, Options{Path: path})
	mustAppend(t, l, req(0))
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600} {
		if st, err := os.Stat(p); err != nil || st.Mode() != want {
			t.Errorf("%s: mode %v, %v; want %v", p, st.Mode(), err, want)
		}
	}
	if _, err := Open(Options{Path: path, Signer: testKey(1)}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second Open of an open log = %v, want in use", err)
	}
	if _, err := Open(Options{Path: path}); err == nil {
		t.Error("Open without a signer succeeded")
	}
	if _, err := Open(Options{Signer: testKey(1)}); err == nil {
		t.Error("Open without a path succeeded")
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	opts := Options{Path: path, CheckpointEvery: 4}

	l := openLog(t, opts)
	for i := range 5 { // 1 2 3 4 cp5 6 (cp7 at Close)
		mustAppend(t, l, req(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openLog(t, opts)
	rec := mustAppend(t, l, req(5))
	if rec.Seq != 8 {
		t.Fatalf("first record after reopening has seq %d, want 8", rec.Seq)
	}
	for i := range 4 { // 9 10 11 cp12 13
		mustAppend(t, l, req(6+i))
	}
	if err := l.Close(); err != nil { // cp14
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rep := verifyBytes(t, b, pubOf(testKey(1)), nil)
	if rep.Problem != nil || rep.LastSeq != 14 || rep.Checkpoints != 4 {
		t.Errorf("%+v %v", rep, rep.Problem)
	}
}

// TestReopenAfterCrash reopens a log whose last records no checkpoint
// covers: Open counts them towards the next checkpoint.
func TestReopenAfterCrash(t *testing.T) {
	src := openLog(t, Options{Path: filepath.Join(t.TempDir(), "a.log"), CheckpointEvery: 3})
	for i := range 5 { // 1 2 3 cp4 5 6
		mustAppend(t, src, req(i))
	}
	crashed := filepath.Join(t.TempDir(), "b.log")
	copyFile(t, src.fPath(t), crashed)

	l := openLog(t, Options{Path: crashed, CheckpointEvery: 3})
	if rec := mustAppend(t, l, req(5)); rec.Seq != 7 {
		t.Fatalf("seq %d, want 7", rec.Seq)
	}
	rec := mustAppend(t, l, req(6)) // cp8 covers 5 6 7
	if rec.Seq != 9 {
		t.Errorf("seq %d, want 9 after a checkpoint of the 3 records since the last", rec.Seq)
	}
}

// TestReopenCheckpointsWithinInterval reopens a log whose last records no
// checkpoint covers: they get one within CheckpointInterval.
func TestReopenCheckpointsWithinInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := openLog(t, Options{Path: filepath.Join(t.TempDir(), "a.log"), Now: time.Now})
		mustAppend(t, src, req(0))
		crashed := filepath.Join(t.TempDir(), "b.log")
		copyFile(t, src.fPath(t), crashed)
		src.Close()

		l := openLog(t, Options{Path: crashed, Now: time.Now, CheckpointInterval: time.Minute})
		checkpoints := func() int {
			b, err := os.ReadFile(crashed)
			if err != nil {
				t.Fatal(err)
			}
			return verifyBytes(t, b, pubOf(testKey(1)), nil).Checkpoints
		}
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if n := checkpoints(); n != 0 {
			t.Fatalf("%d checkpoints before the interval", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := checkpoints(); n != 1 {
			t.Fatalf("%d checkpoints after the interval, want 1", n)
		}
		l.Close()
	})
}

// fPath returns the name of the log's file.
func (l *Log) fPath(t *testing.T) string {
	t.Helper()
	f, ok := l.f.(*os.File)
	if !ok {
		t.Fatal("not a file")
	}
	return f.Name()
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOpenTornLine(t *testing.T) {
	lines, _ := tamperFixture(t)
	for _, tc := range []struct {
		name string
		keep int // whole lines kept before the torn one
	}{{"after records", 13}, {"only line", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "audit.log")
			torn := lines[tc.keep][:50]
			content := append(bytes.Join(lines[:tc.keep], nil), torn...)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			l := openLog(t, Options{Path: path, CheckpointEvery: 3, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			rec := mustAppend(t, l, req(0))
			if want := uint64(tc.keep + 1); rec.Seq != want {
				t.Errorf("seq %d after the torn line, want %d", rec.Seq, want)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			if rep := verifyBytes(t, b, pubOf(testKey(1)), nil); rep.Problem != nil {
				t.Errorf("after repair: %v", rep.Problem)
			}
			aside, _ := filepath.Glob(filepath.Join(dir, "audit.log.torn-*"))
			if len(aside) != 1 {
				t.Fatalf("torn bytes saved to %v", aside)
			}
			if saved, _ := os.ReadFile(aside[0]); !bytes.Equal(saved, torn) {
				t.Errorf("saved %q, want %q", saved, torn)
			}
			if !strings.Contains(logs.String(), "torn") {
				t.Errorf("no warning logged: %q", logs.String())
			}
		})
	}
}

func TestOpenDamagedTail(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, lines [][]byte) [][]byte
		key    byte
		reason string
	}{
		{
			name:   "malformed last line",
			tamper: func(t *testing.T, lines [][]byte) [][]byte { lines[13] = []byte("{oops}\n"); return lines },
			reason: "last line",
		},
		{
			name: "altered last line",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[13] = bytes.Replace(lines[13], []byte("success"), []byte("denied!"), 1)
				return lines
			},
			reason: "hashes to",
		},
		{
			name:   "missing record in the tail",
			tamper: func(t *testing.T, lines [][]byte) [][]byte { return append(lines[:12], lines[13]) },
			reason: "seq 14 follows seq 12",
		},
		{
			name: "broken chain in the tail",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[12] = reencode(t, lines[12], func(r *Record) { r.Outcome = OutcomeDenied })
				return lines
			},
			reason: "record 14: prev_hash",
		},
		{
			name: "last checkpoint forged",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[11] = reencode(t, lines[11], func(r *Record) { r.Checkpoint.Time = r.Checkpoint.Time.Add(1) })
				rechain(t, lines, 12, false)
				return lines
			},
			reason: "signature does not verify",
		},
		{
			name:   "another signer",
			key:    2,
			reason: "signed by key",
		},
		{
			name:   "head removed",
			tamper: func(t *testing.T, lines [][]byte) [][]byte { return lines[12:] },
			key:    1,
			reason: "first record has seq 13",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines, _ := tamperFixture(t)
			if c.tamper != nil {
				lines = c.tamper(t, lines)
			}
			path := filepath.Join(t.TempDir(), "audit.log")
			content := bytes.Join(lines, nil)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			key := testKey(1)
			if c.key != 0 {
				key = testKey(c.key)
			}
			l, err := Open(Options{Path: path, Signer: key, CheckpointEvery: 3})
			if err == nil {
				l.Close()
				t.Fatal("Open continued a damaged log")
			}
			var te *TailError
			if !errors.As(err, &te) || te.Hint == "" || !strings.Contains(te.Reason, c.reason) {
				t.Fatalf("Open = %v, want a *TailError saying %q", err, c.reason)
			}
			t.Log(err)
			if b, _ := os.ReadFile(path); !bytes.Equal(b, content) {
				t.Error("Open changed a damaged log")
			}
		})
	}
}

// TestOpenLongTail reads back past several chunks to the last checkpoint.
func TestOpenLongTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, Options{Path: path, CheckpointEvery: 1000})
	big := req(0)
	big.Message = strings.Repeat("x", MaxFieldLen)
	for range 300 { // about 800 KB without a checkpoint
		mustAppend(t, l, big)
	}
	crashed := filepath.Join(t.TempDir(), "b.log")
	copyFile(t, path, crashed)
	l2 := openLog(t, Options{Path: crashed, CheckpointEvery: 301})
	if rec := mustAppend(t, l2, req(1)); rec.Seq != 301 {
		t.Errorf("seq %d, want 301", rec.Seq)
	}
	b, _ := os.ReadFile(crashed)
	if rep := verifyBytes(t, b, pubOf(testKey(1)), nil); rep.Checkpoints != 1 || rep.LastSeq != 302 {
		t.Errorf("%+v: want the 301st record to bring a checkpoint", rep)
	}
}

func BenchmarkAppend(b *testing.B) {
	run := func(b *testing.B, parallel bool) {
		l, err := Open(Options{Path: filepath.Join(b.TempDir(), "audit.log"), Signer: testKey(1), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		ctx := context.Background()
		r := req(0)
		b.ResetTimer()
		if parallel {
			b.SetParallelism(32) // many HTTP requests per core
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(ctx, r); err != nil {
						b.Error(err)
						return
					}
				}
			})
		} else {
			for b.Loop() {
				if _, err := l.Append(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	}
	b.Run("sequential", func(b *testing.B) { run(b, false) })
	b.Run("parallel", func(b *testing.B) { run(b, true) })
}

func TestSyncEvery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &memFile{}
		l := openLog(t, Options{File: f, SyncEvery: 50 * time.Millisecond, Now: time.Now})
		for i := range 10 {
			if _, err := l.Append(t.Context(), req(i)); err != nil {
				t.Fatal(err)
			}
		}
		// Every record is in the file when its Append returns; only the
		// first group was fsynced.
		if got := bytes.Count(f.bytes(), []byte("\n")); got != 10 {
			t.Fatalf("%d lines written, want 10", got)
		}
		if got := f.syncCount(); got != 1 {
			t.Errorf("%d syncs after 10 quick appends, want 1", got)
		}
		time.Sleep(60 * time.Millisecond) // quiet for longer than SyncEvery
		synctest.Wait()
		if got := f.syncCount(); got != 2 {
			t.Errorf("%d syncs after a quiet period, want 2", got)
		}
		if !l.Healthy() {
			t.Error("healthy log reports unhealthy")
		}
	})
}

func TestSyncEveryFailureBreaksTheLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &memFile{failS: func(n int) error {
			if n == 2 {
				return errors.New("disk gone")
			}
			return nil
		}}
		l := openLog(t, Options{File: f, SyncEvery: 50 * time.Millisecond, Now: time.Now})
		for i := range 3 {
			if _, err := l.Append(t.Context(), req(i)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(60 * time.Millisecond) // the background fsync fails
		synctest.Wait()
		if l.Healthy() {
			t.Error("log still healthy after a failed fsync")
		}
		if _, err := l.Append(t.Context(), req(9)); !errors.Is(err, ErrBroken) {
			t.Errorf("Append after a failed background fsync: %v, want ErrBroken", err)
		}
	})
}

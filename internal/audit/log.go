package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// File is where a Log writes. *os.File is one; tests pass others to inject
// faults.
type File interface {
	Write(p []byte) (int, error)
	Sync() error
	Close() error
}

// Options configure Open.
type Options struct {
	// Path is the log file, created with mode 0600 (its directory 0700)
	// when missing and continued when present.
	Path string

	// Signer signs checkpoints. Required. An existing log must have been
	// signed by the same key: Verify checks a file against one public key.
	Signer ed25519.PrivateKey

	// CheckpointEvery is the number of records between checkpoints
	// (default 1000).
	CheckpointEvery int

	// CheckpointInterval is how long records may wait for a checkpoint
	// (default 1 minute): a background goroutine, stopped by Close, writes
	// one when that long has passed since the last and records were added.
	CheckpointInterval time.Duration

	// Anchor, when set, is called with each checkpoint once it is durable,
	// from one goroutine at a time and in order, to store it outside the
	// file. Appends wait for it: keep it fast. If it fails, Appends fail
	// until a retry succeeds (see the package comment).
	Anchor func(Checkpoint) error

	// SyncEvery, when positive, relaxes durability for latency: each group
	// of records is written to the file before its Appends return (so a
	// crash of the process loses nothing, and a failed write still fails
	// them), but fsynced at most once per SyncEvery, by the writer after
	// a quiet period or along with the next group. A crash of the machine
	// may lose the records of the last SyncEvery. Groups that carry a
	// checkpoint are always fsynced before it is anchored. Zero (the
	// default) fsyncs every group before its Appends return.
	SyncEvery time.Duration

	// Now is the clock (default time.Now).
	Now func() time.Time

	// Logger receives warnings: a torn line moved aside at Open, a
	// background checkpoint that failed (default slog.Default()).
	Logger *slog.Logger

	// File, when set, is written instead of Path: Open neither reads nor
	// creates Path, and the chain starts at seq 1. For tests.
	File File
}

// Log appends records to an audit log file. Its methods are safe for
// concurrent use.
type Log struct {
	every    int
	interval time.Duration
	signer   ed25519.PrivateKey
	keyID    string
	anchor   func(Checkpoint) error
	now      func() time.Time
	logger   *slog.Logger
	f        File

	reqs     chan *request
	quit     chan struct{} // closed by Close: the writer stops
	stopped  chan struct{} // closed by the writer when it stops
	stopTick chan struct{}
	tickDone chan struct{}

	closeOnce sync.Once
	closeErr  error
	failures  atomic.Uint64
	// healthy is false once a write or fsync failed (a copy of broken that
	// other goroutines may read).
	healthy atomic.Bool

	syncEvery time.Duration

	// Owned by the writer goroutine.
	dirty      bool      // written since the last fsync (SyncEvery > 0)
	lastSync   time.Time // of the last fsync (SyncEvery > 0)
	seq        uint64
	prevHash   string
	sinceCP    int // records since the last checkpoint
	lastCPTime time.Time
	broken     error
	unanchored *Checkpoint // the latest checkpoint, while Anchor fails for it
	buf        []byte
}

type reqKind int

const (
	reqAppend reqKind = iota
	reqCheckpoint
	reqTick // checkpoint if CheckpointInterval has passed
)

type request struct {
	kind reqKind
	rec  Record
	done chan result // buffered: the writer never blocks on it
}

type result struct {
	rec  Record
	err  error
	wait time.Duration // for reqTick: until the next check
}

// maxBatch bounds the requests committed by one write and fsync.
const maxBatch = 4096

// Open opens the log at opts.Path, creating it if needed, and starts its
// checkpoint goroutine. It checks the end of an existing file and continues
// its chain; a final line without a newline is moved aside (see the package
// comment), any other damage there is a *TailError.
func Open(opts Options) (*Log, error) {
	if len(opts.Signer) != ed25519.PrivateKeySize {
		return nil, errors.New("audit: Options.Signer must be an Ed25519 private key")
	}
	l := &Log{
		every:     opts.CheckpointEvery,
		interval:  opts.CheckpointInterval,
		signer:    opts.Signer,
		keyID:     KeyID(opts.Signer.Public().(ed25519.PublicKey)),
		anchor:    opts.Anchor,
		now:       opts.Now,
		syncEvery: opts.SyncEvery,
		logger:    opts.Logger,
		f:         opts.File,
		prevHash:  zeroHash,
		reqs:      make(chan *request),
		quit:      make(chan struct{}),
		stopped:   make(chan struct{}),
		stopTick:  make(chan struct{}),
		tickDone:  make(chan struct{}),
		buf:       make([]byte, 0, 64<<10),
	}
	if l.every <= 0 {
		l.every = 1000
	}
	if l.interval <= 0 {
		l.interval = time.Minute
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	if l.f == nil {
		if opts.Path == "" {
			return nil, errors.New("audit: Options.Path is empty")
		}
		f, t, err := openFile(opts.Path, opts.Signer.Public().(ed25519.PublicKey), l.every, l.logger)
		if err != nil {
			return nil, err
		}
		l.f = f
		if t.seq > 0 {
			l.seq, l.prevHash, l.sinceCP = t.seq, t.hash, t.sinceCP
		}
		if t.lastCP != nil {
			l.lastCPTime = t.lastCP.Time
		}
	}

	if l.lastCPTime.IsZero() {
		// No checkpoint near the end of the file: count the interval from
		// now, for the records a crashed run may have left unchecked.
		l.lastCPTime = l.now()
	}
	first := l.interval
	if l.sinceCP > 0 {
		first = max(0, l.interval-l.now().Sub(l.lastCPTime))
	}
	l.healthy.Store(true)
	go l.write()
	go l.tick(first)
	return l, nil
}

// Append writes r to the log and returns it with Seq, PrevHash and Hash set,
// once it is fsynced. r.Type must be TypeRequest or TypeRotation and
// r.Outcome one of the Outcome constants; a zero r.Time becomes the current
// time. Errors wrap ErrInvalidRecord, ErrBroken, ErrAnchor or ErrClosed, or
// are ctx.Err(); whatever the error, the caller must treat the audited
// operation as failed.
func (l *Log) Append(ctx context.Context, r Record) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	r, err := l.prepare(r)
	if err != nil {
		l.failures.Add(1)
		return Record{}, err
	}
	req := &request{kind: reqAppend, rec: r, done: make(chan result, 1)}
	res, err := l.do(ctx, req)
	if err != nil {
		if errors.Is(err, ErrClosed) {
			l.failures.Add(1)
		}
		return Record{}, err
	}
	return res.rec, res.err
}

// Checkpoint writes a checkpoint covering every record appended so far,
// unless the last record already is one, and anchors it. The server calls
// it at shutdown; Close does too.
func (l *Log) Checkpoint(ctx context.Context) error {
	res, err := l.do(ctx, &request{kind: reqCheckpoint, done: make(chan result, 1)})
	if err != nil {
		return err
	}
	return res.err
}

// do hands req to the writer and waits for its result.
func (l *Log) do(ctx context.Context, req *request) (result, error) {
	select {
	case l.reqs <- req:
	case <-ctx.Done():
		return result{}, ctx.Err()
	case <-l.quit:
		return result{}, ErrClosed
	}
	select {
	case res := <-req.done:
		return res, nil
	case <-ctx.Done():
		// The writer has the request and may still write it.
		return result{}, ctx.Err()
	}
}

// Failures returns how many records Append could not make durable: invalid
// records, and failed writes, fsyncs and anchors, and Appends after Close.
// An Append abandoned because its ctx ended is not counted unless the
// writer then failed its record.
func (l *Log) Failures() uint64 { return l.failures.Load() }

// Healthy reports whether the log can take records: false once a write or
// fsync failed (until it is reopened). Callers check it before an action
// whose record would follow it, so that a broken log refuses the action
// rather than only its answer.
func (l *Log) Healthy() bool { return l.healthy.Load() }

// Close stops the checkpoint goroutine, writes a final checkpoint if records
// were added since the last, and closes the file. It returns the error of
// that checkpoint (ErrBroken when the log is broken) joined with the file's.
// Later calls return the same.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		close(l.stopTick)
		<-l.tickDone
		req := &request{kind: reqCheckpoint, done: make(chan result, 1)}
		l.reqs <- req // the writer runs until quit is closed
		res := <-req.done
		close(l.quit)
		<-l.stopped
		l.closeErr = errors.Join(res.err, l.f.Close())
	})
	return l.closeErr
}

func (l *Log) prepare(r Record) (Record, error) {
	switch r.Type {
	case TypeRequest, TypeRotation:
	default:
		return Record{}, fmt.Errorf("%w: type %q, want %q or %q", ErrInvalidRecord, r.Type, TypeRequest, TypeRotation)
	}
	switch r.Outcome {
	case OutcomeSuccess, OutcomeDenied, OutcomeAuthFailed, OutcomeInvalid, OutcomeError:
	default:
		return Record{}, fmt.Errorf("%w: outcome %q", ErrInvalidRecord, r.Outcome)
	}
	if r.EventName == "" {
		return Record{}, fmt.Errorf("%w: no event name", ErrInvalidRecord)
	}
	if r.Checkpoint != nil {
		return Record{}, fmt.Errorf("%w: only the log writes checkpoints", ErrInvalidRecord)
	}
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	r.Time = r.Time.UTC().Round(0)
	if y := r.Time.Year(); y < 1 || y > 9999 {
		return Record{}, fmt.Errorf("%w: time %v out of range", ErrInvalidRecord, r.Time)
	}
	r.Seq, r.PrevHash, r.Hash = 0, "", ""
	for _, p := range []*string{&r.Type, &r.EventName, &r.RequestID, &r.PrincipalARN, &r.AccessKeyID,
		&r.SourceIP, &r.UserAgent, &r.SecretARN, &r.VersionID, &r.VersionStage, &r.Outcome,
		&r.ErrorCode, &r.Message} {
		*p = clean(*p)
	}
	return r, nil
}

// write is the writer goroutine: it commits whatever queued up while the
// previous group was being written.
func (l *Log) write() {
	defer close(l.stopped)
	batch := make([]*request, 0, 64)
	// With SyncEvery, a group written but not fsynced is fsynced when the
	// log has been quiet for SyncEvery.
	syncT := time.NewTimer(time.Hour)
	syncT.Stop()
	defer func() {
		if l.dirty && l.broken == nil {
			l.syncNow()
		}
	}()
	for {
		select {
		case req := <-l.reqs:
			batch = append(batch[:0], req)
		case <-syncT.C:
			if l.dirty && l.broken == nil {
				l.syncNow()
			}
			continue
		case <-l.quit:
			return
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case req := <-l.reqs:
				batch = append(batch, req)
			default:
				break drain
			}
		}
		l.commit(batch)
		clear(batch)
		if l.dirty {
			syncT.Reset(l.syncEvery)
		}
	}
}

// syncNow fsyncs what was written; a failure breaks the log.
func (l *Log) syncNow() {
	if err := l.f.Sync(); err != nil {
		l.broken = fmt.Errorf("%w: %w", ErrBroken, err)
		l.healthy.Store(false)
		l.logger.Error("audit log fsync failed; the log refuses further records", "err", err)
		return
	}
	l.dirty, l.lastSync = false, l.now()
}

// commit writes the records of batch, and the checkpoints that fall due
// among them, with one write and one fsync, anchors the checkpoints, and
// answers every request.
func (l *Log) commit(batch []*request) {
	now := l.now().UTC().Round(0)
	if err := l.precondition(); err != nil {
		l.answer(batch, err, nil)
		return
	}

	seq, prev, since := l.seq, l.prevHash, l.sinceCP
	buf := l.buf[:0]
	var cps []Checkpoint
	addCheckpoint := func() error {
		cp := Checkpoint{Seq: seq, Hash: prev, Time: now, KeyID: l.keyID}
		cp.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(l.signer, cp.SignedBytes()))
		rec := Record{Seq: seq + 1, Time: now, Type: TypeCheckpoint, EventName: EventCheckpoint,
			Outcome: OutcomeSuccess, Checkpoint: &cp, PrevHash: prev}
		b, err := appendLine(buf, &rec)
		if err != nil {
			return fmt.Errorf("audit: encode checkpoint: %v", err) // only a clock gone mad
		}
		buf = b
		seq, prev, since = rec.Seq, rec.Hash, 0
		cps = append(cps, cp)
		return nil
	}
	var encErr map[*request]error // records that could not be encoded
	for _, req := range batch {
		var err error
		switch req.kind {
		case reqAppend:
			rec := req.rec
			rec.Seq, rec.PrevHash = seq+1, prev
			b, e := appendLine(buf, &rec)
			if e != nil {
				if encErr == nil {
					encErr = make(map[*request]error)
				}
				encErr[req] = fmt.Errorf("audit: encode record: %v", e)
				continue
			}
			buf = b
			req.rec = rec
			seq, prev = rec.Seq, rec.Hash
			if since++; since >= l.every {
				err = addCheckpoint()
			}
		case reqCheckpoint:
			if since > 0 {
				err = addCheckpoint()
			}
		case reqTick:
			if since > 0 && now.Sub(l.lastCPTime) >= l.interval {
				err = addCheckpoint()
			}
		}
		if err != nil {
			l.answer(batch, err, nil)
			return
		}
	}
	if cap(buf) <= 4<<20 {
		l.buf = buf[:0] // reused by the next group; buf is still written below
	}

	if len(buf) > 0 {
		_, err := l.f.Write(buf)
		if err == nil {
			if l.syncEvery <= 0 || len(cps) > 0 || now.Sub(l.lastSync) >= l.syncEvery {
				if err = l.f.Sync(); err == nil {
					l.dirty, l.lastSync = false, now
				}
			} else {
				l.dirty = true
			}
		}
		if err != nil {
			l.broken = fmt.Errorf("%w: %w", ErrBroken, err)
			l.healthy.Store(false)
			l.answer(batch, l.broken, encErr)
			return
		}
		l.seq, l.prevHash, l.sinceCP = seq, prev, since
		if len(cps) > 0 {
			l.lastCPTime = now
		}
	}

	var err error
	for i := range cps {
		if err = l.anchorOne(cps[i]); err != nil {
			l.unanchored = &cps[len(cps)-1]
			break
		}
	}
	l.answer(batch, err, encErr)
}

// precondition returns why nothing can be written now: a broken log, or an
// anchor that still fails.
func (l *Log) precondition() error {
	if l.broken != nil {
		return l.broken
	}
	if l.unanchored != nil {
		if err := l.anchorOne(*l.unanchored); err != nil {
			return err
		}
		l.unanchored = nil
	}
	return nil
}

func (l *Log) anchorOne(cp Checkpoint) error {
	if l.anchor == nil {
		return nil
	}
	if err := l.anchor(cp); err != nil {
		return fmt.Errorf("%w: checkpoint at seq %d: %v", ErrAnchor, cp.Seq, err)
	}
	return nil
}

// answer replies to every request of batch with err (or its own encoding
// error) and counts the failed appends.
func (l *Log) answer(batch []*request, err error, encErr map[*request]error) {
	wait := l.interval
	if l.sinceCP > 0 {
		if w := l.interval - l.now().Sub(l.lastCPTime); w > 0 {
			wait = w
		}
	}
	for _, req := range batch {
		res := result{err: err, wait: wait}
		if e := encErr[req]; e != nil {
			res.err = e
		}
		if req.kind == reqAppend {
			if res.err != nil {
				l.failures.Add(1)
			} else {
				res.rec = req.rec
			}
		}
		req.done <- res
	}
}

// appendLine sets rec.Hash and appends rec's line to buf.
func appendLine(buf []byte, rec *Record) ([]byte, error) {
	rec.Hash = ""
	b, err := json.Marshal(rec)
	if err != nil {
		return buf, err
	}
	if !bytes.HasSuffix(b, []byte(emptyHashTail)) {
		return buf, errors.New("record encoding does not end with its hash")
	}
	sum := sha256.Sum256(b)
	rec.Hash = hex.EncodeToString(sum[:])
	buf = append(buf, b[:len(b)-2]...)
	buf = append(buf, rec.Hash...)
	return append(buf, '"', '}', '\n'), nil
}

// tick asks the writer for a checkpoint whenever CheckpointInterval may have
// passed since the last one, until Close.
func (l *Log) tick(first time.Duration) {
	defer close(l.tickDone)
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-l.stopTick:
			return
		}
		req := &request{kind: reqTick, done: make(chan result, 1)}
		select {
		case l.reqs <- req:
		case <-l.stopTick:
			return
		}
		res := <-req.done
		if res.err != nil {
			l.logger.Warn("audit checkpoint failed", "err", res.err)
		}
		t.Reset(res.wait)
	}
}

func decodeSignature(s string) ([]byte, error) {
	sig, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, errors.New("signature is not base64 of 64 bytes")
	}
	return sig, nil
}

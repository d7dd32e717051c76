package audit

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
)

// TailError is returned by Open when the end of an existing log cannot be
// continued: its last records do not parse or verify, or its last checkpoint
// was signed by another key. Open never repairs such a file.
type TailError struct {
	Path   string
	Reason string
	Hint   string // what the operator can do
}

func (e *TailError) Error() string { return "audit log " + e.Path + ": " + e.Reason }

const tailHint = "check the file with audit.Verify and the public key; keep it as evidence and, " +
	"to start a new chain, move it aside before starting again"

// tail is what Open learns from the end of an existing log.
type tail struct {
	seq     uint64
	hash    string
	sinceCP int         // records after lastCP
	lastCP  *Checkpoint // nil when none was found near the end
}

// readChunk is how much of the file Open reads at a time, from the end.
const readChunk = 64 << 10

// openFile opens (or creates) the log at path for appending, and reads the
// end of an existing file back to its last checkpoint, at most maxRecords
// records.
func openFile(path string, pub ed25519.PublicKey, maxRecords int, logger *slog.Logger) (_ *os.File, _ tail, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, tail{}, fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, tail{}, fmt.Errorf("audit log: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if err := lockFile(f); err != nil {
		return nil, tail{}, fmt.Errorf("audit log %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, tail{}, fmt.Errorf("audit log: %w", err)
	}
	size := st.Size()
	if size > 0 {
		if size, err = repairTorn(f, path, size, logger); err != nil {
			return nil, tail{}, fmt.Errorf("audit log %s: torn final line: %w", path, err)
		}
	}
	if size == 0 {
		// Whether new or emptied, make its directory entry durable.
		if err := syncDir(dir); err != nil {
			return nil, tail{}, fmt.Errorf("audit log: %w", err)
		}
		return f, tail{}, nil
	}
	t, reason, err := readTail(f, size, pub, maxRecords)
	if err != nil {
		return nil, tail{}, fmt.Errorf("audit log %s: %w", path, err)
	}
	if reason != "" {
		return nil, tail{}, &TailError{Path: path, Reason: reason, Hint: tailHint}
	}
	return f, t, nil
}

// repairTorn moves the bytes after the last newline of f, if any, to a new
// file beside it and truncates f to that newline. It returns the new size.
func repairTorn(f *os.File, path string, size int64, logger *slog.Logger) (int64, error) {
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return 0, err
	}
	if last[0] == '\n' {
		return size, nil
	}
	cut, err := afterLastNewline(f, size)
	if err != nil {
		return 0, err
	}
	aside, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".torn-*")
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(aside, io.NewSectionReader(f, cut, size-cut))
	if err == nil {
		err = aside.Sync()
	}
	if cerr := aside.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return 0, fmt.Errorf("save to %s: %w", aside.Name(), err)
	}
	if err := f.Truncate(cut); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	logger.Warn("audit log ended in a torn line; moved it aside",
		"path", path, "bytes", size-cut, "moved_to", aside.Name())
	return cut, nil
}

// afterLastNewline returns the offset just after the last '\n' of the first
// size bytes of r, or 0.
func afterLastNewline(r io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, readChunk)
	for end := size; end > 0; {
		start := max(0, end-readChunk)
		b := buf[:end-start]
		if _, err := r.ReadAt(b, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// readTail reads the records at the end of r (whose size bytes end in a
// newline), newest first, back to the last checkpoint or maxRecords+1
// records or the start of the file, and checks their hashes, their chain and
// that checkpoint. A non-empty reason says why the log cannot be continued.
func readTail(r io.ReaderAt, size int64, pub ed25519.PublicKey, maxRecords int) (t tail, reason string, err error) {
	var recs []Record // newest first
	atStart, done := false, false
	visit := func(line []byte) {
		rec, kind, detail := decodeLine(line)
		if kind != "" {
			if len(recs) == 0 {
				reason = "last line: " + detail
			} else {
				reason = fmt.Sprintf("line before seq %d: %s", recs[len(recs)-1].Seq, detail)
			}
			done = true
			return
		}
		recs = append(recs, rec)
		done = rec.Type == TypeCheckpoint || len(recs) > maxRecords
	}

	var pending []byte // a line whose start lies before pos, with its newline
	for pos := size; pos > 0 && !done; {
		n := min(readChunk, pos)
		pos -= n
		data := make([]byte, int(n)+len(pending))
		if _, err := r.ReadAt(data[:n], pos); err != nil {
			return tail{}, "", err
		}
		copy(data[n:], pending)
		body := data[:len(data)-1] // drop the final newline
		for !done {
			i := bytes.LastIndexByte(body, '\n')
			if i < 0 {
				break
			}
			visit(body[i+1:])
			body = body[:i]
		}
		switch {
		case done:
		case pos == 0:
			visit(body)
			atStart = true
		case len(body) > maxLineLen:
			reason, done = fmt.Sprintf("a line near the end is longer than %d bytes", maxLineLen), true
		default:
			pending = append(body, '\n')
		}
	}
	if reason != "" {
		return tail{}, reason, nil
	}

	slices.Reverse(recs)
	for i, rec := range recs {
		if i == 0 {
			if atStart && (rec.Seq != 1 || rec.PrevHash != zeroHash) {
				return tail{}, fmt.Sprintf("first record has seq %d and prev_hash %s, want 1 and zeros", rec.Seq, rec.PrevHash), nil
			}
			continue
		}
		prev := recs[i-1]
		if rec.Seq != prev.Seq+1 {
			return tail{}, fmt.Sprintf("seq %d follows seq %d", rec.Seq, prev.Seq), nil
		}
		if rec.PrevHash != prev.Hash {
			return tail{}, fmt.Sprintf("record %d: prev_hash is not the hash of record %d", rec.Seq, prev.Seq), nil
		}
	}

	last := recs[len(recs)-1]
	t = tail{seq: last.Seq, hash: last.Hash, sinceCP: len(recs)}
	if first := recs[0]; first.Type == TypeCheckpoint {
		cp := *first.Checkpoint
		if cp.Seq+1 != first.Seq || cp.Hash != first.PrevHash {
			return tail{}, fmt.Sprintf("checkpoint record %d covers seq %d, not the record before it", first.Seq, cp.Seq), nil
		}
		if err := checkSignature(cp, pub); err != nil {
			return tail{}, fmt.Sprintf("checkpoint record %d: %v (a log is signed by one key)", first.Seq, err), nil
		}
		t.lastCP, t.sinceCP = &cp, len(recs)-1
	}
	return t, "", nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Problem kinds, from the first check a line fails.
const (
	ProblemMalformed    = "malformed"     // not a record line: bad JSON, no hash at its end, torn
	ProblemAltered      = "altered"       // the hash does not match the line's content
	ProblemMissing      = "missing"       // a gap in seq: records were removed
	ProblemReordered    = "reordered"     // seq goes backwards or repeats
	ProblemBrokenChain  = "broken_chain"  // prev_hash is not the previous record's hash
	ProblemBadSignature = "bad_signature" // a checkpoint does not vouch for the chain before it
	ProblemTruncated    = "truncated"     // the file ends before the anchor, or differs from it
)

// Problem is the first place where a log does not verify.
type Problem struct {
	Line   int    // 1-based line in the file
	Seq    uint64 // the seq expected at that line
	Kind   string // one of the Problem constants
	Detail string
}

func (p *Problem) String() string {
	return fmt.Sprintf("line %d (seq %d): %s: %s", p.Line, p.Seq, p.Kind, p.Detail)
}

// Report is what Verify found. Its counts and last fields describe the
// records that verified, before Problem if there is one.
type Report struct {
	Records        int    // records that verified, checkpoints included
	Checkpoints    int    // checkpoint records among them
	LastSeq        uint64 // 0 when none verified
	LastHash       string
	LastCheckpoint *Checkpoint
	Problem        *Problem // nil when the whole log verified
}

// Verify reads a log from r and checks every line: its encoding, its hash,
// its seq, its link to the line before, and each checkpoint's signature by
// pub. With an anchor, a checkpoint kept outside the file, it also checks
// that the file reaches that checkpoint unchanged. It stops at the first
// problem and reports it in Report.Problem; its error is for reading r, an
// invalid pub or an anchor that pub did not sign.
//
// Verify can say nothing about records removed from the end of the file
// after the anchor (or after the last checkpoint, without an anchor), nor
// about a file whose checkpoints were all removed and whose chain was then
// rebuilt, unless an anchor is given: compare Report.LastCheckpoint with
// LastSeq to see how much of the log no signature covers.
func Verify(r io.Reader, pub ed25519.PublicKey, anchor *Checkpoint) (Report, error) {
	var rep Report
	if len(pub) != ed25519.PublicKeySize {
		return rep, errors.New("audit: verify: public key is not an Ed25519 key")
	}
	if anchor != nil {
		if err := checkSignature(*anchor, pub); err != nil {
			return rep, fmt.Errorf("audit: verify: anchor: %v", err)
		}
	}
	lr := newLineReader(r)
	prevHash, want := zeroHash, uint64(1)
	fail := func(kind, format string, args ...any) (Report, error) {
		rep.Problem = &Problem{Line: lr.n, Seq: want, Kind: kind, Detail: fmt.Sprintf(format, args...)}
		return rep, nil
	}
	for {
		line, torn, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return rep, err
		}
		if torn {
			return fail(ProblemMalformed, "final line has no newline: a torn write (Open moves it aside)")
		}
		rec, kind, detail := decodeLine(line)
		if kind != "" {
			return fail(kind, "%s", detail)
		}

		switch {
		case rec.Seq > want:
			// Removed records, or a later record moved up: the next line
			// tells which.
			if next, ok := lr.peekSeq(); ok && next < rec.Seq {
				return fail(ProblemReordered, "seq %d comes before seq %d", rec.Seq, next)
			}
			return fail(ProblemMissing, "seq jumps to %d: %d record(s) missing", rec.Seq, rec.Seq-want)
		case rec.Seq < want:
			return fail(ProblemReordered, "seq %d after seq %d", rec.Seq, want-1)
		}
		if rec.PrevHash != prevHash {
			return fail(ProblemBrokenChain, "prev_hash %s is not the hash of the previous record", rec.PrevHash)
		}
		if cp := rec.Checkpoint; cp != nil {
			if cp.Seq+1 != rec.Seq || cp.Hash != rec.PrevHash {
				return fail(ProblemBadSignature, "checkpoint signs seq %d hash %s, not the record before it", cp.Seq, cp.Hash)
			}
			if err := checkSignature(*cp, pub); err != nil {
				return fail(ProblemBadSignature, "checkpoint: %v", err)
			}
		}
		if anchor != nil {
			switch rec.Seq {
			case anchor.Seq:
				if rec.Hash != anchor.Hash {
					return fail(ProblemTruncated, "the anchor has hash %s for seq %d, the file %s", anchor.Hash, rec.Seq, rec.Hash)
				}
			case anchor.Seq + 1:
				if cp := rec.Checkpoint; cp == nil || !sameCheckpoint(*cp, *anchor) {
					return fail(ProblemTruncated, "the anchored checkpoint is not at seq %d", rec.Seq)
				}
			}
		}

		rep.Records++
		rep.LastSeq, rep.LastHash = rec.Seq, rec.Hash
		if rec.Checkpoint != nil {
			rep.Checkpoints++
			rep.LastCheckpoint = rec.Checkpoint
		}
		prevHash, want = rec.Hash, rec.Seq+1
	}
	if anchor != nil && rep.LastSeq <= anchor.Seq {
		lr.n++
		return fail(ProblemTruncated, "the file ends at seq %d; the anchor's checkpoint is record %d", rep.LastSeq, anchor.Seq+1)
	}
	return rep, nil
}

func sameCheckpoint(a, b Checkpoint) bool {
	return a.Seq == b.Seq && a.Hash == b.Hash && a.Time.Equal(b.Time) && a.KeyID == b.KeyID && a.Signature == b.Signature
}

// decodeLine parses one line (without its newline) and checks its hash.
// kind is "" for a good line, else ProblemMalformed or ProblemAltered, with
// detail saying why.
func decodeLine(line []byte) (rec Record, kind, detail string) {
	if len(line) > maxLineLen {
		return Record{}, ProblemMalformed, fmt.Sprintf("line longer than %d bytes", maxLineLen)
	}
	declared, computed, ok := lineHash(line)
	if !ok {
		return Record{}, ProblemMalformed, `line does not end with a "hash" member of 64 hex digits`
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return Record{}, ProblemMalformed, fmt.Sprintf("not a record: %v", err)
	}
	if dec.More() || rec.Hash != declared {
		return Record{}, ProblemMalformed, "not a single record"
	}
	if (rec.Type == TypeCheckpoint) != (rec.Checkpoint != nil) {
		return Record{}, ProblemMalformed, "checkpoint field and type disagree"
	}
	if declared != computed {
		return Record{}, ProblemAltered, fmt.Sprintf("content hashes to %s, the line says %s", computed, declared)
	}
	return rec, "", ""
}

// lineReader reads newline-terminated lines of any length, keeping at most
// maxLineLen+1 bytes of each.
type lineReader struct {
	br   *bufio.Reader
	n    int // lines returned so far
	buf  []byte
	peek []byte // a line read ahead by peekSeq, with its newline
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its newline, valid until the next
// call. torn reports a final line without a newline. It returns io.EOF at
// the end.
func (lr *lineReader) next() (line []byte, torn bool, err error) {
	if lr.peek != nil {
		line, lr.peek = lr.peek, nil
		lr.n++
		return line[:len(line)-1], false, nil
	}
	lr.buf, err = readLine(lr.br, lr.buf[:0])
	if err == io.EOF && len(lr.buf) == 0 {
		return nil, false, io.EOF
	}
	if err != nil && err != io.EOF {
		return nil, false, err
	}
	lr.n++
	if err == io.EOF {
		return lr.buf, true, nil
	}
	return lr.buf[:len(lr.buf)-1], false, nil
}

// peekSeq reads the next line ahead and returns its seq, if it has one.
func (lr *lineReader) peekSeq() (uint64, bool) {
	if lr.peek == nil {
		b, err := readLine(lr.br, nil)
		if err != nil {
			return 0, false
		}
		lr.peek = b
	}
	var r struct {
		Seq *uint64 `json:"seq"`
	}
	if json.Unmarshal(lr.peek, &r) != nil || r.Seq == nil {
		return 0, false
	}
	return *r.Seq, true
}

// readLine appends the next line of br, with its newline, to buf; at the
// end of the input it returns what is left and io.EOF. Past maxLineLen+1
// bytes it drops the rest of the line, which then fails to decode.
func readLine(br *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		s, err := br.ReadSlice('\n')
		if room := maxLineLen + 2 - len(buf); room > 0 {
			buf = append(buf, s[:min(len(s), room)]...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == nil && buf[len(buf)-1] != '\n' {
			buf = append(buf[:len(buf)-1], '\n') // a line cut short
		}
		return buf, err
	}
}

package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// tamperFixture returns the lines of a log of 14 records, a checkpoint every
// 3 requests, and the latest anchored checkpoint:
//
//	line/seq  1 2 3 4  5 6 7 8  9 10 11 12 13 14
//	          r r r cp r r r cp r r  r  cp r  r
//
// The anchor is the checkpoint of record 12, covering seq 11.
func tamperFixture(t *testing.T) ([][]byte, *Checkpoint) {
	t.Helper()
	f := &memFile{}
	var anchors []Checkpoint
	l := openLog(t, Options{File: f, CheckpointEvery: 3, Anchor: func(cp Checkpoint) error {
		anchors = append(anchors, cp)
		return nil
	}})
	for i := range 11 {
		mustAppend(t, l, req(i))
	}
	lines := splitLines(f.bytes())
	if len(lines) != 14 || len(anchors) != 3 || anchors[2].Seq != 11 {
		t.Fatalf("fixture: %d lines, anchors %+v", len(lines), anchors)
	}
	return lines, &anchors[2]
}

func decode(t *testing.T, line []byte) Record {
	t.Helper()
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// reencode edits the record of a line and recomputes its own hash, as
// anyone can.
func reencode(t *testing.T, line []byte, edit func(*Record)) []byte {
	t.Helper()
	r := decode(t, line)
	edit(&r)
	b, err := appendLine(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rechain recomputes prev_hash and hash of lines[from:] so that the chain
// links again, as anyone without the signing key can. With coverCheckpoints
// it also points each checkpoint at the new hashes, which the signature
// then no longer matches.
func rechain(t *testing.T, lines [][]byte, from int, coverCheckpoints bool) {
	t.Helper()
	prev := decode(t, lines[from-1]).Hash
	for i := from; i < len(lines); i++ {
		lines[i] = reencode(t, lines[i], func(r *Record) {
			r.PrevHash = prev
			if r.Checkpoint != nil && coverCheckpoints {
				r.Checkpoint.Hash = prev
			}
		})
		prev = decode(t, lines[i]).Hash
	}
}

func TestVerify(t *testing.T) {
	otherKey := testKey(2)
	cases := []struct {
		name      string
		tamper    func(t *testing.T, lines [][]byte) [][]byte // indexes are line-1
		useAnchor bool
		want      *Problem // Detail not compared
	}{
		{name: "intact", tamper: nil},
		{name: "intact with anchor", useAnchor: true},
		{
			name: "field edited",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[5] = bytes.Replace(lines[5], []byte(`"outcome":"success"`), []byte(`"outcome":"denied"`), 1)
				return lines
			},
			want: &Problem{Line: 6, Seq: 6, Kind: ProblemAltered},
		},
		{
			name: "record deleted in the middle",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				return slices.Delete(lines, 5, 6)
			},
			want: &Problem{Line: 6, Seq: 6, Kind: ProblemMissing},
		},
		{
			name: "first record deleted",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				return lines[1:]
			},
			want: &Problem{Line: 1, Seq: 1, Kind: ProblemMissing},
		},
		{
			name: "two records swapped",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[4], lines[5] = lines[5], lines[4]
				return lines
			},
			want: &Problem{Line: 5, Seq: 5, Kind: ProblemReordered},
		},
		{
			name: "distant records swapped",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[4], lines[9] = lines[9], lines[4]
				return lines
			},
			want: &Problem{Line: 5, Seq: 5, Kind: ProblemReordered},
		},
		{
			name: "record duplicated",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				return slices.Insert(lines, 6, lines[5])
			},
			want: &Problem{Line: 7, Seq: 7, Kind: ProblemReordered},
		},
		{
			name: "record replaced with its own hash recomputed",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[5] = reencode(t, lines[5], func(r *Record) { r.Outcome = OutcomeDenied })
				return lines
			},
			want: &Problem{Line: 7, Seq: 7, Kind: ProblemBrokenChain},
		},
		{
			// Why checkpoints are signed: the chain verifies again, but the
			// next checkpoint vouches for the old hash.
			name: "chain recomputed after an edit",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[5] = reencode(t, lines[5], func(r *Record) { r.Outcome = OutcomeDenied })
				rechain(t, lines, 6, false)
				return lines
			},
			want: &Problem{Line: 8, Seq: 8, Kind: ProblemBadSignature},
		},
		{
			name: "chain and checkpoints recomputed after an edit",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[5] = reencode(t, lines[5], func(r *Record) { r.Outcome = OutcomeDenied })
				rechain(t, lines, 6, true)
				return lines
			},
			want: &Problem{Line: 8, Seq: 8, Kind: ProblemBadSignature},
		},
		{
			name: "checkpoint signed by another key under this key's id",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[7] = reencode(t, lines[7], func(r *Record) {
					r.Checkpoint.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(otherKey, r.Checkpoint.SignedBytes()))
				})
				rechain(t, lines, 8, false)
				return lines
			},
			want: &Problem{Line: 8, Seq: 8, Kind: ProblemBadSignature},
		},
		{
			name: "checkpoint signed by another key under its id",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[7] = reencode(t, lines[7], func(r *Record) {
					r.Checkpoint.KeyID = KeyID(pubOf(otherKey))
					r.Checkpoint.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(otherKey, r.Checkpoint.SignedBytes()))
				})
				rechain(t, lines, 8, false)
				return lines
			},
			want: &Problem{Line: 8, Seq: 8, Kind: ProblemBadSignature},
		},
		{
			name: "checkpoint signature garbled",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[7] = reencode(t, lines[7], func(r *Record) { r.Checkpoint.Signature = "AAAA" })
				rechain(t, lines, 8, false)
				return lines
			},
			want: &Problem{Line: 8, Seq: 8, Kind: ProblemBadSignature},
		},
		{
			name: "records after the last checkpoint and before the anchor deleted",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				return lines[:9] // ends at seq 9, after checkpoint 8
			},
			useAnchor: true,
			want:      &Problem{Line: 10, Seq: 10, Kind: ProblemTruncated},
		},
		{
			name: "final records deleted with the anchored checkpoint",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				return lines[:11] // ends at seq 11, which the anchor covers
			},
			useAnchor: true,
			want:      &Problem{Line: 12, Seq: 12, Kind: ProblemTruncated},
		},
		{
			name: "anchored record rewritten",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[10] = reencode(t, lines[10], func(r *Record) { r.Outcome = OutcomeDenied })
				return lines[:11]
			},
			useAnchor: true,
			want:      &Problem{Line: 11, Seq: 11, Kind: ProblemTruncated},
		},
		{
			name: "anchored checkpoint replaced",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[11] = lines[7] // a genuine checkpoint, but not this one
				lines[11] = reencode(t, lines[11], func(r *Record) {
					c := decode(t, lines[10])
					r.Seq, r.PrevHash = 12, c.Hash
				})
				return lines[:12]
			},
			useAnchor: true,
			want:      &Problem{Line: 12, Seq: 12, Kind: ProblemBadSignature},
		},
		{
			name: "anchored checkpoint re-signed",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[11] = reencode(t, lines[11], func(r *Record) {
					r.Checkpoint.Time = r.Checkpoint.Time.Add(1)
					r.Checkpoint.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(testKey(1), r.Checkpoint.SignedBytes()))
				})
				rechain(t, lines, 12, false)
				return lines
			},
			useAnchor: true,
			want:      &Problem{Line: 12, Seq: 12, Kind: ProblemTruncated},
		},
		{
			// What the package comment warns about: records after the
			// latest anchored checkpoint are not protected against a cut.
			name: "records after the anchor deleted",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				return lines[:12]
			},
			useAnchor: true,
		},
		{
			name: "final records deleted without an anchor",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				return lines[:9]
			},
		},
		{
			name: "not JSON",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[5] = []byte("hello\n")
				return lines
			},
			want: &Problem{Line: 6, Seq: 6, Kind: ProblemMalformed},
		},
		{
			name: "empty line",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				return slices.Insert(lines, 3, []byte("\n"))
			},
			want: &Problem{Line: 4, Seq: 4, Kind: ProblemMalformed},
		},
		{
			name: "unknown field added and hash recomputed",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[5] = fixHash(t, bytes.Replace(lines[5], []byte(`{"seq"`), []byte(`{"x":1,"seq"`), 1))
				return lines
			},
			want: &Problem{Line: 6, Seq: 6, Kind: ProblemMalformed},
		},
		{
			name: "torn final line",
			tamper: func(t *testing.T, lines [][]byte) [][]byte {
				lines[13] = lines[13][:40]
				return lines
			},
			want: &Problem{Line: 14, Seq: 14, Kind: ProblemMalformed},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines, anchor := tamperFixture(t)
			if c.tamper != nil {
				lines = c.tamper(t, lines)
			}
			if !c.useAnchor {
				anchor = nil
			}
			rep := verifyBytes(t, bytes.Join(lines, nil), pubOf(testKey(1)), anchor)
			got := rep.Problem
			if got != nil {
				t.Logf("problem: %v", got)
			}
			switch {
			case c.want == nil && got != nil:
				t.Fatalf("Verify found %v, want none", got)
			case c.want != nil && got == nil:
				t.Fatalf("Verify found nothing, want %s at line %d", c.want.Kind, c.want.Line)
			case c.want != nil && (got.Line != c.want.Line || got.Seq != c.want.Seq || got.Kind != c.want.Kind):
				t.Fatalf("Verify found %s at line %d seq %d, want %s at line %d seq %d",
					got.Kind, got.Line, got.Seq, c.want.Kind, c.want.Line, c.want.Seq)
			}
			if c.want != nil && rep.Records != c.want.Line-1 {
				t.Errorf("Records = %d, want the %d lines before the problem", rep.Records, c.want.Line-1)
			}
		})
	}
}

// fixHash sets the hash at the end of a line to the hash of its content.
func fixHash(t *testing.T, line []byte) []byte {
	t.Helper()
	body := bytes.TrimSuffix(line, []byte("\n"))
	_, computed, ok := lineHash(body)
	if !ok {
		t.Fatalf("not a record line: %s", line)
	}
	out := append(bytes.Clone(body[:len(body)-hashSuffixLen+len(hashKey)]), computed...)
	return append(out, "\"}\n"...)
}

func TestVerifyReport(t *testing.T) {
	lines, anchor := tamperFixture(t)
	rep := verifyBytes(t, bytes.Join(lines, nil), pubOf(testKey(1)), anchor)
	last := decode(t, lines[13])
	if rep.Problem != nil || rep.Records != 14 || rep.Checkpoints != 3 || rep.LastSeq != 14 || rep.LastHash != last.Hash {
		t.Errorf("Report = %+v", rep)
	}
	if rep.LastCheckpoint == nil || !sameCheckpoint(*rep.LastCheckpoint, *anchor) {
		t.Errorf("LastCheckpoint = %+v, want %+v", rep.LastCheckpoint, anchor)
	}
}

func TestVerifyEmpty(t *testing.T) {
	rep := verifyBytes(t, nil, pubOf(testKey(1)), nil)
	if rep.Problem != nil || rep.Records != 0 {
		t.Errorf("empty log: %+v", rep)
	}
	_, anchor := tamperFixture(t)
	rep = verifyBytes(t, nil, pubOf(testKey(1)), anchor)
	if p := rep.Problem; p == nil || p.Kind != ProblemTruncated || p.Line != 1 || p.Seq != 1 {
		t.Errorf("empty log with an anchor: %v", p)
	}
}

func TestVerifyErrors(t *testing.T) {
	lines, anchor := tamperFixture(t)
	log := bytes.Join(lines, nil)
	if _, err := Verify(bytes.NewReader(log), pubOf(testKey(2)), anchor); err == nil {
		t.Error("Verify accepted an anchor signed by another key")
	}
	forged := *anchor
	forged.Seq++
	if _, err := Verify(bytes.NewReader(log), pubOf(testKey(1)), &forged); err == nil {
		t.Error("Verify accepted a forged anchor")
	}
	if _, err := Verify(bytes.NewReader(log), nil, nil); err == nil {
		t.Error("Verify accepted no key")
	}
	// Another key: the first checkpoint fails.
	rep := verifyBytes(t, log, pubOf(testKey(2)), nil)
	if p := rep.Problem; p == nil || p.Kind != ProblemBadSignature || p.Line != 4 {
		t.Errorf("wrong key: %v", p)
	}
}

func TestVerifyLongLine(t *testing.T) {
	lines, _ := tamperFixture(t)
	lines[2] = append([]byte(strings.Repeat("x", maxLineLen+10)), '\n')
	rep := verifyBytes(t, bytes.Join(lines, nil), pubOf(testKey(1)), nil)
	if p := rep.Problem; p == nil || p.Kind != ProblemMalformed || p.Line != 3 {
		t.Errorf("long line: %v", p)
	}
}

func FuzzVerify(f *testing.F) {
	golden := must(readGolden())
	f.Add(golden)
	lines := splitLines(golden)
	f.Add(bytes.Join(lines[:3], nil))
	f.Add(lines[3])
	f.Add([]byte("{}\n"))
	pub := pubOf(testKey(1))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := Verify(bytes.NewReader(b), pub, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Problem == nil && rep.Records != bytes.Count(b, []byte("\n")) {
			t.Fatalf("intact log of %d lines reports %d records", bytes.Count(b, []byte("\n")), rep.Records)
		}
		if _, _, err := Search(bytes.NewReader(b), Filter{}, 10, 0); err != nil {
			t.Fatal(err)
		}
	})
}

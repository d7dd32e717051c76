package audit

import (
	"encoding/json"
	"io"
	"strings"
	"time"
)

// Filter selects records for Search. Empty fields match anything.
type Filter struct {
	// Principal matches a record's PrincipalARN or its AccessKeyID.
	Principal string
	// SecretARN matches a record's SecretARN exactly when it is an ARN;
	// otherwise it is a secret name, and matches records whose secret ARN
	// names that secret (arn:…:secret:NAME-XXXXXX), or whose SecretARN is
	// that name (requests for secrets that do not exist).
	SecretARN string
	EventName string
	Outcome   string
	// Start and End bound Time: Start <= Time < End. Zero is unbounded.
	Start, End time.Time
	// Type matches a record's type. Empty matches every type but
	// checkpoints.
	Type string
}

// DefaultSearchLimit is the limit Search uses when given none.
const DefaultSearchLimit = 100

// Search reads a log from r and returns, oldest first, up to limit records
// (DefaultSearchLimit when limit <= 0) with Seq > after that match f. next is
// the Seq of the last record returned when limit records were returned,
// and 0 otherwise: pass it as after to continue. A call that continues may
// return no records.
//
// Search does not verify: it skips lines that do not decode, and a final
// line without a newline. Use Verify to know whether the log can be trusted.
func Search(r io.Reader, f Filter, limit int, after uint64) (recs []Record, next uint64, err error) {
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	lr := newLineReader(r)
	for {
		line, torn, err := lr.next()
		if err == io.EOF || torn {
			return recs, 0, nil
		}
		if err != nil {
			return nil, 0, err
		}
		var rec Record
		if json.Unmarshal(line, &rec) != nil || rec.Seq <= after || !f.match(&rec) {
			continue
		}
		recs = append(recs, rec)
		if len(recs) == limit {
			return recs, rec.Seq, nil
		}
	}
}

func (f *Filter) match(r *Record) bool {
	switch {
	case f.Type == "" && r.Type == TypeCheckpoint,
		f.Type != "" && r.Type != f.Type,
		f.Principal != "" && r.PrincipalARN != f.Principal && r.AccessKeyID != f.Principal,
		f.SecretARN != "" && !matchSecret(f.SecretARN, r.SecretARN),
		f.EventName != "" && r.EventName != f.EventName,
		f.Outcome != "" && r.Outcome != f.Outcome,
		!f.Start.IsZero() && r.Time.Before(f.Start),
		!f.End.IsZero() && !r.Time.Before(f.End):
		return false
	}
	return true
}

func matchSecret(filter, got string) bool {
	if filter == got {
		return true
	}
	if strings.HasPrefix(filter, "arn:") {
		return false
	}
	tail, ok := secretTail(got)
	if !ok {
		return false
	}
	if tail == filter {
		return true // the ARN of a secret that does not exist has no suffix
	}
	n := len(tail) - 7
	return n > 0 && tail[n] == '-' && tail[:n] == filter
}

// secretTail returns what follows ":secret:" in a secret ARN: the name and,
// for a secret that exists, the hyphen and six characters Secrets Manager
// appends.
func secretTail(a string) (string, bool) {
	if !strings.HasPrefix(a, "arn:") {
		return "", false
	}
	i := strings.Index(a, ":secret:")
	if i < 0 {
		return "", false
	}
	return a[i+len(":secret:"):], true
}

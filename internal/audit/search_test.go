package audit

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

// searchFixture returns a log of 8 requests, one a minute from t0, with a
// checkpoint after every 3:
//
//	seq  1    2    3    4  5    6    7    8  9    10   11
//	     r0   r1   r2   cp r3   r4   r5   cp r6   r7   cp(Close)
//
// Requests alternate between principals u0 and u1 and between secrets
// app/db0 and app/db1; r5 is denied, r6 is a rotation of a secret named by
// its name alone.
func searchFixture(t *testing.T) []byte {
	t.Helper()
	f := &memFile{}
	l := openLog(t, Options{File: f, CheckpointEvery: 3})
	for i := range 8 {
		r := req(i)
		r.Time = t0.Add(time.Duration(i) * time.Minute)
		switch i {
		case 5:
			r.Outcome, r.ErrorCode = OutcomeDenied, "AccessDeniedException"
		case 6:
			r.Type, r.EventName, r.SecretARN = TypeRotation, "RotationSucceeded", "app/db0"
		}
		mustAppend(t, l, r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return f.bytes()
}

func seqsOf(recs []Record) []uint64 {
	var s []uint64
	for _, r := range recs {
		s = append(s, r.Seq)
	}
	return s
}

func TestSearch(t *testing.T) {
	log := searchFixture(t)
	cases := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"everything but checkpoints", Filter{}, []uint64{1, 2, 3, 5, 6, 7, 9, 10}},
		{"checkpoints", Filter{Type: TypeCheckpoint}, []uint64{4, 8, 11}},
		{"rotations", Filter{Type: TypeRotation}, []uint64{9}},
		{"principal ARN", Filter{Principal: "arn:aws:iam::000000000000:user/u1"}, []uint64{2, 5, 7, 10}},
		{"access key id", Filter{Principal: "AKIA0000000000000000"}, []uint64{1, 3, 6, 9}},
		{"secret ARN", Filter{SecretARN: "arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db0-AbCdEf"}, []uint64{1, 3, 6}},
		{"secret name", Filter{SecretARN: "app/db0"}, []uint64{1, 3, 6, 9}},
		{"secret name is not a prefix", Filter{SecretARN: "app/db"}, nil},
		{"other ARN", Filter{SecretARN: "arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db0"}, nil},
		{"event", Filter{EventName: "PutSecretValue"}, []uint64{2, 6, 10}},
		{"outcome", Filter{Outcome: OutcomeDenied}, []uint64{7}},
		{"time range", Filter{Start: t0.Add(2 * time.Minute), End: t0.Add(5 * time.Minute)}, []uint64{3, 5, 6}},
		{"start only", Filter{Start: t0.Add(6 * time.Minute)}, []uint64{9, 10}},
		{"combined", Filter{Principal: "arn:aws:iam::000000000000:user/u1", EventName: "GetSecretValue"}, []uint64{5}},
		{"combined no match", Filter{Principal: "arn:aws:iam::000000000000:user/u1", EventName: "GetSecretValue", Outcome: OutcomeDenied}, nil},
		{"combined match", Filter{SecretARN: "app/db1", EventName: "rotor.CreateUser"}, []uint64{7}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recs, next, err := Search(bytes.NewReader(log), c.f, 100, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := seqsOf(recs); !slices.Equal(got, c.want) || next != 0 {
				t.Errorf("Search = %v, next %d; want %v, 0", got, next, c.want)
			}
		})
	}
}

func TestSearchPaging(t *testing.T) {
	log := searchFixture(t)
	var pages [][]uint64
	after := uint64(0)
	for range 10 {
		recs, next, err := Search(bytes.NewReader(log), Filter{}, 3, after)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, seqsOf(recs))
		if next == 0 {
			break
		}
		after = next
	}
	want := [][]uint64{{1, 2, 3}, {5, 6, 7}, {9, 10}}
	if !slices.EqualFunc(pages, want, slices.Equal) {
		t.Errorf("pages %v, want %v", pages, want)
	}

	recs, next, err := Search(bytes.NewReader(log), Filter{}, 0, 7)
	if err != nil || !slices.Equal(seqsOf(recs), []uint64{9, 10}) || next != 0 {
		t.Errorf("after 7 with the default limit: %v, %d, %v", seqsOf(recs), next, err)
	}
}

func TestSearchSkipsDamage(t *testing.T) {
	lines := splitLines(searchFixture(t))
	lines[1] = []byte("garbage\n")
	lines[len(lines)-1] = lines[len(lines)-1][:30] // torn
	recs, _, err := Search(bytes.NewReader(bytes.Join(lines, nil)), Filter{Type: TypeCheckpoint}, 10, 0)
	if err != nil || !slices.Equal(seqsOf(recs), []uint64{4, 8}) {
		t.Errorf("Search = %v, %v", seqsOf(recs), err)
	}
}

func TestMatchSecret(t *testing.T) {
	const prefix = "arn:aws:secretsmanager:us-east-1:000000000000:secret:"
	for _, tt := range []struct {
		filter, got string
		want        bool
	}{
		{"prod/db", prefix + "prod/db-AbCdEf", true},
		{"a-b", prefix + "a-b-AbCdEf", true},
		{"short", prefix + "short", true},
		// A secret that does not exist is recorded without a suffix, and a
		// name whose last seven characters look like one still matches.
		{"my-secret", prefix + "my-secret", true},
		{"my", prefix + "my-secret", true},
		{"prod", prefix + "prod/db-AbCdEf", false},
		{prefix + "prod/db-AbCdEf", prefix + "prod/db-AbCdEf", true},
		{prefix + "prod/db", prefix + "prod/db-AbCdEf", false},
		{"prod/db", "prod/db", true},
		{"prod/db", "", false},
	} {
		if got := matchSecret(tt.filter, tt.got); got != tt.want {
			t.Errorf("matchSecret(%q, %q) = %v, want %v", tt.filter, tt.got, got, tt.want)
		}
	}
}

package arn

import (
	"strings"
	"testing"
)

func TestParseSecretID(t *testing.T) {
	cases := []struct {
		in   string
		ok   bool
		want SecretID
	}{
		{"prod/db", true, SecretID{Tail: "prod/db"}},
		{"arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-AbCdEf", true,
			SecretID{IsARN: true, Region: "us-east-1", Account: "000000000000", Tail: "prod/db-AbCdEf"}},
		{"arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db", true,
			SecretID{IsARN: true, Region: "us-east-1", Account: "000000000000", Tail: "prod/db"}},
		{"arn:aws:secretsmanager:us-east-1:000000000000:secret:a:b", true,
			SecretID{IsARN: true, Region: "us-east-1", Account: "000000000000", Tail: "a:b"}},
		{"arn:aws:secretsmanager:us-east-1:000000000000:secret:", false, SecretID{}},
		{"arn:aws:lambda:us-east-1:000000000000:function:f", false, SecretID{}},
		{"arn:aws:secretsmanager:us-east-1:000000000000:other:x", false, SecretID{}},
		{"arn:", false, SecretID{}},
		{"arn:aws", false, SecretID{}},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, ok := ParseSecretID(c.in)
			if ok != c.ok || got != c.want {
				t.Fatalf("ParseSecretID(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	for _, n := range []string{"a", "prod/app/db", "A-Z_a+z=0.9@x", strings.Repeat("n", 512)} {
		if !ValidName(n) {
			t.Errorf("ValidName(%q) = false", n)
		}
	}
	for _, n := range []string{"", "space here", "semi;colon", "ümlaut", strings.Repeat("n", 513), "a*b", "a!b"} {
		if ValidName(n) {
			t.Errorf("ValidName(%q) = true", n)
		}
	}
}

func TestSecretARNRoundTrip(t *testing.T) {
	suffix, err := NewSuffix(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(suffix) != SuffixLen || strings.Trim(suffix, suffixAlphabet) != "" {
		t.Fatalf("suffix %q", suffix)
	}
	a := Secret("eu-west-1", "123456789012", "x/y", suffix)
	id, ok := ParseSecretID(a)
	if !ok || id.Tail != "x/y-"+suffix || id.Region != "eu-west-1" || id.Account != "123456789012" {
		t.Fatalf("ParseSecretID(%q) = %+v, %v", a, id, ok)
	}
}

func TestParseFunction(t *testing.T) {
	cases := map[string]string{
		"arn:aws:lambda:us-east-1:000000000000:function:rotor-postgres-single-user":         "rotor-postgres-single-user",
		"arn:aws:lambda:us-east-1:000000000000:function:rotor-postgres-single-user:$LATEST": "rotor-postgres-single-user",
		"arn:aws:lambda:us-east-1:000000000000:function:":                                   "",
		"arn:aws:secretsmanager:us-east-1:000000000000:secret:x":                            "",
	}
	for in, want := range cases {
		got, ok := ParseFunction(in)
		if got != want || ok != (want != "") {
			t.Errorf("ParseFunction(%q) = %q, %v", in, got, ok)
		}
	}
	if f := Function("us-east-1", "000000000000", "f"); f != "arn:aws:lambda:us-east-1:000000000000:function:f" {
		t.Errorf("Function = %q", f)
	}
}

func FuzzParseSecretID(f *testing.F) {
	for _, s := range []string{
		"prod/db", "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-AbCdEf",
		"arn:aws:secretsmanager:us-east-1:000000000000:secret:prod", "arn:::::", "arn:aws:lambda:r:a:function:f:q",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := ParseSecretID(s)
		if !ok {
			return
		}
		if !id.IsARN && id.Tail != s {
			t.Fatalf("a name must be its own tail: %q -> %+v", s, id)
		}
		if id.IsARN && (id.Tail == "" || !strings.HasSuffix(s, id.Tail)) {
			t.Fatalf("bad tail for %q: %+v", s, id)
		}
		if a, ok := Parse(s); ok && a.String() != s {
			t.Fatalf("Parse/String round trip: %q -> %q", s, a.String())
		}
		ValidName(s)
		ParseFunction(s)
	})
}

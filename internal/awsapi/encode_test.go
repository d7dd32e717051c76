package awsapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestAppendEpoch(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{"milliseconds", time.UnixMilli(1523477145713), "1523477145.713"},
		{"whole seconds", time.Unix(946684800, 0), "946684800"},
		{"trailing zero dropped", time.UnixMilli(1523477145710), "1523477145.71"},
		{"two trailing zeros dropped", time.UnixMilli(1523477145700), "1523477145.7"},
		{"leading zeros kept", time.UnixMilli(1523477145005), "1523477145.005"},
		{"sub-millisecond truncated", time.Unix(1523477145, 713999999), "1523477145.713"},
		{"only microseconds", time.Unix(1523477145, 999), "1523477145"},
		{"epoch", time.Unix(0, 0), "0"},
		{"before epoch", time.UnixMilli(-1500), "-1.5"},
		{"just before epoch", time.UnixMilli(-5), "-0.005"},
		{"zone does not matter", time.UnixMilli(1523477145713).In(time.FixedZone("x", 5*3600)), "1523477145.713"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(appendEpoch(nil, tt.t))
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			b, err := json.Marshal(epochTime(tt.t))
			if err != nil || string(b) != tt.want {
				t.Errorf("json.Marshal = %s, %v", b, err)
			}
		})
	}
}

func TestEpochOmitZero(t *testing.T) {
	type s struct {
		A epochTime `json:",omitzero"`
		B epochTime `json:",omitzero"`
	}
	b, err := json.Marshal(s{B: epochTime(time.Unix(1, 0))})
	if err != nil || string(b) != `{"B":1}` {
		t.Errorf("got %s, %v", b, err)
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", `""`},
		{"plain", `"plain"`},
		{`q"b\`, `"q\"b\\"`},
		{"\n\r\t\x00\x1f\x7f", `"\n\r\t\u0000\u001f` + "\x7f" + `"`},
		{"<&>", `"<&>"`},
		{"héllo ☃ 𝄞", `"héllo ☃ 𝄞"`},
		{"bad \xff utf8 \xe2\x82", `"bad \ufffd utf8 \ufffd\ufffd"`},
		{"\u2028", "\"\u2028\""},
	}
	for _, tt := range tests {
		if got := string(appendString(nil, tt.in)); got != tt.want {
			t.Errorf("appendString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if got := string(appendString(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("appendString([]byte(%q)) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzAppendString checks the hand-written encoder against encoding/json:
// the output is valid JSON that decodes to the input (with invalid UTF-8
// replaced, as encoding/json replaces it).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\x00\xff", "☃", `{"SecretString":"x"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("appendString(%q) = %s: invalid JSON: %v", s, b, err)
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if !utf8.ValidString(s) {
			// encoding/json replaces each invalid byte, not each run.
			var sb strings.Builder
			for i := 0; i < len(s); {
				r, n := utf8.DecodeRuneInString(s[i:])
				sb.WriteRune(r)
				i += n
			}
			want = sb.String()
		}
		if got != want {
			t.Fatalf("round trip of %q gave %q, want %q", s, got, want)
		}
	})
}

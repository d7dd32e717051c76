package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSignMatchesTheDocumentedScheme(t *testing.T) {
	secret := []byte("whsec_test")
	ts := time.Unix(1700000000, 999)
	body := []byte(`{"id":"x"}`)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("1700000000." + string(body)))
	want := "v1=" + hex.EncodeToString(m.Sum(nil))
	if got := Sign(secret, ts, body); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func signed(secret []byte, ts time.Time, body []byte) http.Header {
	h := http.Header{}
	h.Set(headerTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(headerSignature, Sign(secret, ts, body))
	return h
}

func TestVerify(t *testing.T) {
	secret := []byte("whsec_test")
	body := []byte(`{"id":"6a7e8feb","detail":{}}`)
	now := time.Unix(1700000000, 0)
	cases := []struct {
		name    string
		header  http.Header
		body    []byte
		secret  []byte
		wantErr string // "" = valid
	}{
		{"valid", signed(secret, now, body), body, secret, ""},
		{"valid, 4 min old", signed(secret, now.Add(-4*time.Minute), body), body, secret, ""},
		{"tampered body", signed(secret, now, body), []byte(`{"id":"6a7e8feb","detail":{"x":1}}`), secret, "signature mismatch"},
		{"wrong secret", signed([]byte("other"), now, body), body, secret, "signature mismatch"},
		{"stale timestamp", signed(secret, now.Add(-6*time.Minute), body), body, secret, "tolerance"},
		{"future timestamp", signed(secret, now.Add(6*time.Minute), body), body, secret, "tolerance"},
		{"timestamp changed", func() http.Header {
			h := signed(secret, now.Add(-time.Hour), body)
			h.Set(headerTimestamp, strconv.FormatInt(now.Unix(), 10)) // refresh a replayed request
			return h
		}(), body, secret, "signature mismatch"},
		{"rollover list", func() http.Header {
			h := signed(secret, now, body)
			h.Set(headerSignature, "v0=abc, v1=deadbeef, "+h.Get(headerSignature))
			return h
		}(), body, secret, ""},
		{"no timestamp", http.Header{headerSignature: {Sign(secret, now, body)}}, body, secret, "missing X-Rotor-Timestamp"},
		{"malformed timestamp", http.Header{headerTimestamp: {"soon"}, headerSignature: {Sign(secret, now, body)}}, body, secret, "malformed"},
		{"no signature", http.Header{headerTimestamp: {"1700000000"}}, body, secret, "missing X-Rotor-Signature"},
		{"bad hex", http.Header{headerTimestamp: {"1700000000"}, headerSignature: {"v1=zz"}}, body, secret, "signature mismatch"},
		{"empty secret", signed(nil, now, body), body, nil, "empty secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(c.secret, c.header, c.body, now, 5*time.Minute)
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("Verify = %v, want nil", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("Verify = %v, want an error containing %q", err, c.wantErr)
			}
		})
	}
}

func TestVerifyDefaultTolerance(t *testing.T) {
	secret, body, now := []byte("k"), []byte("{}"), time.Unix(1700000000, 0)
	if err := Verify(secret, signed(secret, now.Add(-299*time.Second), body), body, now, 0); err != nil {
		t.Errorf("299 s old: %v", err)
	}
	if err := Verify(secret, signed(secret, now.Add(-301*time.Second), body), body, now, 0); err == nil {
		t.Error("301 s old: accepted")
	}
}

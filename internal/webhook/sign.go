package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The request headers of a delivery.
const (
	headerEventID   = "X-Rotor-Event-Id"
	headerTimestamp = "X-Rotor-Timestamp"
	headerSignature = "X-Rotor-Signature"
	headerAttempt   = "X-Rotor-Delivery-Attempt"
	userAgent       = "rotor-webhook/1"
)

// defaultTolerance is Verify's tolerance when given 0.
const defaultTolerance = 5 * time.Minute

// Sign returns the X-Rotor-Signature value of a delivery of body at ts:
// "v1=" and the hex HMAC-SHA256, keyed with secret, of the Unix seconds of
// ts, a dot and body.
func Sign(secret []byte, ts time.Time, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, strconv.FormatInt(ts.Unix(), 10), body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a delivery for a receiver: header holds the request's
// headers and body its raw bytes. It returns nil when one "v1=" value of
// X-Rotor-Signature is the HMAC-SHA256 keyed with secret of the
// X-Rotor-Timestamp value, a dot and body (compared in constant time) and
// that timestamp is within tolerance of now, in either direction
// (tolerance 0: 5 minutes). Any other outcome is an error that says which
// check failed; a receiver answers it with 400 or 401 and does not process
// the event.
func Verify(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return errors.New("webhook: empty secret")
	}
	ts := header.Get(headerTimestamp)
	if ts == "" {
		return errors.New("webhook: missing " + headerTimestamp + " header")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 {
		return errors.New("webhook: malformed " + headerTimestamp + " header")
	}
	values := header.Values(headerSignature)
	if len(values) == 0 {
		return errors.New("webhook: missing " + headerSignature + " header")
	}
	want := mac(secret, ts, body)
	matched := false
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			hexSig, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
			if !ok {
				continue // another scheme
			}
			got, err := hex.DecodeString(hexSig)
			if err == nil && hmac.Equal(got, want) {
				matched = true
			}
		}
	}
	if !matched {
		return errors.New("webhook: signature mismatch")
	}
	if tolerance <= 0 {
		tolerance = defaultTolerance
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("webhook: timestamp outside the tolerance (replay or clock skew)")
	}
	return nil
}

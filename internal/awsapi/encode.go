package awsapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/rotor-secrets/rotor/internal/secrets"
)

// appender is a response that encodes itself without reflection; the hot
// path (GetSecretValue) uses it.
type appender interface {
	appendJSON(dst []byte) []byte
	sizeHint() int
}

// encodeBody encodes a response body. HTML characters are not escaped: AWS
// does not escape them and a secret value should arrive byte for byte.
func encodeBody(v any) ([]byte, error) {
	if a, ok := v.(appender); ok {
		return a.appendJSON(make([]byte, 0, a.sizeHint())), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// epochTime is a timestamp as AWS JSON carries it: seconds since the Unix
// epoch as a number, with a millisecond fraction when there is one
// (1523477145.713, 946684800). The zero time is omitted by omitzero.
type epochTime time.Time

func (t epochTime) IsZero() bool { return time.Time(t).IsZero() }

func (t epochTime) MarshalJSON() ([]byte, error) {
	return appendEpoch(make([]byte, 0, 24), time.Time(t)), nil
}

// appendEpoch appends t as epoch seconds with up to three fractional
// digits, trailing zeros dropped; sub-millisecond precision is truncated.
func appendEpoch(dst []byte, t time.Time) []byte {
	ms := t.UnixMilli()
	if ms < 0 {
		dst = append(dst, '-')
		ms = -ms
	}
	dst = strconv.AppendInt(dst, ms/1000, 10)
	frac := ms % 1000
	if frac == 0 {
		return dst
	}
	digits := [3]byte{byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 3
	for digits[n-1] == '0' {
		n--
	}
	dst = append(dst, '.')
	return append(dst, digits[:n]...)
}

const hexDigits = "0123456789abcdef"

// safeASCII[c] reports whether byte c < utf8.RuneSelf goes into a JSON
// string unescaped.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a JSON string. Quotes, backslashes and control
// characters are escaped; invalid UTF-8 becomes U+FFFD, as encoding/json
// does, so the output is always valid JSON.
func appendString[S string | []byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safeASCII[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		var buf [utf8.UTFMax]byte
		r, size := utf8.DecodeRune(buf[:copy(buf[:], s[i:])])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// secretValueOut is a secrets.SecretValue on the wire: the GetSecretValue
// response and an entry of BatchGetSecretValue's SecretValues. The value is
// revealed here, at encoding time, and nowhere else.
type secretValueOut struct {
	v *secrets.SecretValue
}

func (o secretValueOut) sizeHint() int {
	n := 128 + len(o.v.ARN) + len(o.v.Name) + len(o.v.VersionID)
	for _, s := range o.v.VersionStages {
		n += len(s) + 3
	}
	// Worst case for a string is 6 bytes per byte (\u00XX), but values are
	// mostly printable; base64 is 4/3.
	return n + o.v.Value.Len()*4/3 + 8
}

func (o secretValueOut) appendJSON(b []byte) []byte {
	v := o.v
	b = append(b, '{')
	first := true
	field := func(name string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	if v.ARN != "" {
		field("ARN")
		b = appendString(b, v.ARN)
	}
	if v.Name != "" {
		field("Name")
		b = appendString(b, v.Name)
	}
	if v.VersionID != "" {
		field("VersionId")
		b = appendString(b, v.VersionID)
	}
	if !v.Value.IsZero() {
		if v.Value.Binary() {
			field("SecretBinary")
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, v.Value.Reveal())
			b = append(b, '"')
		} else {
			field("SecretString")
			b = appendString(b, v.Value.Reveal())
		}
	}
	if len(v.VersionStages) > 0 {
		field("VersionStages")
		b = append(b, '[')
		for i, s := range v.VersionStages {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	}
	if !v.CreatedDate.IsZero() {
		field("CreatedDate")
		b = appendEpoch(b, v.CreatedDate)
	}
	return append(b, '}')
}

// MarshalJSON lets encoding/json embed the entry in BatchGetSecretValue.
func (o secretValueOut) MarshalJSON() ([]byte, error) {
	return o.appendJSON(make([]byte, 0, o.sizeHint())), nil
}

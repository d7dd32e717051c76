package secrets

import (
	"bytes"
	"fmt"
	"log/slog"
)

// Value is a secret value: the bytes of a SecretString or SecretBinary.
// It redacts itself in every printing path (fmt verbs, slog, JSON), so a
// Value that reaches a log line or an error shows "[REDACTED]". Only Reveal
// returns the bytes.
type Value struct {
	b      []byte
	binary bool
}

// StringValue returns a Value holding a SecretString.
func StringValue(s string) Value { return Value{b: []byte(s)} }

// BinaryValue returns a Value holding a SecretBinary. The slice is not copied.
func BinaryValue(b []byte) Value { return Value{b: b, binary: true} }

// IsZero reports whether no value is set.
func (v Value) IsZero() bool { return v.b == nil }

// Binary reports whether the value is a SecretBinary.
func (v Value) Binary() bool { return v.binary }

// Len is the value's size in bytes.
func (v Value) Len() int { return len(v.b) }

// Reveal returns the value's bytes. Callers must not log or retain them.
func (v Value) Reveal() []byte { return v.b }

// Equal reports whether two values have the same kind and bytes.
func (v Value) Equal(o Value) bool { return v.binary == o.binary && bytes.Equal(v.b, o.b) }

const redacted = "[REDACTED]"

func (Value) String() string                { return redacted }
func (Value) GoString() string              { return redacted }
func (Value) LogValue() slog.Value          { return slog.StringValue(redacted) }
func (Value) MarshalJSON() ([]byte, error)  { return []byte(`"` + redacted + `"`), nil }
func (Value) MarshalText() ([]byte, error)  { return []byte(redacted), nil }
func (Value) Format(f fmt.State, verb rune) { f.Write([]byte(redacted)) }

// NewValue builds the value of a request that may carry a SecretString, a
// SecretBinary, both or neither. Both is an InvalidParameter error; neither
// returns the zero Value.
func NewValue(str *string, bin []byte) (Value, error) {
	switch {
	case str != nil && bin != nil:
		return Value{}, errorf(KindInvalidParameter, "You can't specify both a binary secret value and a string secret value in the same secret.")
	case str != nil:
		return Value{b: []byte(*str)}, nil
	case bin != nil:
		return Value{b: bin, binary: true}, nil
	}
	return Value{}, nil
}

package awsapi

import (
	"errors"
	"testing"

	"github.com/rotor-secrets/rotor/internal/secrets"
)

// FuzzDecodeRequest feeds arbitrary bytes to every operation's decoder,
// streaming ones included (JSON into its wire shape, then conversion to the
// service input). It must
// never panic, and every failure must be one the error mapping answers as a
// client error.
func FuzzDecodeRequest(f *testing.F) {
	for _, b := range goldenRequests(f) {
		f.Add(b)
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"SecretBinary":"@@"}`, `{"SecretString":"","SecretBinary":""}`,
		`{"MaxResults":1e999}`, `{"Tags":[null,{"Key":null}]}`, `{"Filters":[{"Values":[1]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		decoders := make(map[string]func([]byte) (any, error), len(operations)+len(streams))
		for target, op := range operations {
			decoders[target] = op.decode
		}
		for target, op := range streams {
			decoders[target] = op.decode
		}
		for target, decode := range decoders {
			in, err := decode(body)
			if err == nil {
				if in == nil {
					t.Fatalf("%s: nil input without error", target)
				}
				continue
			}
			var re *requestError
			var se *secrets.Error
			if !errors.As(err, &re) && !(errors.As(err, &se) && se.Kind == secrets.KindInvalidParameter) {
				t.Fatalf("%s: unexpected error type %T: %v", target, err, err)
			}
			if we := wireErrorOf(err, "id"); we.Status != 400 {
				t.Fatalf("%s: decode error maps to %d %s", target, we.Status, we.Code)
			}
		}
	})
}

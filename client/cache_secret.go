package client

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Secret redacts its value wherever it is printed, logged or encoded: the
// methods below have value receivers so that they apply to Secret and
// *Secret alike. Read the value from the SecretString and SecretBinary
// fields.

// Format prints the secret as String does, for every verb, so that %v, %+v,
// %#v and %s never show the value.
func (s Secret) Format(f fmt.State, verb rune) {
	fmt.Fprint(f, s.describe())
}

// GoString describes the secret without its value.
func (s Secret) GoString() string { return s.describe() }

// LogValue logs the secret's identity without its value.
func (s Secret) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("arn", s.ARN),
		slog.String("name", s.Name),
		slog.String("version_id", s.VersionID),
		slog.Any("version_stages", s.VersionStages),
		slog.String("value", "[REDACTED]"),
	)
}

// MarshalJSON encodes the secret's identity; the value is redacted.
func (s Secret) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ARN           string   `json:"ARN,omitempty"`
		Name          string   `json:"Name,omitempty"`
		VersionID     string   `json:"VersionId,omitempty"`
		VersionStages []string `json:"VersionStages,omitempty"`
		Value         string   `json:"Value"`
	}{s.ARN, s.Name, s.VersionID, s.VersionStages, "[REDACTED]"})
}

func (s Secret) describe() string { return (&s).String() }

package secrets

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/rotor-secrets/rotor/internal/arn"
)

// Limits from the AWS Secrets Manager service model and quotas.
const (
	maxSecretIDLen    = 2048
	minTokenLen       = 32
	maxTokenLen       = 64
	maxValueLen       = 65536
	maxDescriptionLen = 2048
	maxStageLen       = 256
	maxStagesPerCall  = 20
	maxLabelsPerVer   = 20
	maxTags           = 50
	maxTagKeyLen      = 128
	maxTagValueLen    = 256
	maxPolicyLen      = 20480
	maxDeprecated     = 100
	maxFilters        = 10
	maxFilterValues   = 10
	maxFilterValueLen = 512
	maxListResults    = 100
	maxBatchIDs       = 20
	maxBatchResults   = 20
	maxNextTokenLen   = 4096
	minRecoveryDays   = 7
	maxRecoveryDays   = 30
	defaultRecovery   = 30
)

// Staging labels with a meaning of their own.
const (
	StageCurrent  = "AWSCURRENT"
	StagePrevious = "AWSPREVIOUS"
	StagePending  = "AWSPENDING"
)

// validation returns AWS's model-constraint error for field. It never
// includes the offending value, which may be secret.
func validation(field, constraint string) *Error {
	return errorf(KindValidation, "1 validation error detected: Value at '%s' failed to satisfy constraint: %s", field, constraint)
}

func checkLen(field, s string, min, max int) *Error {
	switch {
	case len(s) < min:
		return validation(field, fmt.Sprintf("Member must have length greater than or equal to %d", min))
	case len(s) > max:
		return validation(field, fmt.Sprintf("Member must have length less than or equal to %d", max))
	}
	return nil
}

func checkSecretID(id string) *Error { return checkLen("secretId", id, 1, maxSecretIDLen) }

func checkVersionID(field, id string) *Error {
	if id == "" {
		return nil
	}
	return checkLen(field, id, minTokenLen, maxTokenLen)
}

func checkStage(field, stage string) *Error { return checkLen(field, stage, 1, maxStageLen) }

func checkValue(v Value) *Error {
	field := "secretString"
	if v.Binary() {
		field = "secretBinary"
	}
	return checkLen(field, string(v.Reveal()), 1, maxValueLen)
}

func checkName(name string) *Error {
	if err := checkLen("name", name, 1, arn.MaxNameLen); err != nil {
		return err
	}
	if !arn.ValidName(name) {
		return errorf(KindInvalidParameter, "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
	}
	return nil
}

func checkDescription(d *string) *Error {
	if d == nil {
		return nil
	}
	return checkLen("description", *d, 0, maxDescriptionLen)
}

var tagPattern = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

func checkTagKey(k string) *Error {
	if err := checkLen("tags.member.key", k, 1, maxTagKeyLen); err != nil {
		return err
	}
	if !tagPattern.MatchString(k) {
		return errorf(KindInvalidParameter, "Invalid tag key %q: use letters, digits, spaces and _ . : / = + - @.", k)
	}
	if strings.HasPrefix(strings.ToLower(k), "aws:") {
		return errorf(KindInvalidParameter, "Tag keys beginning with 'aws:' are reserved.")
	}
	return nil
}

func checkTags(tags []Tag) *Error {
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		if err := checkTagKey(t.Key); err != nil {
			return err
		}
		if err := checkLen("tags.member.value", t.Value, 0, maxTagValueLen); err != nil {
			return err
		}
		if !tagPattern.MatchString(t.Value) {
			return errorf(KindInvalidParameter, "Invalid value for tag %q: use letters, digits, spaces and _ . : / = + - @.", t.Key)
		}
		if seen[t.Key] {
			return errorf(KindInvalidParameter, "Duplicate tag key %q.", t.Key)
		}
		seen[t.Key] = true
	}
	if len(tags) > maxTags {
		return errorf(KindInvalidParameter, "A secret can have at most %d tags.", maxTags)
	}
	return nil
}

// versionToken returns the version id a write uses: the caller's token, or a
// fresh UUID as the SDKs would have sent.
func (s *Service) versionToken(token string) (string, *Error) {
	if token != "" {
		return token, checkVersionID("clientRequestToken", token)
	}
	return newUUID(s.cfg.Rand)
}

func newUUID(r interface{ Read([]byte) (int, error) }) (string, *Error) {
	var b [16]byte
	var err error
	if r == nil {
		_, err = rand.Read(b[:])
	} else {
		_, err = r.Read(b[:])
	}
	if err != nil {
		return "", internal("generate version id", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// isPrintableASCII reports whether s is made of printable ASCII (used for
// tokens we echo in messages).
func isPrintableASCII(s string) bool {
	for _, r := range s {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// echo quotes a client-supplied identifier for an error message, or
// describes it when it cannot be shown safely.
func echo(s string) string {
	if len(s) <= 256 && isPrintableASCII(s) {
		return s
	}
	return "(unprintable)"
}

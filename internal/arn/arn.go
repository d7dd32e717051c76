// Package arn formats and parses the Amazon Resource Names Rotor uses:
// secrets (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX),
// rotation functions (arn:aws:lambda:REGION:ACCOUNT:function:NAME) and
// principals (arn:aws:iam::ACCOUNT:root, arn:aws:iam::ACCOUNT:user/NAME).
//
// Parsing never fails loudly: it reports whether the input had the shape
// asked for, and callers decide what an error means in their context.
package arn

import (
	"crypto/rand"
	"io"
	"strings"
)

// ARN is a parsed "arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE".
type ARN struct {
	Partition string
	Service   string
	Region    string
	Account   string
	Resource  string
}

// Parse splits an ARN into its six parts. The resource may itself contain
// colons.
func Parse(s string) (ARN, bool) {
	if !strings.HasPrefix(s, "arn:") {
		return ARN{}, false
	}
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[1] == "" || parts[2] == "" {
		return ARN{}, false
	}
	return ARN{Partition: parts[1], Service: parts[2], Region: parts[3], Account: parts[4], Resource: parts[5]}, true
}

func (a ARN) String() string {
	return "arn:" + a.Partition + ":" + a.Service + ":" + a.Region + ":" + a.Account + ":" + a.Resource
}

// SuffixLen is the length of the random suffix AWS appends to secret names in
// ARNs, after a hyphen.
const SuffixLen = 6

const suffixAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// Secret returns a secret's ARN.
func Secret(region, account, name, suffix string) string {
	return "arn:aws:secretsmanager:" + region + ":" + account + ":secret:" + name + "-" + suffix
}

// NewSuffix returns a random SuffixLen-character suffix of ASCII letters,
// drawn from r (crypto/rand when nil) without modulo bias.
func NewSuffix(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	out := make([]byte, 0, SuffixLen)
	var buf [16]byte
	for len(out) < SuffixLen {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", err
		}
		for _, b := range buf {
			// 52 letters; 208 = 4*52 keeps the draw uniform.
			if b < 208 && len(out) < SuffixLen {
				out = append(out, suffixAlphabet[int(b)%len(suffixAlphabet)])
			}
		}
	}
	return string(out), nil
}

// SecretID is a parsed secret identifier: either a name or an ARN
// (complete, with the random suffix, or partial, without it).
type SecretID struct {
	IsARN   bool
	Region  string
	Account string
	// Tail is what follows "secret:" in an ARN, or the whole name. For a
	// complete ARN it ends in "-XXXXXX"; for a partial one it is the name.
	Tail string
}

// ParseSecretID classifies a SecretId parameter. ok is false for an ARN that
// is not a Secrets Manager secret ARN.
func ParseSecretID(s string) (id SecretID, ok bool) {
	if !strings.HasPrefix(s, "arn:") {
		return SecretID{Tail: s}, true
	}
	a, ok := Parse(s)
	if !ok || a.Service != "secretsmanager" || !strings.HasPrefix(a.Resource, "secret:") {
		return SecretID{}, false
	}
	tail := strings.TrimPrefix(a.Resource, "secret:")
	if tail == "" {
		return SecretID{}, false
	}
	return SecretID{IsARN: true, Region: a.Region, Account: a.Account, Tail: tail}, true
}

// MaxNameLen is the longest secret name AWS accepts.
const MaxNameLen = 512

// ValidName reports whether name is a valid secret name: 1–512 characters
// from A-Z a-z 0-9 / _ + = . @ -.
func ValidName(name string) bool {
	if name == "" || len(name) > MaxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("/_+=.@-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Function returns the ARN of a rotation function.
func Function(region, account, name string) string {
	return "arn:aws:lambda:" + region + ":" + account + ":function:" + name
}

// ParseFunction returns the function name of a Lambda function ARN
// (an optional ":qualifier" is ignored), or ok=false.
func ParseFunction(s string) (name string, ok bool) {
	a, ok := Parse(s)
	if !ok || a.Service != "lambda" || !strings.HasPrefix(a.Resource, "function:") {
		return "", false
	}
	name, _, _ = strings.Cut(strings.TrimPrefix(a.Resource, "function:"), ":")
	return name, name != ""
}

// Root returns the ARN of an account's root principal.
func Root(account string) string { return "arn:aws:iam::" + account + ":root" }

// User returns the ARN of a named user principal.
func User(account, name string) string { return "arn:aws:iam::" + account + ":user/" + name }

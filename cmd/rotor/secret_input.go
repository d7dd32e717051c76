package main

// Parsing of what the user types: arguments, KEY=VALUE pairs, filters and
// secret values. Every mistake here is a usage error (exit status 2).

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/spf13/cobra"
)

// maxSecretValue is the service's limit on SecretString and SecretBinary.
const maxSecretValue = 65536

// secretUsageError is a mistake on the command line: exit status 2, with a pointer
// to the command's help.
func secretUsageError(cmd *cobra.Command, format string, a ...any) error {
	return &exitError{code: 2, err: &hintError{
		msg:  fmt.Sprintf(format, a...),
		hint: fmt.Sprintf("see `%s --help`", cmd.CommandPath()),
	}}
}

// secretArgs checks the number of positional arguments, naming them in the error.
func secretArgs(min int, variadic bool, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		max := len(names)
		if variadic {
			max = -1
		}
		if len(a) >= min && (max < 0 || len(a) <= max) {
			return nil
		}
		want := strings.Join(names, " ")
		if variadic {
			want += "..."
		}
		if want == "" {
			return secretUsageError(cmd, "%s takes no arguments (got %q)", cmd.CommandPath(), a[0])
		}
		return secretUsageError(cmd, "%s wants %s (got %d arguments)", cmd.CommandPath(), want, len(a))
	}
}

// parseKeyValue splits KEY=VALUE at the first '='. The key must not be empty;
// the value may be.
func parseKeyValue(s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf("%q is not KEY=VALUE", s)
	}
	if key == "" {
		return "", "", fmt.Errorf("%q has an empty key", s)
	}
	return key, value, nil
}

// parseTags turns KEY=VALUE pairs into tags, in the order given.
func parseTags(pairs []string) ([]types.Tag, error) {
	tags := make([]types.Tag, 0, len(pairs))
	seen := make(map[string]bool, len(pairs))
	for _, p := range pairs {
		k, v, err := parseKeyValue(p)
		if err != nil {
			return nil, fmt.Errorf("tag %w", err)
		}
		if seen[k] {
			return nil, fmt.Errorf("tag key %q given twice", k)
		}
		seen[k] = true
		tags = append(tags, types.Tag{Key: &k, Value: &v})
	}
	return tags, nil
}

// filterKeys are the keys ListSecrets filters on.
var filterKeys = []types.FilterNameStringType{
	types.FilterNameStringTypeName,
	types.FilterNameStringTypeDescription,
	types.FilterNameStringTypeTagKey,
	types.FilterNameStringTypeTagValue,
	types.FilterNameStringTypePrimaryRegion,
	types.FilterNameStringTypeOwningService,
	types.FilterNameStringTypeAll,
}

// parseFilters turns KEY=VALUE pairs into ListSecrets filters. Values given
// for the same key accumulate into one filter, which matches any of them;
// filters keep the order in which their keys first appear.
func parseFilters(pairs []string) ([]types.Filter, error) {
	var filters []types.Filter
	index := map[types.FilterNameStringType]int{}
	for _, p := range pairs {
		k, v, err := parseKeyValue(p)
		if err != nil {
			return nil, fmt.Errorf("filter %w", err)
		}
		key := types.FilterNameStringType(k)
		if !slices.Contains(filterKeys, key) {
			return nil, fmt.Errorf("unknown filter key %q (want one of %s)", k, joinEnum(filterKeys))
		}
		if v == "" {
			return nil, fmt.Errorf("filter %q has an empty value", p)
		}
		i, ok := index[key]
		if !ok {
			i = len(filters)
			index[key] = i
			filters = append(filters, types.Filter{Key: key})
		}
		filters[i].Values = append(filters[i].Values, v)
	}
	return filters, nil
}

func joinEnum[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// valueFlags are the ways to give a secret value.
type valueFlags struct {
	value      string
	valueFile  string
	binaryFile string
}

func (v *valueFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&v.value, "value", "", "the secret value as a string (visible in the process list; prefer --value-file)")
	fs.StringVar(&v.valueFile, "value-file", "", "read the secret string from `PATH` (- for stdin)")
	fs.StringVar(&v.binaryFile, "binary-file", "", "read a binary secret value from `PATH` (- for stdin)")
}

// secretValue is a value to store: a string or bytes, or neither.
type secretValue struct {
	str *string
	bin []byte
}

func (s secretValue) given() bool { return s.str != nil || s.bin != nil }

// read returns the value the flags name, reading a file or stdin where asked.
// With required, exactly one of the flags must be given; otherwise at most one.
func (v *valueFlags) read(cmd *cobra.Command, stdin io.Reader, required bool) (secretValue, error) {
	var set []string
	for _, name := range []string{"value", "value-file", "binary-file"} {
		if cmd.Flags().Changed(name) {
			set = append(set, "--"+name)
		}
	}
	switch {
	case len(set) > 1:
		return secretValue{}, secretUsageError(cmd, "give only one of %s", strings.Join(set, ", "))
	case len(set) == 0 && required:
		return secretValue{}, secretUsageError(cmd, "give the value with --value, --value-file or --binary-file")
	case len(set) == 0:
		return secretValue{}, nil
	}
	switch set[0] {
	case "--value":
		s := v.value
		return secretValue{str: &s}, nil
	case "--value-file":
		b, err := readValue(v.valueFile, stdin)
		if err != nil {
			return secretValue{}, secretUsageError(cmd, "--value-file: %v", err)
		}
		if !utf8.Valid(b) {
			return secretValue{}, &exitError{code: 2, err: &hintError{
				msg:  fmt.Sprintf("--value-file: %s is not UTF-8 text", displayPath(v.valueFile)),
				hint: "store bytes with --binary-file",
			}}
		}
		s := string(b)
		return secretValue{str: &s}, nil
	default:
		b, err := readValue(v.binaryFile, stdin)
		if err != nil {
			return secretValue{}, secretUsageError(cmd, "--binary-file: %v", err)
		}
		if b == nil {
			b = []byte{}
		}
		return secretValue{bin: b}, nil
	}
}

// readValue reads a whole value from path, or from stdin for "-", refusing
// more than the service would accept.
func readValue(path string, stdin io.Reader) ([]byte, error) {
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	if r == nil {
		return nil, errors.New("no standard input")
	}
	b, err := io.ReadAll(io.LimitReader(r, maxSecretValue+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", displayPath(path), err)
	}
	if len(b) > maxSecretValue {
		return nil, fmt.Errorf("%s holds more than %d bytes, the most a secret value may have", displayPath(path), maxSecretValue)
	}
	return b, nil
}

func displayPath(path string) string {
	if path == "-" {
		return "standard input"
	}
	return path
}

package agent

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrNoToken is returned by ResolveToken when none of the variables is set.
var ErrNoToken = errors.New("no SSRF token")

// ResolveToken reads the SSRF token from the first of names that getenv
// finds set: its value, or with a file://PATH value the content of PATH
// without surrounding white space. The token is read once, at start, as the
// AWS agent does. Errors never contain the token.
func ResolveToken(names []string, getenv func(string) string) (string, error) {
	for _, name := range names {
		v := getenv(name)
		if v == "" {
			continue
		}
		path, isFile := strings.CutPrefix(v, "file://")
		if !isFile {
			return v, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read SSRF token file named by %s: %w", name, err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("SSRF token file %s named by %s is empty", path, name)
		}
		return tok, nil
	}
	return "", fmt.Errorf("%w: set one of %s (a value or file://path)", ErrNoToken, strings.Join(names, ", "))
}

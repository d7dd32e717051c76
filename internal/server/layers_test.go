package server

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/rotor-secrets/rotor/"

// TestImportsPointDown holds the layering of DESIGN.md: each package may
// import only packages below it (tests excepted).
func TestImportsPointDown(t *testing.T) {
	forbidden := map[string][]string{
		"internal/store":     {"internal/secrets", "internal/rotation", "internal/auth", "internal/awsapi", "internal/server", "internal/keyring", "net/http"},
		"internal/keyring":   {"internal/"},
		"internal/keys":      {"internal/secrets", "internal/rotation", "internal/auth", "internal/iam", "internal/awsapi", "internal/server", "net/http"},
		"internal/secrets":   {"internal/auth", "internal/iam", "internal/awsapi", "internal/server", "net/http"},
		"internal/rotation":  {"internal/secrets", "internal/auth", "internal/awsapi", "internal/server"},
		"internal/auth":      {"internal/awsapi", "internal/server", "internal/secrets"},
		"internal/awsapi":    {"internal/server"},
		"internal/arn":       {"internal/"},
		"internal/password":  {"internal/"},
		"internal/events":    {"internal/", "net/http"},
		"internal/iam":       {"internal/awsapi", "internal/server"},
		"internal/audit":     {"internal/"},
		"internal/ratelimit": {"internal/"},
		"internal/metrics":   {"internal/secrets", "internal/rotation", "internal/auth", "internal/awsapi", "internal/server", "internal/iam"},
		"internal/webhook":   {"internal/secrets", "internal/auth", "internal/awsapi", "internal/server", "internal/iam"},
	}
	root := filepath.Join("..", "..")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		pkg := filepath.ToSlash(filepath.Dir(rel))
		for layer, banned := range forbidden {
			if pkg != layer && !strings.HasPrefix(pkg, layer+"/") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			checked++
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				local := strings.TrimPrefix(p, module)
				for _, b := range banned {
					if strings.HasPrefix(local, b) && local != pkg && !strings.HasPrefix(local, layer) {
						t.Errorf("%s imports %s: imports must point down the layers of DESIGN.md", rel, p)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("checked only %d files: is the walk looking at the module?", checked)
	}
}

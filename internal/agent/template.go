package agent

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/rotor-secrets/rotor/client"
)

// templateFuncs are the functions a file template may call besides Go's
// built-ins. None of them puts its argument into an error message.
var templateFuncs = template.FuncMap{
	// json writes v as JSON: a quoted, escaped string for a string.
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return "", errors.New("json: value cannot be encoded")
		}
		return string(b), nil
	},
	// shellquote quotes s for a POSIX shell (and for env files read by
	// one): 'it'\''s'.
	"shellquote": func(v any) string {
		return "'" + strings.ReplaceAll(fmt.Sprint(v), "'", `'\''`) + "'"
	},
	// pgpass escapes a field of a .pgpass line: \ and : get a backslash.
	"pgpass": func(v any) string {
		return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(fmt.Sprint(v))
	},
	"base64": func(v any) string {
		return base64.StdEncoding.EncodeToString([]byte(fmt.Sprint(v)))
	},
}

func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(filepath.Base(name)).Funcs(templateFuncs).Option("missingkey=error").Parse(text)
}

// templateData is what a template sees: the fields of the secret's JSON
// object (when SecretString is one), then these, which win over a field of
// the same name: .SecretString, .SecretBinary (the bytes, as a string),
// .VersionId, .VersionStages, .Name, .ARN, .CreatedDate.
func templateData(s *client.Secret) map[string]any {
	data := map[string]any{}
	if strings.HasPrefix(strings.TrimSpace(s.SecretString), "{") {
		d := json.NewDecoder(strings.NewReader(s.SecretString))
		d.UseNumber() // a port stays 5432, a big number is not 1e+06
		var fields map[string]any
		if d.Decode(&fields) == nil {
			data = fields
		}
	}
	data["SecretString"] = s.SecretString
	data["SecretBinary"] = string(s.SecretBinary)
	data["VersionId"] = s.VersionID
	data["VersionStages"] = s.VersionStages
	data["Name"] = s.Name
	data["ARN"] = s.ARN
	data["CreatedDate"] = s.CreatedDate
	return data
}

// render produces a file's content: the template's output, or the secret's
// value when there is no template.
func render(f *FileConfig, s *client.Secret) ([]byte, error) {
	if f.Template == nil {
		if s.SecretBinary != nil {
			return bytes.Clone(s.SecretBinary), nil
		}
		return []byte(s.SecretString), nil
	}
	var b bytes.Buffer
	if err := f.Template.Execute(&b, templateData(s)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

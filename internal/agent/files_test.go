package agent

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/client"
)

// The templates of the documentation: a .pgpass line, an env file and a
// JSON file.
const (
	pgpassTemplate = `{{pgpass .host}}:{{.port}}:{{pgpass .dbname}}:{{pgpass .username}}:{{pgpass .password}}` + "\n"
	envTemplate    = `PGHOST={{shellquote .host}}
PGUSER={{shellquote .username}}
PGPASSWORD={{shellquote .password}}
SECRET_VERSION={{.VersionId}}
`
	jsonTemplate = `{"user":{{json .username}},"password":{{json .password}},"version":{{json .VersionId}}}` + "\n"
)

func TestRender(t *testing.T) {
	s := &client.Secret{
		Name: "prod/app/db", VersionID: "v-1", ARN: "arn:x",
		SecretString: `{"engine":"postgres","host":"db.internal","port":5432,"username":"app","password":"p:a\\s's\"w","dbname":"app"}`,
	}
	tests := []struct {
		name, template, want string
	}{
		{"pgpass", pgpassTemplate, `db.internal:5432:app:app:p\:a\\s's"w` + "\n"},
		{"env", envTemplate, "PGHOST='db.internal'\nPGUSER='app'\nPGPASSWORD='p:a\\s'\\''s\"w'\nSECRET_VERSION=v-1\n"},
		{"json", jsonTemplate, `{"user":"app","password":"p:a\\s's\"w","version":"v-1"}` + "\n"},
		{"metadata", "{{.Name}} {{.ARN}} {{.SecretString | base64}}", "prod/app/db arn:x " + base64.StdEncoding.EncodeToString([]byte(s.SecretString))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := parseTemplate("x", tt.template)
			if err != nil {
				t.Fatal(err)
			}
			got, err := render(&FileConfig{Template: tmpl}, s)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}

	t.Run("no template", func(t *testing.T) {
		got, _ := render(&FileConfig{}, &client.Secret{SecretString: "raw"})
		bin, _ := render(&FileConfig{}, &client.Secret{SecretBinary: []byte{0, 1}})
		if string(got) != "raw" || !bytes.Equal(bin, []byte{0, 1}) {
			t.Errorf("raw %q, binary %v", got, bin)
		}
	})
	t.Run("missing field", func(t *testing.T) {
		tmpl, _ := parseTemplate("x", "{{.pasword}}")
		_, err := render(&FileConfig{Template: tmpl}, s)
		if err == nil || strings.Contains(err.Error(), "p:a") {
			t.Errorf("error %v, want one without the value", err)
		}
	})
}

// TestWriteAtomic: a reader polling the file while it is rewritten sees a
// whole old or a whole new content, never a part; the mode is the one
// asked for; no temporary file is left.
func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	a := bytes.Repeat([]byte("a"), 256<<10)
	b := bytes.Repeat([]byte("b"), 128<<10)
	if err := writeAtomic(path, a, 0o600); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad []string
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := os.ReadFile(path)
			if err != nil {
				bad = append(bad, err.Error())
				continue
			}
			if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
				bad = append(bad, fmt.Sprintf("a partial file of %d bytes", len(got)))
			}
		}
	})
	for i := range 200 {
		content := a
		if i%2 == 0 {
			content = b
		}
		if err := writeAtomic(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d bad reads, first: %s", len(bad), bad[0])
	}

	for _, mode := range []os.FileMode{0o600, 0o640, 0o400} {
		if err := writeAtomic(path, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("mode = %v, want %v", fi.Mode().Perm(), mode)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(entries))
	}
	if err := writeAtomic(filepath.Join(dir, "missing", "out"), []byte("x"), 0o600); err == nil {
		t.Error("writing into a missing directory: no error")
	}
}

// fileAgent starts an agent with one file output of secret "app/db" whose
// command appends the version it sees to a count file.
func fileAgent(t *testing.T, api *fakeAPI, dir, template string) (ta *testAgent, out, count string) {
	t.Helper()
	out, count = filepath.Join(dir, "app.env"), filepath.Join(dir, "count")
	cfg := mustConfig(t, fmt.Sprintf(`
[[file]]
secret_id = "app/db"
path = %q
template = %q
command = ["sh", "-c", "echo \"$ROTOR_AGENT_VERSION_ID\" >> %s"]
`, out, template, count))
	return startAgent(t, cfg, api, Options{FilePoll: 10 * time.Millisecond}), out, count
}

func readLines(path string) []string {
	b, _ := os.ReadFile(path)
	return strings.Fields(string(b))
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestFileOutput: the file is written with mode 0600 and the command runs
// once; after a change (push-style: Invalidate and Notify) the file is
// rewritten and the command runs once more; a new version whose rendered
// content is the same leaves the file and runs nothing; a restarted agent
// finding the file up to date runs nothing either.
func TestFileOutput(t *testing.T) {
	api := newFakeAPI()
	v1 := api.put("app/db", `{"username":"app","password":"one"}`)
	dir := t.TempDir()
	ta, out, count := fileAgent(t, api, dir, "PGUSER={{.username}}\nPGPASSWORD={{.password}}\n")

	waitFor(t, "the first command", func() bool { return len(readLines(count)) == 1 })
	if got := readFile(out); got != "PGUSER=app\nPGPASSWORD=one\n" {
		t.Errorf("file = %q", got)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if got := readLines(count); got[0] != v1 {
		t.Errorf("the command saw version %s, want %s", got[0], v1)
	}

	v2 := api.put("app/db", `{"username":"app","password":"two"}`)
	ta.Cache().Invalidate("app/db")
	ta.Notify("app/db")
	waitFor(t, "the second command", func() bool { return len(readLines(count)) == 2 })
	if got := readFile(out); got != "PGUSER=app\nPGPASSWORD=two\n" {
		t.Errorf("file after the change = %q", got)
	}

	// A new version rendering to the same content: no write, no command.
	v3 := api.put("app/db", `{"username":"app","password":"two","note":"unused by the template"}`)
	ta.Cache().Invalidate("app/db")
	ta.Notify("app/db")
	waitFor(t, "version 3 seen", func() bool {
		return contains(ta.logs.String(), `"msg":"file unchanged"`, `"version_id":"`+v3+`"`)
	})
	v4 := api.put("app/db", `{"username":"app","password":"four"}`)
	ta.Cache().Invalidate("app/db")
	ta.Notify("app/db")
	waitFor(t, "version 4 written", func() bool { return readFile(out) == "PGUSER=app\nPGPASSWORD=four\n" })
	waitFor(t, "the third command", func() bool { return len(readLines(count)) >= 3 })
	if got, want := readLines(count), []string{v1, v2, v4}; !equal(got, want) {
		t.Errorf("the command ran for versions %v, want %v", got, want)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d entries in the directory, want the file and the count", len(entries))
	}
	for _, pw := range []string{"one", "two", "four"} {
		if contains(ta.logs.String(), "PASSWORD="+pw) {
			t.Errorf("the log contains a password")
		}
	}

	// A second agent on the same file, which is up to date.
	ta2, _, _ := fileAgent(t, api, dir, "PGUSER={{.username}}\nPGPASSWORD={{.password}}\n")
	waitFor(t, "the second agent's check", func() bool {
		return contains(ta2.logs.String(), `"msg":"file unchanged"`, `"version_id":"`+v4+`"`)
	})
	if got := readLines(count); len(got) != 3 {
		t.Errorf("the command ran for versions %v after a restart, want 3 runs", got)
	}
}

// TestFileOutputTTL: without push, the file follows the cache's TTL.
func TestFileOutputTTL(t *testing.T) {
	api := newFakeAPI()
	api.put("app/db", `{"password":"one"}`)
	dir := t.TempDir()
	out := filepath.Join(dir, "pw")
	cfg := mustConfig(t, fmt.Sprintf("ttl_seconds = 1\n[[file]]\nsecret_id = \"app/db\"\npath = %q\ntemplate = \"{{.password}}\"\n", out))
	startAgent(t, cfg, api, Options{FilePoll: 10 * time.Millisecond})
	waitFor(t, "the first render", func() bool { return readFile(out) == "one" })
	api.put("app/db", `{"password":"two"}`)
	start := time.Now()
	waitFor(t, "the render after the TTL", func() bool { return readFile(out) == "two" })
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v with a 1s TTL", d)
	}
}

// TestFileTemplateFailure: a template that fails leaves no file and runs
// no command; the failure is logged once, without the value.
func TestFileTemplateFailure(t *testing.T) {
	api := newFakeAPI()
	api.put("app/db", `{"password":"hunter2"}`)
	dir := t.TempDir()
	ta, out, count := fileAgent(t, api, dir, "{{.username}}")
	waitFor(t, "the failure", func() bool { return contains(ta.logs.String(), `"msg":"file output failed"`) })
	time.Sleep(50 * time.Millisecond) // a few polls
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("the file exists (%v)", err)
	}
	if _, err := os.Stat(count); !os.IsNotExist(err) {
		t.Errorf("the command ran")
	}
	if n := strings.Count(ta.logs.String(), `"msg":"file output failed"`); n != 1 {
		t.Errorf("the failure was logged %d times, want once", n)
	}
	if contains(ta.logs.String(), "hunter2") {
		t.Error("the log contains the value")
	}
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

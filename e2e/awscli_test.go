package e2e

// The AWS CLI against a server started the way a new user starts it: no
// root key in the environment, so the CLI authenticates with the
// credentials file the server wrote, and everything configured through the
// environment variables the README gives.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const cliTimeout = time.Minute

// awsCLI runs `aws secretsmanager …` against one server.
type awsCLI struct {
	bin string
	env []string
}

func newAWSCLI(t *testing.T, srv *server) *awsCLI {
	t.Helper()
	awsBin.once.Do(func() { awsBin.path, awsBin.err = findAWS() })
	if awsBin.err != nil {
		t.Fatalf("the AWS CLI (aws) is not on PATH (%v): `make test` installs it (scripts/test-deps.sh), or apt-get install awscli", awsBin.err)
	}
	bin := awsBin.path
	home := t.TempDir()
	env := cleanEnv("AWS_", "HOME=")
	if os.Getenv("PYTHONUSERBASE") == "" {
		// A pip --user install of the CLI lives under the real home.
		if h, err := os.UserHomeDir(); err == nil {
			env = append(env, "PYTHONUSERBASE="+filepath.Join(h, ".local"))
		}
	}
	env = append(env,
		"HOME="+home, // no ~/.aws of the machine's
		"AWS_ENDPOINT_URL_SECRETS_MANAGER="+srv.endpoint(),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(srv.dataDir, "credentials"),
		"AWS_CONFIG_FILE="+filepath.Join(home, "no-config"),
		"AWS_PROFILE=rotor",
		"AWS_DEFAULT_REGION="+region, // CLI v1 reads this, not AWS_REGION
	)
	return &awsCLI{bin: bin, env: env}
}

var awsBin struct {
	once sync.Once
	path string
	err  error
}

// findAWS finds the aws command. A version manager's shim (pyenv) resolves
// the interpreter again on every call, which costs about as much as the
// CLI's own start-up, so it is asked once for the real path.
func findAWS() (string, error) {
	bin, err := exec.LookPath("aws")
	if err != nil {
		return "", err
	}
	if filepath.Base(filepath.Dir(bin)) != "shims" {
		return bin, nil
	}
	pyenv, err := exec.LookPath("pyenv")
	if err != nil {
		return bin, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, pyenv, "which", "aws").Output()
	if p := strings.TrimSpace(string(out)); err == nil && filepath.IsAbs(p) {
		return p, nil
	}
	return bin, nil
}

// run runs `aws secretsmanager args…` and returns stdout, stderr and the
// exit status.
func (a *awsCLI) run(t *testing.T, args ...string) (stdout, stderr []byte, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.bin, append([]string{"secretsmanager"}, args...)...)
	cmd.Env = a.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
	}
	return out.Bytes(), errb.Bytes(), code
}

// json runs the command, which must succeed, and decodes its JSON output
// into v (nil: output ignored).
func (a *awsCLI) json(t *testing.T, v any, args ...string) {
	t.Helper()
	out, errb, code := a.run(t, args...)
	if code != 0 {
		t.Fatalf("aws secretsmanager %s: exit status %d\n%s", strings.Join(args, " "), code, errb)
	}
	if v == nil {
		return
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("aws secretsmanager %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// fails runs the command, which must fail with AWS error code.
func (a *awsCLI) fails(t *testing.T, code string, args ...string) {
	t.Helper()
	_, errb, status := a.run(t, args...)
	// CLI v1 exits 255 on a service error, v2 254.
	if status != 254 && status != 255 || !bytes.Contains(errb, []byte("("+code+")")) {
		t.Errorf("aws secretsmanager %s: exit status %d, stderr %q; want 254 or 255 and (%s)", strings.Join(args, " "), status, errb, code)
	}
}

type cliSecret struct {
	ARN, Name, VersionId, SecretString, SecretBinary, Description string
	VersionStages                                                 []string
	VersionIdsToStages                                            map[string][]string
	Tags                                                          []struct{ Key, Value string }
	DeletionDate, DeletedDate                                     *float64
}

func TestAWSCLI(t *testing.T) {
	t.Parallel()
	srv := startServer(t, withoutRootKey())
	cli := newAWSCLI(t, srv)

	// Independent groups of commands, run in parallel; each invocation
	// costs the CLI's start-up time, so every call checks what it can.
	t.Run("versions and labels", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		var created cliSecret
		cli.json(t, &created, "create-secret", "--name", name, "--secret-string", `{"password":"first"}`, "--description", "made by the CLI")
		if !arnPattern(name).MatchString(created.ARN) || created.Name != name || !uuidPattern.MatchString(created.VersionId) {
			t.Fatalf("create-secret = %+v", created)
		}
		v1 := created.VersionId

		var put cliSecret
		cli.json(t, &put, "put-secret-value", "--secret-id", created.ARN, "--secret-string", "second")
		v2 := put.VersionId
		if !sameSet(put.VersionStages, []string{"AWSCURRENT"}) || !uuidPattern.MatchString(v2) || v2 == v1 {
			t.Errorf("put-secret-value = %+v", put)
		}

		var d cliSecret
		cli.json(t, &d, "describe-secret", "--secret-id", name)
		if !sameStages(d.VersionIdsToStages, map[string][]string{v2: {"AWSCURRENT"}, v1: {"AWSPREVIOUS"}}) || d.Description != "made by the CLI" {
			t.Errorf("describe-secret = %+v", d)
		}

		cli.json(t, nil, "update-secret-version-stage", "--secret-id", name, "--version-stage", "AWSCURRENT",
			"--move-to-version-id", v1, "--remove-from-version-id", v2)
		var versions struct {
			Versions []struct {
				VersionId     string
				VersionStages []string
			}
		}
		cli.json(t, &versions, "list-secret-version-ids", "--secret-id", name)
		stages := map[string][]string{}
		for _, v := range versions.Versions {
			stages[v.VersionId] = v.VersionStages
		}
		if want := (map[string][]string{v1: {"AWSCURRENT"}, v2: {"AWSPREVIOUS"}}); !sameStages(stages, want) {
			t.Errorf("list-secret-version-ids after update-secret-version-stage: %v, want %v", stages, want)
		}
		var got cliSecret
		cli.json(t, &got, "get-secret-value", "--secret-id", name)
		if got.SecretString != `{"password":"first"}` || got.VersionId != v1 || !sameSet(got.VersionStages, []string{"AWSCURRENT"}) {
			t.Errorf("get-secret-value = %+v, want the first version", got)
		}
	})

	t.Run("binary, tags, deletion, batch and an error", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		value := []byte{0, 1, 2, 0xff, 0xfe, '\n'}
		file := filepath.Join(t.TempDir(), "value.bin")
		must(t, os.WriteFile(file, value, 0o600))
		cli.json(t, nil, "create-secret", "--name", name, "--secret-binary", "fileb://"+file, "--tags", "Key=env,Value=test", "Key=team,Value=core")
		cli.json(t, nil, "tag-resource", "--secret-id", name, "--tags", "Key=owner,Value=alice")
		cli.json(t, nil, "untag-resource", "--secret-id", name, "--tag-keys", "env", "team")
		var list struct{ SecretList []cliSecret }
		cli.json(t, &list, "list-secrets", "--filters", "Key=name,Values="+name, "Key=tag-key,Values=owner")
		if len(list.SecretList) != 1 || list.SecretList[0].Name != name {
			t.Fatalf("list-secrets --filters = %+v", list)
		}
		if tags := list.SecretList[0].Tags; len(tags) != 1 || tags[0].Key != "owner" || tags[0].Value != "alice" {
			t.Errorf("tags after tag-resource and untag-resource: %+v", tags)
		}

		var del cliSecret
		cli.json(t, &del, "delete-secret", "--secret-id", name, "--recovery-window-in-days", "7")
		if del.DeletionDate == nil || time.Until(time.Unix(int64(*del.DeletionDate), 0)) < 6*24*time.Hour {
			t.Errorf("delete-secret = %+v, want a DeletionDate 7 days ahead", del)
		}
		cli.fails(t, "InvalidRequestException", "get-secret-value", "--secret-id", name)
		cli.json(t, nil, "restore-secret", "--secret-id", name)

		missing := uniqueName(t)
		var batch struct {
			SecretValues []cliSecret
			Errors       []struct{ SecretId, ErrorCode, Message string }
		}
		cli.json(t, &batch, "batch-get-secret-value", "--secret-id-list", name, missing)
		if len(batch.SecretValues) != 1 || batch.SecretValues[0].Name != name {
			t.Fatalf("SecretValues = %+v", batch.SecretValues)
		}
		if b, err := base64.StdEncoding.DecodeString(batch.SecretValues[0].SecretBinary); err != nil || !bytes.Equal(b, value) {
			t.Errorf("SecretBinary = %q, want base64 of %x", batch.SecretValues[0].SecretBinary, value)
		}
		if len(batch.Errors) != 1 || batch.Errors[0].SecretId != missing || batch.Errors[0].ErrorCode != "ResourceNotFoundException" {
			t.Errorf("Errors = %+v", batch.Errors)
		}
	})

	t.Run("resource policy", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		cli.json(t, nil, "create-secret", "--name", name)
		doc := policy(`{"AWS":"arn:aws:iam::123456789012:root"}`)
		var v struct {
			PolicyValidationPassed bool
			ValidationErrors       []struct{ CheckName, ErrorMessage string }
		}
		cli.json(t, &v, "validate-resource-policy", "--secret-id", name, "--resource-policy", doc)
		if !v.PolicyValidationPassed {
			t.Errorf("validate-resource-policy = %+v", v)
		}
		cli.json(t, nil, "put-resource-policy", "--secret-id", name, "--resource-policy", doc, "--block-public-policy")
		var got struct{ ARN, Name, ResourcePolicy string }
		cli.json(t, &got, "get-resource-policy", "--secret-id", name)
		if got.Name != name || !sameJSON(got.ResourcePolicy, doc) {
			t.Errorf("get-resource-policy = %+v", got)
		}
		var deleted struct{ ARN, Name string }
		cli.json(t, &deleted, "delete-resource-policy", "--secret-id", name)
		if deleted.Name != name || deleted.ARN != got.ARN {
			t.Errorf("delete-resource-policy = %+v", deleted)
		}
	})

	t.Run("random password", func(t *testing.T) {
		t.Parallel()
		var out struct{ RandomPassword string }
		cli.json(t, &out, "get-random-password", "--password-length", "20", "--exclude-punctuation")
		if len(out.RandomPassword) != 20 || strings.Trim(out.RandomPassword, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != "" {
			t.Errorf("RandomPassword = %q, want 20 letters and digits", out.RandomPassword)
		}
	})
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAgentCmdErrors: a bad config is a usage error (status 2) listing
// every problem; a missing SSRF token stops the agent with a hint.
func TestAgentCmdErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("ttl_seconds = 5000\nbogus = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runSecretCLI(t, nil, "", "agent", "--config", bad)
	if r.code != 2 || !strings.Contains(r.stderr, "ttl_seconds: 5000 is out of range") || !strings.Contains(r.stderr, `unknown key "bogus"`) {
		t.Errorf("bad config: status %d, stderr %q", r.code, r.stderr)
	}

	r = runSecretCLI(t, map[string]string{"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:1"}, "", "agent")
	if r.code != 1 || !strings.Contains(r.stderr, "rotor: error: no SSRF token") || !strings.Contains(r.stderr, "rotor: hint:") {
		t.Errorf("no token: status %d, stderr %q", r.code, r.stderr)
	}
}

package awsapi

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/keys"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

func keyHandler(t *testing.T) *Handler {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rotor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	root, _ := keyring.NewMasterKey()
	kr, err := keyring.New(root)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := keys.Open(t.Context(), keys.Config{Store: st, Keyring: kr, Root: root, Region: "us-east-1", AccountID: "123456789012"})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := testHandler(t, &fakeBackend{}, nil)
	h.keys = svc
	return h
}

func TestKeyOperations(t *testing.T) {
	h := keyHandler(t)
	w := post(h, "rotor.CreateKey", `{"Alias":"alias/team-a","Description":"team a"}`)
	if w.Code != 200 {
		t.Fatalf("CreateKey: %d %s", w.Code, w.Body)
	}
	var created struct {
		KeyMetadata struct {
			KeyId, Arn, Alias, Description, KeyState string
			Enabled                                  bool
			CreationDate                             float64
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	md := created.KeyMetadata
	if md.Arn != "arn:aws:kms:us-east-1:123456789012:key/"+md.KeyId || md.Alias != "alias/team-a" || md.Description != "team a" ||
		!md.Enabled || md.KeyState != "Enabled" || md.CreationDate == 0 {
		t.Errorf("CreateKey = %s", w.Body)
	}

	errs := []struct {
		name, target, body string
		code               int
		typ                string
	}{
		{"taken alias", "rotor.CreateKey", `{"Alias":"alias/team-a"}`, 400, "ResourceExistsException"},
		{"reserved alias", "rotor.CreateKey", `{"Alias":"alias/aws/x"}`, 400, "InvalidParameterException"},
		{"unknown key", "rotor.DescribeKey", `{"KeyId":"alias/nope"}`, 400, "ResourceNotFoundException"},
		{"no key id", "rotor.EnableKey", `{}`, 400, "InvalidParameterException"},
		{"default key", "rotor.DisableKey", `{"KeyId":"alias/aws/secretsmanager"}`, 400, "InvalidRequestException"},
		{"rotate unknown", "rotor.RotateMasterKey", `{"KeyId":"alias/nope"}`, 400, "ResourceNotFoundException"},
	}
	for _, c := range errs {
		t.Run(c.name, func(t *testing.T) {
			w := post(h, c.target, c.body)
			if w.Code != c.code || !strings.Contains(w.Body.String(), `"__type":"`+c.typ+`"`) {
				t.Errorf("%s %s = %d %s, want %d %s", c.target, c.body, w.Code, w.Body, c.code, c.typ)
			}
		})
	}

	w = post(h, "rotor.DisableKey", `{"KeyId":"`+md.Arn+`"}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"Enabled":false,"KeyState":"Disabled"`) {
		t.Errorf("DisableKey = %d %s", w.Code, w.Body)
	}
	w = post(h, "rotor.ListKeys", `{}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"KeyId":"`+md.KeyId+`"`) || !strings.Contains(w.Body.String(), `"Enabled":false`) {
		t.Errorf("ListKeys = %d %s", w.Code, w.Body)
	}
	w = post(h, "rotor.EnableKey", `{"KeyId":"alias/team-a"}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"Enabled":true`) {
		t.Errorf("EnableKey = %d %s", w.Code, w.Body)
	}
	w = post(h, "rotor.DescribeKey", `{"KeyId":"alias/aws/secretsmanager"}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"KeyManager":"AWS"`) {
		t.Errorf("DescribeKey(default) = %d %s", w.Code, w.Body)
	}

	w = post(h, "rotor.RotateMasterKey", `{"KeyId":"alias/team-a"}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"Id":"mkv-2-`) {
		t.Fatalf("RotateMasterKey(team-a) = %d %s", w.Code, w.Body)
	}
	w = post(h, "rotor.GetMasterKeyStatus", `{"KeyId":"alias/team-a"}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"KeyId":"`+md.KeyId+`"`) || !strings.Contains(w.Body.String(), `"Current":"mkv-2-`) {
		t.Errorf("GetMasterKeyStatus(team-a) = %d %s", w.Code, w.Body)
	}
	// Without KeyId: the default key, never rotated.
	w = post(h, "rotor.GetMasterKeyStatus", ``)
	if w.Code != 200 || strings.Contains(w.Body.String(), `"KeyId"`) || strings.Contains(w.Body.String(), `mkv-`) {
		t.Errorf("GetMasterKeyStatus() = %d %s", w.Code, w.Body)
	}
}

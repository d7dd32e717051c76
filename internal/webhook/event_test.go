package webhook

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/events"
	"github.com/rotor-secrets/rotor/internal/rotation"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const (
	testARN     = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/app/db-AbCdEf"
	testAccount = "000000000000"
	testRegion  = "us-east-1"
	testID      = "6a7e8feb-b491-4cf7-a9f1-bf3703467718"
)

// testTime has a fraction, which events drop.
var testTime = time.Date(2024, 2, 6, 16, 43, 48, 123456789, time.FixedZone("CET", 3600))

// checkGolden compares ev's JSON (indented) with testdata/name.golden.
func checkGolden(t *testing.T, name string, ev Event) {
	t.Helper()
	b, err := marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("%s differs from %s:\n%s", name, path, out.Bytes())
	}
}

// decode returns ev's JSON as a generic map.
func decode(t *testing.T, ev Event) map[string]any {
	t.Helper()
	b, err := marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRotationEventGolden(t *testing.T) {
	cases := []struct {
		name string
		rec  rotation.Record
	}{
		{"rotation_started", rotation.Record{
			Type: rotation.EventStarted, Time: testTime, SecretARN: testARN,
			VersionID: "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111", Step: rotation.StepCreate,
			Function: "arn:aws:lambda:us-east-1:000000000000:function:rotor-postgres-alternating-users", Attempt: 1,
		}},
		{"rotation_failed", rotation.Record{
			Type: rotation.EventFailed, Time: testTime, SecretARN: testARN,
			VersionID: "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111", Step: rotation.StepSet,
			Function: "arn:aws:lambda:us-east-1:000000000000:function:rotor-postgres-alternating-users", Attempt: 3,
			Error: `Error when executing lambda <arn> during setSecret step: pq: role "app_clone" does not exist`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkGolden(t, c.name, RotationEvent(c.rec, testAccount, testRegion, testID))
		})
	}
}

func TestRotationEventFields(t *testing.T) {
	rec := rotation.Record{Type: rotation.EventFailed, Time: testTime, SecretARN: testARN, VersionID: "v1",
		Step: rotation.StepTest, Function: "fn", Attempt: 2, Error: "login failed"}
	m := decode(t, RotationEvent(rec, testAccount, testRegion, testID))
	for k, want := range map[string]any{
		"version": "0", "id": testID, "detail-type": "AWS Service Event via CloudTrail",
		"source": "aws.secretsmanager", "account": testAccount, "region": testRegion,
		"time": "2024-02-06T15:43:48Z",
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	if r, _ := m["resources"].([]any); len(r) != 1 || r[0] != testARN {
		t.Errorf("resources = %v, want [%s]", m["resources"], testARN)
	}
	d := m["detail"].(map[string]any)
	for k, want := range map[string]any{
		"eventVersion": "1.08", "eventSource": "secretsmanager.amazonaws.com", "eventName": "RotationFailed",
		"eventTime": "2024-02-06T15:43:48Z", "awsRegion": testRegion, "eventType": "AwsServiceEvent",
		"eventID": testID, "requestID": "Rotation-" + testARN + "-v1", "errorMessage": "login failed",
	} {
		if d[k] != want {
			t.Errorf("detail.%s = %v, want %v", k, d[k], want)
		}
	}
	if got := d["userIdentity"].(map[string]any)["invokedBy"]; got != "secretsmanager.amazonaws.com" {
		t.Errorf("userIdentity.invokedBy = %v", got)
	}
	if got := d["additionalEventData"].(map[string]any)["SecretId"]; got != testARN {
		t.Errorf("additionalEventData.SecretId = %v", got)
	}
	r := d["rotor"].(map[string]any)
	if r["versionId"] != "v1" || r["step"] != "testSecret" || r["function"] != "fn" || r["attempt"] != 2.0 {
		t.Errorf("rotor = %v", r)
	}

	// errorMessage belongs to failures only.
	for _, typ := range []rotation.EventType{rotation.EventStarted, rotation.EventSucceeded,
		rotation.EventAbandoned, rotation.EventTestStarted, rotation.EventTestSucceeded} {
		rec := rec
		rec.Type = typ
		d := decode(t, RotationEvent(rec, testAccount, testRegion, testID))["detail"].(map[string]any)
		if _, ok := d["errorMessage"]; ok {
			t.Errorf("%s has errorMessage", typ)
		}
		if d["eventName"] != string(typ) {
			t.Errorf("eventName = %v, want %s", d["eventName"], typ)
		}
	}
	rec.Type = rotation.EventTestFailed
	if d := decode(t, RotationEvent(rec, testAccount, testRegion, testID))["detail"].(map[string]any); d["errorMessage"] != "login failed" {
		t.Errorf("TestRotationFailed errorMessage = %v", d["errorMessage"])
	}
}

func TestEventIDsAreRandomUUIDs(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a := RotationEvent(rotation.Record{Type: rotation.EventStarted, SecretARN: testARN}, testAccount, testRegion, "")
	b, _ := LabelEvent(events.LabelChange{SecretARN: testARN, Label: "AWSCURRENT", VersionID: "v"}, testAccount, testRegion, "")
	if !uuid.MatchString(a.ID) || !uuid.MatchString(b.ID) || a.ID == b.ID {
		t.Errorf("ids %q, %q: want two distinct UUID v4", a.ID, b.ID)
	}
	// Without a version id, the request id still ends in a UUID.
	d := decode(t, a)["detail"].(map[string]any)
	if d["requestID"] != "Rotation-"+testARN+"-"+a.ID {
		t.Errorf("requestID = %v", d["requestID"])
	}
}

func TestLabelEventGolden(t *testing.T) {
	cases := []struct {
		name string
		c    events.LabelChange
	}{
		{"label_current", events.LabelChange{SecretARN: testARN, Name: "prod/app/db", Label: "AWSCURRENT",
			VersionID: "a1b2c3d4-5678-90ab-cdef-EXAMPLE22222", FromVersionID: "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111", Time: testTime}},
		{"label_removed", events.LabelChange{SecretARN: testARN, Name: "prod/app/db", Label: "blue<green>",
			FromVersionID: "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111", Time: testTime}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, ok := LabelEvent(c.c, testAccount, testRegion, testID)
			if !ok {
				t.Fatal("LabelEvent declined")
			}
			checkGolden(t, c.name, ev)
		})
	}
}

func TestLabelEventFields(t *testing.T) {
	ev, ok := LabelEvent(events.LabelChange{SecretARN: testARN, Name: "n", Label: "AWSCURRENT", VersionID: "v2",
		FromVersionID: "v1", Time: testTime}, testAccount, testRegion, testID)
	if !ok {
		t.Fatal("AWSCURRENT declined")
	}
	m := decode(t, ev)
	if m["detail-type"] != "Secret Label Updated" || m["source"] != "aws.secretsmanager" || m["time"] != "2024-02-06T15:43:48Z" {
		t.Errorf("envelope = %v", m)
	}
	if r, _ := m["resources"].([]any); len(r) != 1 || r[0] != testARN {
		t.Errorf("resources = %v", m["resources"])
	}
	d := m["detail"].(map[string]any)
	want := map[string]any{"name": "n", "labelUpdated": "AWSCURRENT", "versionId": "v2", "previousVersionId": "v1", "removed": false}
	if len(d) != len(want) {
		t.Errorf("detail = %v, want %v", d, want)
	}
	for k, w := range want {
		if d[k] != w {
			t.Errorf("detail.%s = %v, want %v", k, d[k], w)
		}
	}
}

func TestLabelEventDeclines(t *testing.T) {
	cases := []struct {
		name string
		c    events.LabelChange
		ok   bool
	}{
		{"AWSPENDING", events.LabelChange{SecretARN: testARN, Label: "AWSPENDING", VersionID: "v"}, false},
		{"AWSPENDING removed", events.LabelChange{SecretARN: testARN, Label: "AWSPENDING", FromVersionID: "v"}, false},
		{"AWSPREVIOUS", events.LabelChange{SecretARN: testARN, Label: "AWSPREVIOUS", VersionID: "v", FromVersionID: "w"}, false},
		{"resync", events.LabelChange{Resync: true}, false},
		{"AWSCURRENT", events.LabelChange{SecretARN: testARN, Label: "AWSCURRENT", VersionID: "v"}, true},
		{"custom", events.LabelChange{SecretARN: testARN, Label: "blue", VersionID: "v"}, true},
		{"lowercase awspending is custom", events.LabelChange{SecretARN: testARN, Label: "awspending", VersionID: "v"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, ok := LabelEvent(c.c, testAccount, testRegion, testID)
			if ok != c.ok {
				t.Errorf("ok = %v, want %v", ok, c.ok)
			}
		})
	}
}

// The events carry no secret value: Record and LabelChange have none, and
// the JSON holds only the fields above. This guards against a future field
// being copied in wholesale.
func TestEventsHoldOnlyKnownFields(t *testing.T) {
	ev := RotationEvent(rotation.Record{Type: rotation.EventFailed, SecretARN: testARN}, testAccount, testRegion, testID)
	for k := range decode(t, ev)["detail"].(map[string]any) {
		if strings.Contains(strings.ToLower(k), "secretstring") || strings.Contains(strings.ToLower(k), "secretbinary") {
			t.Errorf("detail has %s", k)
		}
	}
}

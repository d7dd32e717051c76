package main

import (
	"reflect"
	"strings"
	"testing"
)

const parkedPage1 = `{"Events":[{"Seq":7,"Target":"ops","EventId":"evt-1","CreatedDate":1714564800,"Attempts":10,` +
	`"LastError":"HTTP 503","Event":"{\"detail-type\":\"Secret Rotated\"}"}],"NextToken":"Nw","Pending":4,"Parked":2}`

const parkedPage2 = `{"Events":[{"Seq":9,"Target":"audit-sink","EventId":"evt-2","CreatedDate":1714651200,"Attempts":10,` +
	`"Event":"{}"}],"Pending":5,"Parked":2}`

func parkedPages(req map[string]any) (int, string) {
	if req["NextToken"] == "Nw" {
		return 200, parkedPage2
	}
	return 200, parkedPage1
}

func TestEventsParked(t *testing.T) {
	srv := newRotorServer(t, map[string]fakeHandler{"ListParkedEvents": parkedPages})
	checkRun(t, runSecretCLI(t, srv.vars(t), "", "events", "parked"), "pending: 4, parked: 2\n"+
		"SEQ  TARGET      EVENT ID  CREATED               ATTEMPTS  LAST ERROR\n"+
		"7    ops         evt-1     2024-05-01T12:00:00Z  10        HTTP 503\n"+
		"9    audit-sink  evt-2     2024-05-02T12:00:00Z  10        -\n")
	if want := []string{`ListParkedEvents {}`, `ListParkedEvents {"NextToken":"Nw"}`}; !reflect.DeepEqual(srv.bodies(), want) {
		t.Errorf("requests = %q", srv.bodies())
	}

	r := runSecretCLI(t, srv.vars(t), "", "events", "parked", "-o", "json")
	checkRun(t, r, `{
  "Events": [
    {
      "Seq": 7,
      "Target": "ops",
      "EventId": "evt-1",
      "CreatedDate": 1714564800,
      "Attempts": 10,
      "LastError": "HTTP 503",
      "Event": "{\"detail-type\":\"Secret Rotated\"}"
    },
    {
      "Seq": 9,
      "Target": "audit-sink",
      "EventId": "evt-2",
      "CreatedDate": 1714651200,
      "Attempts": 10,
      "Event": "{}"
    }
  ],
  "Pending": 4,
  "Parked": 2
}
`)
}

func TestEventsParkedNone(t *testing.T) {
	srv := newRotorServer(t, map[string]fakeHandler{"ListParkedEvents": reply(`{"Events":[],"Pending":0,"Parked":0}`)})
	checkRun(t, runSecretCLI(t, srv.vars(t), "", "events", "parked"), "pending: 0, parked: 0\n")
}

func TestEventsRedrive(t *testing.T) {
	srv := newRotorServer(t, map[string]fakeHandler{"RedriveEvent": func(req map[string]any) (int, string) {
		if req["Seq"] == 99.0 {
			return 400, `{"__type":"ResourceNotFoundException","Message":"No parked event with this Seq."}`
		}
		return 200, `{}`
	}})
	checkRun(t, runSecretCLI(t, srv.vars(t), "", "events", "redrive", "7"), "event 7 is pending again\n")
	checkRun(t, runSecretCLI(t, srv.vars(t), "", "events", "redrive", "8", "-o", "json"), "{}\n")
	r := runSecretCLI(t, srv.vars(t), "", "events", "redrive", "99")
	if r.code != 1 || r.stderr != "rotor: error: ResourceNotFoundException: No parked event with this Seq.\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if want := []string{`RedriveEvent {"Seq":7}`, `RedriveEvent {"Seq":8}`, `RedriveEvent {"Seq":99}`}; !reflect.DeepEqual(srv.bodies(), want) {
		t.Errorf("requests = %q", srv.bodies())
	}

	for _, arg := range []string{"0", "-3", "seven", "1.5"} {
		r := runSecretCLI(t, srv.vars(t), "", "events", "redrive", "--", arg)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "rotor: error: SEQ: want a positive number, got \""+arg+"\"\n") {
			t.Errorf("redrive %s: exit %d, stderr %q", arg, r.code, r.stderr)
		}
	}
}

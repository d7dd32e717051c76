package webhook

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rotor-secrets/rotor/internal/events"
	"github.com/rotor-secrets/rotor/internal/rotation"
)

// Event is an Amazon EventBridge event.
type Event struct {
	Version    string          `json:"version"`     // "0"
	ID         string          `json:"id"`          // random UUID v4
	DetailType string          `json:"detail-type"` // e.g. "Secret Label Updated"
	Source     string          `json:"source"`      // "aws.secretsmanager"
	Account    string          `json:"account"`
	Time       time.Time       `json:"time"` // whole seconds, UTC ("2019-12-02T09:39:14Z")
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"` // [secret ARN]
	Detail     json.RawMessage `json:"detail"`
}

// The values of Event fields AWS fixes.
const (
	eventVersion       = "0"
	eventSource        = "aws.secretsmanager"
	detailServiceEvent = "AWS Service Event via CloudTrail"
	detailLabelUpdated = "Secret Label Updated"
	serviceHost        = "secretsmanager.amazonaws.com"
)

// cloudTrailDetail is the detail of a CloudTrail-derived service event, in
// the field order CloudTrail writes.
type cloudTrailDetail struct {
	EventVersion        string             `json:"eventVersion"`
	UserIdentity        userIdentity       `json:"userIdentity"`
	EventTime           time.Time          `json:"eventTime"`
	EventSource         string             `json:"eventSource"`
	EventName           string             `json:"eventName"`
	AWSRegion           string             `json:"awsRegion"`
	SourceIPAddress     string             `json:"sourceIPAddress"`
	UserAgent           string             `json:"userAgent"`
	ErrorMessage        string             `json:"errorMessage,omitempty"`
	RequestParameters   json.RawMessage    `json:"requestParameters"`
	ResponseElements    json.RawMessage    `json:"responseElements"`
	AdditionalEventData additionalEvent    `json:"additionalEventData"`
	RequestID           string             `json:"requestID"`
	EventID             string             `json:"eventID"`
	ReadOnly            bool               `json:"readOnly"`
	EventType           string             `json:"eventType"`
	ManagementEvent     bool               `json:"managementEvent"`
	RecipientAccountID  string             `json:"recipientAccountId"`
	EventCategory       string             `json:"eventCategory"`
	Rotor               rotationExtensions `json:"rotor"`
}

type userIdentity struct {
	AccountID string `json:"accountId,omitempty"`
	InvokedBy string `json:"invokedBy"`
}

type additionalEvent struct {
	SecretID string `json:"SecretId"`
}

// rotationExtensions is what Rotor adds to AWS's rotation events.
type rotationExtensions struct {
	VersionID string `json:"versionId"`
	Step      string `json:"step"`
	Function  string `json:"function"`
	Attempt   int    `json:"attempt"`
}

// labelDetail is the detail of "Secret Label Updated": AWS's three fields,
// then Rotor's two.
type labelDetail struct {
	Name              string `json:"name"`
	LabelUpdated      string `json:"labelUpdated"`
	VersionID         string `json:"versionId"` // "" when the label was removed
	PreviousVersionID string `json:"previousVersionId"`
	Removed           bool   `json:"removed"`
}

var jsonNull = json.RawMessage("null")

// RotationEvent shapes a rotation event as the CloudTrail-derived
// EventBridge event AWS emits for its rotation service events: detail-type
// "AWS Service Event via CloudTrail", detail.eventName r.Type,
// detail.errorMessage r.Error for RotationFailed and TestRotationFailed,
// and a "rotor" object with the version id, step, function and attempt.
// The CloudTrail eventID is the event's id; the requestID is
// "Rotation-<arn>-<version id>", so the events of one rotation share it.
// An empty id is replaced by a random UUID.
func RotationEvent(r rotation.Record, account, region string, id string) Event {
	if id == "" {
		id = newUUID()
	}
	t := wholeSecond(r.Time)
	reqTail := r.VersionID
	if reqTail == "" {
		reqTail = id
	}
	d := cloudTrailDetail{
		EventVersion:        "1.08",
		UserIdentity:        userIdentity{AccountID: account, InvokedBy: serviceHost},
		EventTime:           t,
		EventSource:         serviceHost,
		EventName:           string(r.Type),
		AWSRegion:           region,
		SourceIPAddress:     serviceHost,
		UserAgent:           serviceHost,
		RequestParameters:   jsonNull,
		ResponseElements:    jsonNull,
		AdditionalEventData: additionalEvent{SecretID: r.SecretARN},
		RequestID:           "Rotation-" + r.SecretARN + "-" + reqTail,
		EventID:             id,
		EventType:           "AwsServiceEvent",
		ManagementEvent:     true,
		RecipientAccountID:  account,
		EventCategory:       "Management",
		Rotor: rotationExtensions{
			VersionID: r.VersionID,
			Step:      string(r.Step),
			Function:  r.Function,
			Attempt:   r.Attempt,
		},
	}
	if r.Type == rotation.EventFailed || r.Type == rotation.EventTestFailed {
		d.ErrorMessage = r.Error
	}
	return Event{
		Version:    eventVersion,
		ID:         id,
		DetailType: detailServiceEvent,
		Source:     eventSource,
		Account:    account,
		Time:       t,
		Region:     region,
		Resources:  []string{r.SecretARN},
		Detail:     mustJSON(d),
	}
}

// LabelEvent shapes a label move as AWS's native "Secret Label Updated"
// event: detail {name, labelUpdated, versionId}, plus "previousVersionId"
// (the version that held the label, "" if none) and "removed" (the label
// left the secret; versionId is then "") as Rotor extensions. ok is false
// for the changes AWS does not emit an event for, AWSPENDING and
// AWSPREVIOUS moves, and for Resync notices. An empty id is replaced by a
// random UUID.
func LabelEvent(c events.LabelChange, account, region string, id string) (ev Event, ok bool) {
	if c.Resync || c.Label == "AWSPENDING" || c.Label == "AWSPREVIOUS" {
		return Event{}, false
	}
	if id == "" {
		id = newUUID()
	}
	return Event{
		Version:    eventVersion,
		ID:         id,
		DetailType: detailLabelUpdated,
		Source:     eventSource,
		Account:    account,
		Time:       wholeSecond(c.Time),
		Region:     region,
		Resources:  []string{c.SecretARN},
		Detail: mustJSON(labelDetail{
			Name:              c.Name,
			LabelUpdated:      c.Label,
			VersionID:         c.VersionID,
			PreviousVersionID: c.FromVersionID,
			Removed:           c.Removed(),
		}),
	}, true
}

// wholeSecond is how EventBridge writes times: UTC, no fraction.
func wholeSecond(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// marshal encodes v as compact JSON without HTML escaping (EventBridge
// writes "<" as is).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// mustJSON marshals the package's own detail types, which cannot fail.
func mustJSON(v any) json.RawMessage {
	b, err := marshal(v)
	if err != nil {
		panic(fmt.Sprintf("webhook: marshal %T: %v", v, err))
	}
	return b
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

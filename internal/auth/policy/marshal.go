package policy

import (
	"bytes"
	"encoding/json"
)

// The JSON shapes MarshalJSON writes, field order as IAM documents them.
type (
	policyJSON struct {
		Version   string          `json:"Version"`
		ID        string          `json:"Id,omitempty"`
		Statement []statementJSON `json:"Statement"`
	}
	statementJSON struct {
		Sid          string                         `json:"Sid,omitempty"`
		Effect       Effect                         `json:"Effect"`
		Principal    any                            `json:"Principal,omitempty"`
		NotPrincipal any                            `json:"NotPrincipal,omitempty"`
		Action       []string                       `json:"Action,omitempty"`
		NotAction    []string                       `json:"NotAction,omitempty"`
		Resource     []string                       `json:"Resource,omitempty"`
		NotResource  []string                       `json:"NotResource,omitempty"`
		Condition    map[string]map[string][]string `json:"Condition,omitempty"`
	}
	principalJSON struct {
		AWS           []string `json:"AWS,omitempty"`
		Service       []string `json:"Service,omitempty"`
		Federated     []string `json:"Federated,omitempty"`
		CanonicalUser []string `json:"CanonicalUser,omitempty"`
	}
)

// MarshalJSON writes the policy in a canonical form: Statement, Action,
// Resource, principal and condition values always as arrays, condition
// values as strings. Parsing the output gives back an equal Policy.
func (p Policy) MarshalJSON() ([]byte, error) {
	out := policyJSON{Version: p.Version, ID: p.ID, Statement: make([]statementJSON, len(p.Statements))}
	for i, s := range p.Statements {
		js := &out.Statement[i]
		js.Sid, js.Effect = s.Sid, s.Effect
		if s.Action.Not {
			js.NotAction = s.Action.Values
		} else {
			js.Action = s.Action.Values
		}
		if s.Resource.Not {
			js.NotResource = s.Resource.Values
		} else {
			js.Resource = s.Resource.Values
		}
		if pr := s.Principal; pr != nil {
			var v any = "*"
			if !pr.Any {
				v = principalJSON{AWS: pr.AWS, Service: pr.Service, Federated: pr.Federated, CanonicalUser: pr.CanonicalUser}
			}
			if pr.Not {
				js.NotPrincipal = v
			} else {
				js.Principal = v
			}
		}
		for _, c := range s.Conditions {
			if js.Condition == nil {
				js.Condition = map[string]map[string][]string{}
			}
			name := c.OperatorName()
			if js.Condition[name] == nil {
				js.Condition[name] = map[string][]string{}
			}
			js.Condition[name][c.Key] = c.Values
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

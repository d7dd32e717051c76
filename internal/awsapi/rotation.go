package awsapi

import (
	"context"

	"github.com/rotor-secrets/rotor/internal/rotation"
	"github.com/rotor-secrets/rotor/internal/secrets"
)

// Rotation operations: RotateSecret and CancelRotateSecret (AWS), and
// rotor.GetRotationStatus (Rotor's own).

type rotateSecretRequest struct {
	SecretId           string
	ClientRequestToken string
	RotationLambdaARN  string
	RotationRules      *rotationRulesOut
	RotateImmediately  *bool
}

type rotateSecretOut struct {
	ARN       string `json:",omitempty"`
	Name      string `json:",omitempty"`
	VersionId string `json:",omitempty"`
}

func rotateSecretIn(w *rotateSecretRequest) (secrets.RotateSecretInput, error) {
	in := secrets.RotateSecretInput{
		SecretID: w.SecretId, ClientRequestToken: w.ClientRequestToken,
		RotationLambdaARN: w.RotationLambdaARN, RotateImmediately: w.RotateImmediately,
	}
	if r := w.RotationRules; r != nil {
		in.RotationRules = &secrets.RotationRules{
			AutomaticallyAfterDays: r.AutomaticallyAfterDays,
			ScheduleExpression:     r.ScheduleExpression,
			Duration:               r.Duration,
		}
	}
	return in, nil
}

func rotateSecret(ctx context.Context, h *Handler, in secrets.RotateSecretInput) (any, error) {
	ref, version, err := h.svc.RotateSecret(ctx, in)
	if err != nil {
		return nil, err
	}
	return rotateSecretOut{ARN: ref.ARN, Name: ref.Name, VersionId: version}, nil
}

func cancelRotateSecret(ctx context.Context, h *Handler, id string) (any, error) {
	ref, version, err := h.svc.CancelRotateSecret(ctx, id)
	if err != nil {
		return nil, err
	}
	return rotateSecretOut{ARN: ref.ARN, Name: ref.Name, VersionId: version}, nil
}

type rotationRunOut struct {
	VersionId   string
	Mode        string
	Function    string
	StartedDate epochTime `json:",omitzero"`
	EndedDate   epochTime `json:",omitzero"`
	Outcome     string    `json:",omitempty"`
	Attempts    int
	Error       string `json:",omitempty"`
}

type rotationProgressOut struct {
	VersionId     string
	Mode          string
	Function      string
	NextStep      string
	Attempt       int
	NextRetryDate epochTime `json:",omitzero"`
	LastError     string    `json:",omitempty"`
	StartedDate   epochTime `json:",omitzero"`
	GaveUp        bool      `json:",omitempty"`
}

type rotationStatusOut struct {
	ARN               string
	Name              string
	RotationEnabled   bool
	RotationLambdaARN string               `json:",omitempty"`
	RotationRules     *rotationRulesOut    `json:",omitempty"`
	LastRotatedDate   epochTime            `json:",omitzero"`
	NextRotationDate  epochTime            `json:",omitzero"`
	InProgress        *rotationProgressOut `json:",omitempty"`
	History           []rotationRunOut
}

func getRotationStatus(ctx context.Context, h *Handler, id string) (any, error) {
	st, err := h.svc.RotationStatus(ctx, id)
	if err != nil {
		return nil, err
	}
	out := rotationStatusOut{
		ARN: st.ARN, Name: st.Name, RotationEnabled: st.RotationEnabled, RotationLambdaARN: st.RotationLambdaARN,
		LastRotatedDate: epochTime(st.LastRotatedDate), NextRotationDate: epochTime(st.NextRotationDate),
		History: make([]rotationRunOut, 0, len(st.History)),
	}
	if r := st.RotationRules; r != nil {
		out.RotationRules = &rotationRulesOut{AutomaticallyAfterDays: r.AutomaticallyAfterDays, ScheduleExpression: r.ScheduleExpression, Duration: r.Duration}
	}
	if p := st.InProgress; p != nil {
		out.InProgress = progressOut(p)
	}
	for _, r := range st.History {
		out.History = append(out.History, rotationRunOut{
			VersionId: r.Token, Mode: string(r.Mode), Function: r.Function, StartedDate: epochTime(r.StartedAt),
			EndedDate: epochTime(r.EndedAt), Outcome: string(r.Outcome), Attempts: r.Attempts, Error: r.Error,
		})
	}
	return out, nil
}

func progressOut(p *rotation.State) *rotationProgressOut {
	return &rotationProgressOut{
		VersionId: p.Token, Mode: string(p.Mode), Function: p.Function, NextStep: string(p.Next),
		Attempt: p.Attempt, NextRetryDate: epochTime(p.RetryAt), LastError: p.LastError,
		StartedDate: epochTime(p.StartedAt), GaveUp: p.Exhausted,
	}
}

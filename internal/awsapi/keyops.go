package awsapi

import (
	"context"

	"github.com/rotor-secrets/rotor/internal/keys"
)

// rotor.RotateMasterKey and rotor.GetMasterKeyStatus: a new master key
// version, and the versions with how many data keys each still wraps and
// the background re-wrap's progress (internal/keys). Served when
// Config.Keys is set; the caller needs the operation's action on "*".

var keyOperations = rotorOps(
	op("RotateMasterKey", noKeyInput, rotateMasterKey),
	op("GetMasterKeyStatus", noKeyInput, masterKeyStatus),
)

// KeyAdmin serves rotor.RotateMasterKey and rotor.GetMasterKeyStatus.
type KeyAdmin interface {
	Rotate(ctx context.Context) (keys.Version, error)
	Status(ctx context.Context) (keys.Status, error)
}

type keyRequest struct{}

type keyVersionOut struct {
	Id         string
	State      string
	CreateDate epochTime `json:",omitzero"`
	RetireDate epochTime `json:",omitzero"`
	Root       bool      `json:",omitempty"`
	Envelopes  *int      `json:",omitempty"`
}

type rotateMasterKeyOut struct {
	KeyVersion keyVersionOut
}

type rewrapOut struct {
	Pending int
	Done    int
	Running bool
}

type masterKeyStatusOut struct {
	Current string
	// RootKey is the root key's id; RootKeyWraps counts the stored
	// versions it wraps.
	RootKey      string
	RootKeyWraps int
	Versions     []keyVersionOut
	Rewrap       rewrapOut
}

func noKeyInput(*keyRequest) (struct{}, error) { return struct{}{}, nil }

func rotateMasterKey(ctx context.Context, h *Handler, _ struct{}) (any, error) {
	if h.iam != nil {
		if err := h.iam.Check(ctx, "*"); err != nil {
			return nil, err
		}
	}
	v, err := h.keys.Rotate(ctx)
	if err != nil {
		return nil, err
	}
	return rotateMasterKeyOut{KeyVersion: keyVersionOut{Id: v.ID, State: string(v.State), CreateDate: epochTime(v.CreatedAt)}}, nil
}

func masterKeyStatus(ctx context.Context, h *Handler, _ struct{}) (any, error) {
	if h.iam != nil {
		if err := h.iam.Check(ctx, "*"); err != nil {
			return nil, err
		}
	}
	st, err := h.keys.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := masterKeyStatusOut{
		Current: st.Current, RootKey: st.Root, RootKeyWraps: st.RootWraps,
		Versions: make([]keyVersionOut, len(st.Versions)),
		Rewrap:   rewrapOut{Pending: st.Rewrap.Pending, Done: st.Rewrap.Done, Running: st.Rewrap.Running},
	}
	for i, v := range st.Versions {
		n := v.Envelopes
		out.Versions[i] = keyVersionOut{Id: v.ID, State: string(v.State), CreateDate: epochTime(v.CreatedAt),
			RetireDate: epochTime(v.RetiredAt), Root: v.Root, Envelopes: &n}
	}
	return out, nil
}

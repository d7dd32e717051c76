package awsapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/keys"
	"github.com/rotor-secrets/rotor/internal/secrets"
)

// rotor.RotateRootKey: a new root key for the stored versions, once no
// data key is under the root key (RootKeyAdmin).
//
// rotor.RotateMasterKey and rotor.GetMasterKeyStatus: a new master key
// version of a key (the default one unless KeyId names another), and the
// key's versions with how many data keys each still wraps and the
// background re-wrap's progress; rotor.CreateKey, rotor.ListKeys,
// rotor.DescribeKey, rotor.EnableKey and rotor.DisableKey: named keys, which
// CreateSecret and UpdateSecret select with KmsKeyId (internal/keys).
// Served when Config.Keys is set; the caller needs the operation's action
// on "*".

var keyOperations = rotorOps(
	op("RotateMasterKey", keyIDInput, rotateMasterKey),
	op("RotateRootKey", rotateRootKeyInput, rotateRootKey),
	op("GetMasterKeyStatus", keyIDInput, masterKeyStatus),
	op("CreateKey", createKeyInput, createKey),
	op("ListKeys", noInput, listKeys),
	op("DescribeKey", requiredKeyID, describeKey),
	op("EnableKey", requiredKeyID, func(ctx context.Context, h *Handler, id string) (any, error) {
		return setKeyEnabled(ctx, h, id, true)
	}),
	op("DisableKey", requiredKeyID, func(ctx context.Context, h *Handler, id string) (any, error) {
		return setKeyEnabled(ctx, h, id, false)
	}),
)

// KeyAdmin serves the key operations (internal/keys.Service).
type KeyAdmin interface {
	RotateKey(ctx context.Context, family string) (keys.Version, error)
	StatusOf(ctx context.Context, family string) (keys.Status, error)
	CreateKey(ctx context.Context, alias, description string) (keys.Key, error)
	Keys(ctx context.Context) ([]keys.Key, error)
	Lookup(ctx context.Context, id string) (keys.Key, error)
	SetEnabled(ctx context.Context, id string, enabled bool) (keys.Key, error)
}

// RootKeyAdmin is a KeyAdmin that can also replace the root key
// (rotor.RotateRootKey); passphrase is the request's, for a root key sealed
// with one.
type RootKeyAdmin interface {
	RotateRootKey(ctx context.Context, passphrase []byte) (keys.RootRotation, error)
}

// rotateRootKeyRequest's Passphrase is never logged nor audited.
type rotateRootKeyRequest struct {
	Passphrase string
}

type rotateRootKeyOut struct {
	OldRootKey        string
	RootKey           string
	RewrappedVersions int
	Warning           string `json:",omitempty"`
}

type keyRequest struct {
	KeyId string
}

type createKeyRequest struct {
	Alias       string
	Description string
}

type keyMetadataOut struct {
	KeyId        string `json:",omitempty"`
	Arn          string `json:",omitempty"`
	Alias        string `json:",omitempty"`
	Description  string `json:",omitempty"`
	Enabled      bool
	KeyState     string
	KeyManager   string
	CreationDate epochTime `json:",omitzero"`
}

type keyOut struct {
	KeyMetadata keyMetadataOut
}

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
	KeyId   string `json:",omitempty"`
	Current string
	// RootKey is the root key's id; RootKeyWraps counts the stored
	// versions it wraps (of every key).
	RootKey      string
	RootKeyWraps int
	Versions     []keyVersionOut
	Rewrap       rewrapOut
}

func keyIDInput(r *keyRequest) (string, error) {
	if len(r.KeyId) > 2048 {
		return "", &secrets.Error{Kind: secrets.KindInvalidParameter, Msg: "KeyId has at most 2048 characters."}
	}
	return r.KeyId, nil
}

func requiredKeyID(r *keyRequest) (string, error) {
	if r.KeyId == "" {
		return "", &secrets.Error{Kind: secrets.KindInvalidParameter, Msg: "KeyId is required."}
	}
	return keyIDInput(r)
}

func noInput(*struct{}) (struct{}, error) { return struct{}{}, nil }

func createKeyInput(r *createKeyRequest) (createKeyRequest, error) { return *r, nil }

func (h *Handler) checkKeyAdmin(ctx context.Context) error {
	if h.iam != nil {
		return h.iam.Check(ctx, "*")
	}
	return nil
}

// keyError maps internal/keys' errors to the wire.
func keyError(err error, id string) error {
	var ie *keys.InvalidError
	var pe *keys.PreconditionError
	switch {
	case errors.As(err, &pe):
		return &secrets.Error{Kind: secrets.KindInvalidRequest, Msg: pe.Msg}
	case errors.Is(err, keys.ErrNotFound):
		return &secrets.Error{Kind: secrets.KindNotFound, Msg: "Rotor can't find the KMS key " + echoKey(id) + "."}
	case errors.Is(err, keys.ErrAliasExists):
		return &secrets.Error{Kind: secrets.KindExists, Msg: "An alias with the name " + echoKey(id) + " already exists."}
	case errors.Is(err, keys.ErrDefaultKey):
		return &secrets.Error{Kind: secrets.KindInvalidRequest, Msg: "The default key alias/aws/secretsmanager cannot be enabled or disabled."}
	case errors.As(err, &ie):
		return &secrets.Error{Kind: secrets.KindInvalidParameter, Msg: ie.Msg}
	}
	return err
}

// echoKey quotes a caller's key reference, bounded.
func echoKey(id string) string {
	if len(id) > 256 {
		id = id[:256] + "…"
	}
	b := []byte{}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			r = '?'
		}
		b = append(b, string(r)...)
	}
	return string(b)
}

func keyMetadata(k keys.Key) keyOut {
	state, manager := "Disabled", "CUSTOMER"
	if k.Enabled {
		state = "Enabled"
	}
	if k.Default {
		manager = "AWS"
	}
	return keyOut{KeyMetadata: keyMetadataOut{KeyId: k.ID, Arn: k.ARN, Alias: k.Alias, Description: k.Description,
		Enabled: k.Enabled, KeyState: state, KeyManager: manager, CreationDate: epochTime(k.CreatedAt)}}
}

// family resolves an optional KeyId to the key family it names.
func (h *Handler) family(ctx context.Context, id string) (string, error) {
	if id == "" {
		return "", nil
	}
	k, err := h.keys.Lookup(ctx, id)
	if err != nil {
		return "", keyError(err, id)
	}
	return k.Family(), nil
}

func rotateMasterKey(ctx context.Context, h *Handler, id string) (any, error) {
	if err := h.checkKeyAdmin(ctx); err != nil {
		return nil, err
	}
	family, err := h.family(ctx, id)
	if err != nil {
		return nil, err
	}
	v, err := h.keys.RotateKey(ctx, family)
	if err != nil {
		return nil, keyError(err, id)
	}
	return rotateMasterKeyOut{KeyVersion: keyVersionOut{Id: v.ID, State: string(v.State), CreateDate: epochTime(v.CreatedAt)}}, nil
}

func rotateRootKeyInput(r *rotateRootKeyRequest) ([]byte, error) {
	if len(r.Passphrase) > keyring.MaxPassphraseLen {
		return nil, &secrets.Error{Kind: secrets.KindInvalidParameter, Msg: fmt.Sprintf("Passphrase has at most %d bytes.", keyring.MaxPassphraseLen)}
	}
	return []byte(r.Passphrase), nil
}

// rotateRootKey is rotor.RotateRootKey: a new root key wraps the stored
// master key versions (internal/keys.Service.RotateRoot).
func rotateRootKey(ctx context.Context, h *Handler, pass []byte) (any, error) {
	defer clear(pass)
	if err := h.checkKeyAdmin(ctx); err != nil {
		return nil, err
	}
	ra, ok := h.keys.(RootKeyAdmin)
	if !ok {
		return nil, &secrets.Error{Kind: secrets.KindInvalidRequest, Msg: "This server cannot rotate its root key."}
	}
	r, err := ra.RotateRootKey(ctx, pass)
	if err != nil {
		return nil, keyError(err, "")
	}
	return rotateRootKeyOut{OldRootKey: r.Old, RootKey: r.New, RewrappedVersions: r.Rewrapped, Warning: r.Warning}, nil
}

func masterKeyStatus(ctx context.Context, h *Handler, id string) (any, error) {
	if err := h.checkKeyAdmin(ctx); err != nil {
		return nil, err
	}
	family, err := h.family(ctx, id)
	if err != nil {
		return nil, err
	}
	st, err := h.keys.StatusOf(ctx, family)
	if err != nil {
		return nil, keyError(err, id)
	}
	out := masterKeyStatusOut{
		KeyId:   family,
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

func createKey(ctx context.Context, h *Handler, in createKeyRequest) (any, error) {
	if err := h.checkKeyAdmin(ctx); err != nil {
		return nil, err
	}
	k, err := h.keys.CreateKey(ctx, in.Alias, in.Description)
	if err != nil {
		return nil, keyError(err, in.Alias)
	}
	return keyMetadata(k), nil
}

func listKeys(ctx context.Context, h *Handler, _ struct{}) (any, error) {
	if err := h.checkKeyAdmin(ctx); err != nil {
		return nil, err
	}
	ks, err := h.keys.Keys(ctx)
	if err != nil {
		return nil, err
	}
	out := struct{ Keys []keyMetadataOut }{Keys: make([]keyMetadataOut, len(ks))}
	for i, k := range ks {
		out.Keys[i] = keyMetadata(k).KeyMetadata
	}
	return out, nil
}

func describeKey(ctx context.Context, h *Handler, id string) (any, error) {
	if err := h.checkKeyAdmin(ctx); err != nil {
		return nil, err
	}
	k, err := h.keys.Lookup(ctx, id)
	if err != nil {
		return nil, keyError(err, id)
	}
	return keyMetadata(k), nil
}

func setKeyEnabled(ctx context.Context, h *Handler, id string, enabled bool) (any, error) {
	if err := h.checkKeyAdmin(ctx); err != nil {
		return nil, err
	}
	k, err := h.keys.SetEnabled(ctx, id, enabled)
	if err != nil {
		return nil, keyError(err, id)
	}
	return keyMetadata(k), nil
}

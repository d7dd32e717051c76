// Package keyring is Rotor's envelope encryption.
//
// Seal encrypts a value with AES-256-GCM under a fresh random 256-bit data
// key, and wraps that data key with AES-256-GCM under the current master key.
// The caller's additional data (for secret versions: the secret ARN and the
// version id) is authenticated by both layers, so a ciphertext moved to
// another row fails to open with ErrDecrypt.
//
// Sealed format, version 1 (all integers big-endian):
//
//	byte     format version (1)
//	byte     n = length of the master key id
//	n bytes  master key id (ASCII)
//	12 bytes nonce of the wrapped data key
//	48 bytes wrapped data key (32-byte key + 16-byte GCM tag)
//	12 bytes nonce of the value
//	rest     value ciphertext + 16-byte GCM tag
//
// The data key's additional data is "rotor/dk/1" || key id || aad; the value's
// is "rotor/v/1" || aad.
//
// Master key versions. A keyring holds several master keys; one is current
// (Seal wraps with it), the others only open. Rewrap moves an envelope's
// data key from the master key recorded in it to the current one without
// touching the value ciphertext: constant work whatever the value's size,
// and the result is an ordinary version-1 envelope. Add, SetCurrent and
// Remove change the set at run time (internal/keys drives them).
//
// Families. Every master key belongs to a family (a KMS key, as
// internal/keys calls it); "" is the default family, the one Seal, Add and
// SetCurrent address. Each family has its own current key (SealIn,
// SetCurrentIn); Rewrap moves an envelope to the current key of the family
// its key belongs to, so the format needs no family field. A disabled
// family (SetDisabled) still re-wraps, but Open and SealIn refuse it with
// a *DisabledError.
//
// Versions are stored wrapped by a root key (WrapMasterKey,
// UnwrapMasterKey): AES-256-GCM, 12-byte nonce || ciphertext+tag, with
// additional data "rotor/master-key/" || version id, so a wrapped version
// cannot be passed off as another.
//
// A Keyring is safe for concurrent use.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ErrDecrypt is returned by Open when a sealed value cannot be decrypted:
// wrong additional data, tampered bytes, an unknown master key, or a
// malformed envelope. It never says which, on purpose.
var ErrDecrypt = errors.New("keyring: cannot decrypt")

const (
	formatV1 = 1
	keySize  = 32
	nonceLen = 12
	tagLen   = 16
)

// MasterKey is one version of a master key.
type MasterKey struct {
	ID  string // stable identifier, recorded with every data key it wraps
	Key []byte // 32 bytes
}

// NewMasterKey returns a fresh random master key.
func NewMasterKey() (MasterKey, error) {
	k := make([]byte, keySize)
	if _, err := rand.Read(k); err != nil {
		return MasterKey{}, fmt.Errorf("generate master key: %w", err)
	}
	return MasterKey{ID: KeyIDFor(k), Key: k}, nil
}

// KeyIDFor derives a master key's id from its material, so that a key file
// that does not belong to a store is recognised by id before any decryption.
func KeyIDFor(key []byte) string {
	sum := sha256.Sum256(append([]byte("rotor/master-key-id/1"), key...))
	return "mk-" + hex.EncodeToString(sum[:6])
}

// DisabledError is returned by Open and SealIn for a key of a disabled
// family.
type DisabledError struct{ Family string }

func (e *DisabledError) Error() string { return "keyring: key family " + e.Family + " is disabled" }

// Keyring seals with its current master key and opens with any of its keys.
type Keyring struct {
	mu       sync.RWMutex
	current  string            // of the default family
	currents map[string]string // family -> current key id, named families
	family   map[string]string // key id -> family, named families only
	disabled map[string]bool
	aeads    map[string]cipher.AEAD
}

// New returns a keyring whose current key is current; others can still open
// values sealed under them.
func New(current MasterKey, others ...MasterKey) (*Keyring, error) {
	k := &Keyring{current: current.ID, aeads: make(map[string]cipher.AEAD),
		currents: make(map[string]string), family: make(map[string]string), disabled: make(map[string]bool)}
	for _, mk := range append([]MasterKey{current}, others...) {
		if err := checkMasterKey(mk); err != nil {
			return nil, err
		}
		a, err := newAEAD(mk.Key)
		if err != nil {
			return nil, err
		}
		k.aeads[mk.ID] = a
	}
	return k, nil
}

// CurrentKeyID returns the id of the key new values are sealed with.
func (k *Keyring) CurrentKeyID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}

// Add makes mk available for opening (and for SetCurrent). Adding a key
// id the keyring has already is a no-op.
func (k *Keyring) Add(mk MasterKey) error { return k.AddIn("", mk) }

// AddIn is Add for a key of the family.
func (k *Keyring) AddIn(family string, mk MasterKey) error {
	if err := checkMasterKey(mk); err != nil {
		return err
	}
	a, err := newAEAD(mk.Key)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.aeads[mk.ID]; !ok {
		k.aeads[mk.ID] = a
		if family != "" {
			k.family[mk.ID] = family
		}
	}
	return nil
}

// FamilyOf returns the family of the key id ("" for the default family or
// a key the keyring does not hold).
func (k *Keyring) FamilyOf(id string) string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.family[id]
}

// SetCurrentIn makes the key id, which the keyring must hold in the
// family, the one SealIn wraps the family's data keys with.
func (k *Keyring) SetCurrentIn(family, id string) error {
	if family == "" {
		return k.SetCurrent(id)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.aeads[id] == nil || k.family[id] != family {
		return fmt.Errorf("keyring: no master key %s in family %s", id, family)
	}
	k.currents[family] = id
	return nil
}

// CurrentKeyIDIn returns the current key of the family, "" if it has none.
func (k *Keyring) CurrentKeyIDIn(family string) string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.currentOf(family)
}

func (k *Keyring) currentOf(family string) string {
	if family == "" {
		return k.current
	}
	return k.currents[family]
}

// SetDisabled disables or enables the family: Open and SealIn refuse a
// disabled family's keys at once.
func (k *Keyring) SetDisabled(family string, disabled bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if disabled {
		k.disabled[family] = true
	} else {
		delete(k.disabled, family)
	}
}

// SetCurrent makes the key id, which the keyring must hold, the one Seal
// and Rewrap wrap data keys with from now on.
func (k *Keyring) SetCurrent(id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.aeads[id] == nil {
		return fmt.Errorf("keyring: no master key %s", id)
	}
	k.current = id
	return nil
}

// Remove forgets the key id: envelopes under it no longer open. The
// current key cannot be removed.
func (k *Keyring) Remove(id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if id == k.current || id == k.currents[k.family[id]] {
		return fmt.Errorf("keyring: master key %s is current", id)
	}
	delete(k.aeads, id)
	delete(k.family, id)
	return nil
}

// Has reports whether the keyring holds the key id.
func (k *Keyring) Has(id string) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.aeads[id] != nil
}

func checkMasterKey(mk MasterKey) error {
	if len(mk.Key) != keySize {
		return fmt.Errorf("master key %s: want %d bytes, have %d", mk.ID, keySize, len(mk.Key))
	}
	if mk.ID == "" || len(mk.ID) > 255 {
		return fmt.Errorf("master key id %q: want 1-255 characters", mk.ID)
	}
	return nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Seal encrypts plaintext bound to aad and returns the envelope and the id
// of the master key that wrapped its data key.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, string, error) {
	return k.SealIn("", plaintext, aad)
}

// SealIn is Seal with the family's current key; a *DisabledError if the
// family is disabled, an error if it has no current key.
func (k *Keyring) SealIn(family string, plaintext, aad []byte) ([]byte, string, error) {
	k.mu.RLock()
	id := k.currentOf(family)
	master, disabled := k.aeads[id], k.disabled[family]
	k.mu.RUnlock()
	if disabled {
		return nil, "", &DisabledError{Family: family}
	}
	if master == nil {
		return nil, "", fmt.Errorf("keyring: no current master key in family %q", family)
	}

	var buf [keySize + 2*nonceLen]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return nil, "", fmt.Errorf("seal: random: %w", err)
	}
	dk, dkNonce, vNonce := buf[:keySize], buf[keySize:keySize+nonceLen], buf[keySize+nonceLen:]
	valueAEAD, err := newAEAD(dk)
	if err != nil {
		return nil, "", err
	}

	out := make([]byte, 0, 2+len(id)+nonceLen+keySize+tagLen+nonceLen+len(plaintext)+tagLen)
	out = append(out, formatV1, byte(len(id)))
	out = append(out, id...)
	out = append(out, dkNonce...)
	out = master.Seal(out, dkNonce, dk, dataKeyAD(id, aad))
	out = append(out, vNonce...)
	out = valueAEAD.Seal(out, vNonce, plaintext, valueAD(aad))
	clear(buf[:])
	return out, id, nil
}

// Open decrypts an envelope made by Seal with the same aad. A
// *DisabledError if its key's family is disabled.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	id, rest, ok := parseHeader(sealed)
	if !ok || len(rest) < nonceLen+keySize+tagLen+nonceLen+tagLen {
		return nil, ErrDecrypt
	}
	k.mu.RLock()
	master, family := k.aeads[id], k.family[id]
	disabled := k.disabled[family]
	k.mu.RUnlock()
	if master == nil {
		return nil, ErrDecrypt
	}
	if disabled {
		return nil, &DisabledError{Family: family}
	}
	dkNonce, wrapped := rest[:nonceLen], rest[nonceLen:nonceLen+keySize+tagLen]
	rest = rest[nonceLen+keySize+tagLen:]
	var dkBuf [keySize]byte
	dk, err := master.Open(dkBuf[:0], dkNonce, wrapped, dataKeyAD(id, aad))
	if err != nil {
		return nil, ErrDecrypt
	}
	defer clear(dkBuf[:])
	valueAEAD, err := newAEAD(dk)
	if err != nil {
		return nil, ErrDecrypt
	}
	pt, err := valueAEAD.Open(nil, rest[:nonceLen], rest[nonceLen:], valueAD(aad))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// Rewrap returns the envelope sealed with aad re-wrapped under the current
// master key of its key's family, and that key's id: the data key is unwrapped with the key the
// envelope records and wrapped again with a fresh nonce; the value's nonce
// and ciphertext are kept byte for byte and not decrypted (a tampered
// value fails at Open as before). An envelope already under the
// current key is returned as it is. ErrDecrypt when the envelope does not
// open with aad, is malformed, or names a key the keyring does not hold.
func (k *Keyring) Rewrap(sealed, aad []byte) ([]byte, string, error) {
	return k.rewrap(sealed, aad, false, "")
}

// RewrapIn re-wraps the envelope under the current key of another family
// (a secret moved to another KMS key). Unlike Rewrap it refuses an
// envelope of a disabled family, with a *DisabledError, and a disabled
// target family.
func (k *Keyring) RewrapIn(family string, sealed, aad []byte) ([]byte, string, error) {
	return k.rewrap(sealed, aad, true, family)
}

func (k *Keyring) rewrap(sealed, aad []byte, move bool, target string) ([]byte, string, error) {
	id, rest, ok := parseHeader(sealed)
	if !ok || len(rest) < nonceLen+keySize+tagLen+nonceLen+tagLen {
		return nil, "", ErrDecrypt
	}
	k.mu.RLock()
	from := k.family[id]
	if !move {
		target = from
	}
	cur := k.currentOf(target)
	old, master := k.aeads[id], k.aeads[cur]
	fromDisabled, toDisabled := k.disabled[from], k.disabled[target]
	k.mu.RUnlock()
	if old == nil {
		return nil, "", ErrDecrypt
	}
	if move && fromDisabled {
		return nil, "", &DisabledError{Family: from}
	}
	if move && toDisabled {
		return nil, "", &DisabledError{Family: target}
	}
	if master == nil {
		return nil, "", fmt.Errorf("keyring: no current master key in family %q", target)
	}
	dkNonce, wrapped, value := rest[:nonceLen], rest[nonceLen:nonceLen+keySize+tagLen], rest[nonceLen+keySize+tagLen:]
	var dkBuf [keySize]byte
	dk, err := old.Open(dkBuf[:0], dkNonce, wrapped, dataKeyAD(id, aad))
	if err != nil {
		return nil, "", ErrDecrypt
	}
	defer clear(dkBuf[:])
	if id == cur {
		return sealed, id, nil
	}
	var nonce [nonceLen]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, "", fmt.Errorf("rewrap: random: %w", err)
	}
	out := make([]byte, 0, 2+len(cur)+nonceLen+keySize+tagLen+len(value))
	out = append(out, formatV1, byte(len(cur)))
	out = append(out, cur...)
	out = append(out, nonce[:]...)
	out = master.Seal(out, nonce[:], dk, dataKeyAD(cur, aad))
	out = append(out, value...)
	return out, cur, nil
}

// WrapMasterKey encrypts mk's material under root, bound to mk.ID.
func WrapMasterKey(root, mk MasterKey) ([]byte, error) {
	if err := checkMasterKey(mk); err != nil {
		return nil, err
	}
	a, err := newAEAD(root.Key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, nonceLen, nonceLen+keySize+tagLen)
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("wrap master key: random: %w", err)
	}
	return a.Seal(out, out[:nonceLen], mk.Key, masterKeyAD(mk.ID)), nil
}

// UnwrapMasterKey decrypts the version id wrapped by WrapMasterKey under
// root. ErrDecrypt when root is not the key it was wrapped with, or the
// bytes or the id do not match.
func UnwrapMasterKey(root MasterKey, id string, wrapped []byte) (MasterKey, error) {
	if len(wrapped) != nonceLen+keySize+tagLen {
		return MasterKey{}, ErrDecrypt
	}
	a, err := newAEAD(root.Key)
	if err != nil {
		return MasterKey{}, err
	}
	key, err := a.Open(nil, wrapped[:nonceLen], wrapped[nonceLen:], masterKeyAD(id))
	if err != nil {
		return MasterKey{}, ErrDecrypt
	}
	return MasterKey{ID: id, Key: key}, nil
}

func masterKeyAD(id string) []byte { return []byte("rotor/master-key/" + id) }

// KeyIDOf returns the master key id recorded in an envelope.
func KeyIDOf(sealed []byte) (string, bool) {
	id, _, ok := parseHeader(sealed)
	return id, ok
}

func parseHeader(sealed []byte) (id string, rest []byte, ok bool) {
	if len(sealed) < 2 || sealed[0] != formatV1 {
		return "", nil, false
	}
	n := int(sealed[1])
	if len(sealed) < 2+n {
		return "", nil, false
	}
	return string(sealed[2 : 2+n]), sealed[2+n:], true
}

func dataKeyAD(id string, aad []byte) []byte {
	return append(append([]byte("rotor/dk/1"), id...), aad...)
}

func valueAD(aad []byte) []byte {
	return append([]byte("rotor/v/1"), aad...)
}

// LoadOrCreateKeyFile reads the master key stored at path, or creates the
// file (mode 0600) with a fresh key when it does not exist. created reports
// the latter. The file holds the key in base64 on one line.
func LoadOrCreateKeyFile(path string) (mk MasterKey, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		mk, err := ParseKey(string(b))
		if err != nil {
			return MasterKey{}, false, fmt.Errorf("master key file %s: %w", path, err)
		}
		return mk, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return MasterKey{}, false, fmt.Errorf("read master key file: %w", err)
	}
	mk, err = NewMasterKey()
	if err != nil {
		return MasterKey{}, false, err
	}
	if err := writeFileAtomic(path, []byte(base64.StdEncoding.EncodeToString(mk.Key)+"\n"), 0o600); err != nil {
		return MasterKey{}, false, fmt.Errorf("write master key file: %w", err)
	}
	return mk, true, nil
}

// ParseKey decodes a master key given as base64 (or 64 hex digits).
func ParseKey(s string) (MasterKey, error) {
	s = strings.TrimSpace(s)
	var key []byte
	if len(s) == 2*keySize {
		if b, err := hex.DecodeString(s); err == nil {
			key = b
		}
	}
	if key == nil {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return MasterKey{}, errors.New("master key is neither base64 nor hex")
		}
		key = b
	}
	if len(key) != keySize {
		return MasterKey{}, fmt.Errorf("master key has %d bytes, want %d", len(key), keySize)
	}
	return MasterKey{ID: KeyIDFor(key), Key: key}, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Link rather than rename so that an existing file is never replaced.
	if err := os.Link(f.Name(), path); err != nil {
		return err
	}
	return nil
}

package keyring

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/argon2"
)

// Passphrase sealing: the root key is kept in a seal file, encrypted with
// AES-256-GCM under a key derived from a passphrase with Argon2id.
//
// Seal file format, version 1 (128 bytes, integers big-endian):
//
//	9 bytes  magic "rotorseal"
//	byte     format version (1)
//	4 bytes  Argon2id time (passes)
//	4 bytes  Argon2id memory in KiB
//	byte     Argon2id threads
//	byte     derived key length (32)
//	16 bytes salt
//	12 bytes nonce
//	48 bytes root key ciphertext + 16-byte GCM tag
//	32 bytes SHA-256 of all the bytes above
//
// The GCM additional data is every byte before the nonce, so the parameters
// and salt are authenticated with the key. A wrong passphrase fails GCM's
// authentication (ErrWrongPassphrase); the checksum tells accidental damage
// (ErrSealCorrupt) from a wrong passphrase. Deliberate tampering that
// recomputes the checksum is reported as a wrong passphrase: nothing can
// tell the two apart without the key.

// ErrWrongPassphrase is returned when a passphrase does not open a seal file.
var ErrWrongPassphrase = errors.New("wrong passphrase")

// ErrSealCorrupt is returned when a seal file is damaged or not a seal file.
var ErrSealCorrupt = errors.New("seal file is corrupt")

// ErrSealMissing is returned by PassphraseSource.RootKey when the seal file
// does not exist and Create is not set.
var ErrSealMissing = errors.New("seal file is missing")

// Argon2Params are the Argon2id parameters of a seal file.
type Argon2Params struct {
	Time    uint32 // passes over the memory
	Memory  uint32 // KiB
	Threads uint8
	KeyLen  uint8 // always 32 (AES-256)
}

// DefaultArgon2Params are used for new seal files: 3 passes over 64 MiB with
// 2 lanes, within OWASP's recommended range for Argon2id; about a tenth of a
// second per attempt on a current server core.
var DefaultArgon2Params = Argon2Params{Time: 3, Memory: 64 << 10, Threads: 2, KeyLen: keySize}

// Bounds on the parameters read from a seal file, so a damaged or hostile
// file cannot make the server allocate or compute without limit.
const (
	maxArgonTime   = 64
	maxArgonMemory = 4 << 20 // 4 GiB in KiB
	// MinPassphraseLen is the shortest passphrase a new seal file accepts.
	MinPassphraseLen = 8
	// MaxPassphraseLen bounds a passphrase.
	MaxPassphraseLen = 1024
)

func (p Argon2Params) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxArgonTime:
		return fmt.Errorf("argon2id time %d: want 1-%d", p.Time, maxArgonTime)
	case p.Threads < 1:
		return fmt.Errorf("argon2id threads %d: want at least 1", p.Threads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxArgonMemory:
		return fmt.Errorf("argon2id memory %d KiB: want %d-%d", p.Memory, 8*uint32(p.Threads), maxArgonMemory)
	case p.KeyLen != keySize:
		return fmt.Errorf("argon2id key length %d: want %d", p.KeyLen, keySize)
	}
	return nil
}

const (
	sealMagic     = "rotorseal"
	sealFormatV1  = 1
	sealSaltLen   = 16
	sealHeaderLen = len(sealMagic) + 1 + 4 + 4 + 1 + 1 + sealSaltLen
	sealFileLen   = sealHeaderLen + nonceLen + keySize + tagLen + sha256.Size
)

// PassphraseSource opens the root key kept in a seal file with a passphrase.
type PassphraseSource struct {
	Path       string
	Passphrase []byte
	// Create, when the seal file does not exist, writes one holding a fresh
	// random root key; Created, when not nil, is then called with it.
	Create  bool
	Created func(MasterKey)
	// Params are the Argon2id parameters of a created file; zero means
	// DefaultArgon2Params. An existing file's own parameters are always
	// used.
	Params Argon2Params
}

// RootKey implements Source. It returns ErrWrongPassphrase, ErrSealCorrupt
// or ErrSealMissing (wrapped) for those cases.
func (s PassphraseSource) RootKey(ctx context.Context) (MasterKey, error) {
	if err := ctx.Err(); err != nil {
		return MasterKey{}, err
	}
	if len(s.Passphrase) == 0 {
		return MasterKey{}, errors.New("empty passphrase")
	}
	if len(s.Passphrase) > MaxPassphraseLen {
		return MasterKey{}, fmt.Errorf("passphrase longer than %d bytes", MaxPassphraseLen)
	}
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		if !s.Create {
			return MasterKey{}, fmt.Errorf("%s: %w", s.Path, ErrSealMissing)
		}
		mk, err := NewMasterKey()
		if err != nil {
			return MasterKey{}, err
		}
		if err := WriteSealFile(s.Path, s.Passphrase, mk, s.Params); err != nil {
			return MasterKey{}, err
		}
		if s.Created != nil {
			s.Created(mk)
		}
		return mk, nil
	}
	if err != nil {
		return MasterKey{}, fmt.Errorf("read seal file: %w", err)
	}
	mk, err := openSeal(b, s.Passphrase)
	if err != nil {
		return MasterKey{}, fmt.Errorf("%s: %w", s.Path, err)
	}
	return mk, nil
}

// ReadSealParams returns the Argon2id parameters recorded in a seal file.
func ReadSealParams(path string) (Argon2Params, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Argon2Params{}, err
	}
	p, _, err := parseSeal(b)
	return p, err
}

// WriteSealFile seals root under passphrase into a new file at path (mode
// 0600), durably: the file and its directory are synced before it returns.
// It never replaces an existing file. Zero params mean DefaultArgon2Params.
func WriteSealFile(path string, passphrase []byte, root MasterKey, params Argon2Params) error {
	if params == (Argon2Params{}) {
		params = DefaultArgon2Params
	}
	if err := params.validate(); err != nil {
		return err
	}
	if len(passphrase) < MinPassphraseLen {
		return fmt.Errorf("passphrase too short: want at least %d characters", MinPassphraseLen)
	}
	if len(passphrase) > MaxPassphraseLen {
		return fmt.Errorf("passphrase longer than %d bytes", MaxPassphraseLen)
	}
	if len(root.Key) != keySize {
		return fmt.Errorf("root key: want %d bytes, have %d", keySize, len(root.Key))
	}
	out := make([]byte, 0, sealFileLen)
	out = append(out, sealMagic...)
	out = append(out, sealFormatV1)
	out = binary.BigEndian.AppendUint32(out, params.Time)
	out = binary.BigEndian.AppendUint32(out, params.Memory)
	out = append(out, params.Threads, params.KeyLen)
	salt := make([]byte, sealSaltLen+nonceLen)
	if _, err := rand.Read(salt); err != nil {
		return fmt.Errorf("seal: random: %w", err)
	}
	out = append(out, salt[:sealSaltLen]...)
	nonce := salt[sealSaltLen:]
	kek := derive(passphrase, salt[:sealSaltLen], params)
	defer clear(kek)
	a, err := newAEAD(kek)
	if err != nil {
		return err
	}
	header := out[:sealHeaderLen]
	out = append(out, nonce...)
	out = a.Seal(out, nonce, root.Key, header)
	sum := sha256.Sum256(out)
	out = append(out, sum[:]...)
	if err := writeFileAtomic(path, out, 0o600); err != nil {
		return fmt.Errorf("write seal file: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func derive(passphrase, salt []byte, p Argon2Params) []byte {
	return argon2.IDKey(passphrase, salt, p.Time, p.Memory, p.Threads, uint32(p.KeyLen))
}

// parseSeal checks a seal file's structure and checksum and returns its
// parameters and its bytes without the checksum.
func parseSeal(b []byte) (Argon2Params, []byte, error) {
	if len(b) != sealFileLen || !bytes.HasPrefix(b, []byte(sealMagic)) {
		return Argon2Params{}, nil, ErrSealCorrupt
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:]) {
		return Argon2Params{}, nil, fmt.Errorf("%w: checksum mismatch", ErrSealCorrupt)
	}
	r := body[len(sealMagic):]
	if r[0] != sealFormatV1 {
		return Argon2Params{}, nil, fmt.Errorf("%w: unknown format version %d", ErrSealCorrupt, r[0])
	}
	p := Argon2Params{
		Time:    binary.BigEndian.Uint32(r[1:5]),
		Memory:  binary.BigEndian.Uint32(r[5:9]),
		Threads: r[9],
		KeyLen:  r[10],
	}
	if err := p.validate(); err != nil {
		return Argon2Params{}, nil, fmt.Errorf("%w: %v", ErrSealCorrupt, err)
	}
	return p, body, nil
}

func openSeal(b, passphrase []byte) (MasterKey, error) {
	p, body, err := parseSeal(b)
	if err != nil {
		return MasterKey{}, err
	}
	header := body[:sealHeaderLen]
	salt := header[sealHeaderLen-sealSaltLen:]
	nonce := body[sealHeaderLen : sealHeaderLen+nonceLen]
	ct := body[sealHeaderLen+nonceLen:]
	kek := derive(passphrase, salt, p)
	defer clear(kek)
	a, err := newAEAD(kek)
	if err != nil {
		return MasterKey{}, err
	}
	key, err := a.Open(nil, nonce, ct, header)
	if err != nil {
		return MasterKey{}, ErrWrongPassphrase
	}
	return MasterKey{ID: KeyIDFor(key), Key: key}, nil
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

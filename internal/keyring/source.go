package keyring

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Source supplies the root key: the master key that protects everything
// else in a data dir. The sources are a key file (FileSource, the default),
// an environment variable (EnvSource) and a passphrase (PassphraseSource);
// an external KMS would be one more implementation.
//
// RootKey may do I/O and may be slow (a passphrase is stretched with
// Argon2id). Its errors never contain key material or a passphrase.
type Source interface {
	RootKey(ctx context.Context) (MasterKey, error)
}

// ErrKeyFileMissing is returned by FileSource.RootKey when the key file does
// not exist and NoCreate is set.
var ErrKeyFileMissing = errors.New("master key file is missing")

// FileSource reads the root key from a key file (base64 on one line, mode
// 0600), creating it with a fresh key when it does not exist unless
// NoCreate is set.
type FileSource struct {
	Path string
	// NoCreate refuses to create a missing file (ErrKeyFileMissing): set it
	// when data sealed under some key exists already, so that a lost key
	// file is reported instead of replaced.
	NoCreate bool
	// Created, when not nil, is called with the key once a new file has
	// been written.
	Created func(MasterKey)
}

// RootKey implements Source.
func (s FileSource) RootKey(ctx context.Context) (MasterKey, error) {
	if err := ctx.Err(); err != nil {
		return MasterKey{}, err
	}
	if s.NoCreate {
		if _, err := os.Stat(s.Path); errors.Is(err, os.ErrNotExist) {
			return MasterKey{}, fmt.Errorf("%s: %w", s.Path, ErrKeyFileMissing)
		}
	}
	mk, created, err := LoadOrCreateKeyFile(s.Path)
	if err != nil {
		return MasterKey{}, err
	}
	if created && s.Created != nil {
		s.Created(mk)
	}
	return mk, nil
}

// EnvSource is a root key given in the key file's format (base64, or 64 hex
// digits) by the environment, e.g. ROTOR_MASTER_KEY. It is never written to
// disk.
type EnvSource struct {
	Name  string // the variable's name, for error messages
	Value string
}

// RootKey implements Source.
func (s EnvSource) RootKey(ctx context.Context) (MasterKey, error) {
	if err := ctx.Err(); err != nil {
		return MasterKey{}, err
	}
	name := s.Name
	if name == "" {
		name = "master key variable"
	}
	if s.Value == "" {
		return MasterKey{}, fmt.Errorf("%s is empty", name)
	}
	mk, err := ParseKey(s.Value)
	if err != nil {
		// ParseKey's errors never quote the value.
		return MasterKey{}, fmt.Errorf("%s: %w", name, err)
	}
	return mk, nil
}

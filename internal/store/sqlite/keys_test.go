package sqlite_test

import (
	"database/sql"
	"maps"
	"path/filepath"
	"testing"

	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

// TestMigrateFromV2 opens a database left by a rotor of schema version 2
// (before master key versions) and checks that it migrates with its data.
func TestMigrateFromV2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rotor.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range sqlite.Migrations[:2] {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO secrets VALUES ('arn:s', 'n', '', '', '[]', '', 1, 1, 0, 0, 0, 0, 0, '', '', 0, 0, '', 0)`,
		`INSERT INTO versions (secret_arn, version_id, created_ms, last_accessed_ms, sealed, key_id, binary) VALUES
			('arn:s', 'v1', 1, 0, x'01', 'mk-old', 0), ('arn:s', 'v2', 2, 0, NULL, '', 0)`,
		`PRAGMA user_version = 2`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := open(t, path)
	defer s.Close()
	var usage map[string]int
	var mks []store.MasterKeyVersion
	err = s.Read(t.Context(), func(tx store.Tx) (err error) {
		if usage, err = tx.KeyUsage(t.Context()); err != nil {
			return err
		}
		mks, err = tx.MasterKeys(t.Context())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"mk-old": 1}; !maps.Equal(usage, want) {
		t.Errorf("KeyUsage after migration = %v, want %v", usage, want)
	}
	if len(mks) != 0 {
		t.Errorf("MasterKeys after migration = %v, want none", mks)
	}
	var version int
	db, err = sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != len(sqlite.Migrations) {
		t.Errorf("user_version = %d, want %d", version, len(sqlite.Migrations))
	}
}

// TestMigrateFromV3 opens a database of schema version 3 (before named keys)
// with a rotated master key and checks that its versions join the default
// family.
func TestMigrateFromV3(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rotor.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range sqlite.Migrations[:3] {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO master_keys VALUES ('mk-root', NULL, 'retired', 0, 5), ('mkv-2-aa', x'01', 'current', 5, 0)`,
		`PRAGMA user_version = 3`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := open(t, path)
	defer s.Close()
	var mks []store.MasterKeyVersion
	var kms []store.KMSKey
	err = s.Read(t.Context(), func(tx store.Tx) (err error) {
		if mks, err = tx.MasterKeys(t.Context()); err != nil {
			return err
		}
		kms, err = tx.KMSKeys(t.Context())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(mks) != 2 || mks[0].Family != "" || mks[1].Family != "" || mks[1].State != store.KeyCurrent {
		t.Errorf("MasterKeys after migration = %+v", mks)
	}
	if len(kms) != 0 {
		t.Errorf("KMSKeys after migration = %+v, want none", kms)
	}
}

package sqlite

import (
	"context"
	"database/sql"

	"github.com/rotor-secrets/rotor/internal/store"
)

// SetBeforeCommit makes every batch run f on the write connection just
// before its COMMIT; an error from f fails the batch as a failed COMMIT
// would. Set it while no Write runs.
func SetBeforeCommit(s *Store, f func(ctx context.Context, c *sql.Conn) error) {
	s.beforeCommit = f
}

// Waiting is how many Writes wait for the write connection.
func Waiting(s *Store) int {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return len(s.waiting)
}

// MaxBatch is how many Writes one transaction holds at most.
const MaxBatch = maxBatch

// ExecWrite runs q on the write connection in a Write of its own: for
// per-connection settings such as PRAGMA max_page_count.
func ExecWrite(ctx context.Context, s *Store, q string) error {
	return s.Write(ctx, func(tx store.Tx) error { return tx.(*txn).c.exec(ctx, q) })
}

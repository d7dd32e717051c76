package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

// passwordHash is the form in which Redis stores a password and takes it in
// ACL SETUSER #…: the lowercase hex SHA-256 of its bytes.
func passwordHash(pw string) string {
	sum := sha256.Sum256([]byte(pw))
	return hex.EncodeToString(sum[:])
}

// aclUser is what rotation needs of ACL GETUSER.
type aclUser struct {
	on, nopass bool
	passwords  []string // hex SHA-256 hashes
}

func (u *aclUser) has(hash string) bool { return slices.Contains(u.passwords, hash) }

// exactly reports whether the user's passwords are hashes, in any order,
// and it is not nopass.
func (u *aclUser) exactly(hashes ...string) bool {
	if u.nopass {
		return false
	}
	want := slices.Compact(slices.Sorted(slices.Values(hashes)))
	have := slices.Compact(slices.Sorted(slices.Values(u.passwords)))
	return slices.Equal(want, have)
}

// readUser reads c's user with ACL GETUSER as master. A user that does not
// exist is KindInvalid; a user that is off is KindAuth, as its logins are.
func (r *Rotator) readUser(ctx context.Context, master *goredis.Client, c rotator.Credentials, sc scrubber) (*aclUser, error) {
	reply, err := master.Do(ctx, "ACL", "GETUSER", c.Username).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, rotator.Errorf(rotator.KindInvalid, nil, "user %q does not exist at %s", c.Username, where(c))
	}
	if err != nil {
		if goredis.HasErrorPrefix(err, "NOPERM") {
			return nil, rotator.Errorf(rotator.KindPermission, sc.cause(err),
				"the master may not run ACL GETUSER at %s: it needs +acl|getuser, +acl|setuser and +acl|save (or +@admin)", where(c))
		}
		return nil, sc.fail(err, "read user %q with ACL GETUSER at %s", c.Username, where(c))
	}
	u, err := parseUser(reply)
	if err != nil {
		return nil, rotator.Errorf(rotator.KindTarget, err, "read user %q with ACL GETUSER at %s", c.Username, where(c))
	}
	if !u.on {
		return nil, rotator.Errorf(rotator.KindAuth, nil, "user %q is off (disabled) at %s: it cannot log in, so it is not rotated", c.Username, where(c))
	}
	return u, nil
}

// parseUser reads an ACL GETUSER reply: a RESP2 array of names and values,
// or a RESP3 map.
func parseUser(reply any) (*aclUser, error) {
	fields := map[string]any{}
	switch v := reply.(type) {
	case []any:
		if len(v)%2 != 0 {
			return nil, errors.New("ACL GETUSER answered an array of odd length")
		}
		for i := 0; i < len(v); i += 2 {
			name, _ := v[i].(string)
			fields[name] = v[i+1]
		}
	case map[any]any:
		for k, x := range v {
			name, _ := k.(string)
			fields[name] = x
		}
	default:
		return nil, fmt.Errorf("ACL GETUSER answered a %T", reply)
	}
	flags, ok1 := stringList(fields["flags"])
	passwords, ok2 := stringList(fields["passwords"])
	if !ok1 || !ok2 {
		return nil, errors.New("ACL GETUSER answered without flags or passwords")
	}
	u := &aclUser{on: slices.Contains(flags, "on"), nopass: slices.Contains(flags, "nopass")}
	for _, p := range passwords {
		u.passwords = append(u.passwords, strings.ToLower(p))
	}
	return u, nil
}

// stringList reads an array of strings; nil and an empty array are empty.
func stringList(v any) ([]string, bool) {
	if v == nil {
		return nil, true
	}
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// setPasswords makes hashes the passwords of c's user, and nothing else: one
// ACL SETUSER, which Redis applies atomically, touching no other rule. as is
// the user that runs it, for messages.
func setPasswords(ctx context.Context, cl *goredis.Client, as string, c rotator.Credentials, sc scrubber, hashes ...string) error {
	rules := []string{"resetpass"}
	for _, h := range hashes {
		rules = append(rules, "#"+h)
	}
	err := cl.ACLSetUser(ctx, c.Username, rules...).Err()
	switch {
	case err == nil:
		return nil
	case goredis.HasErrorPrefix(err, "NOPERM") && as == c.Username:
		return rotator.Errorf(rotator.KindPermission, sc.cause(err),
			"user %q may not run ACL SETUSER at %s, which Redis requires to change a password (and which would let it change any user): "+
				"name an admin secret in the secret's \"masterarn\"", c.Username, where(c))
	case goredis.HasErrorPrefix(err, "NOPERM"):
		return rotator.Errorf(rotator.KindPermission, sc.cause(err),
			"the master %q may not run ACL SETUSER at %s: it needs +acl|getuser, +acl|setuser and +acl|save (or +@admin)", as, where(c))
	}
	return sc.fail(err, "change the passwords of %q at %s", c.Username, where(c))
}

// save runs ACL SAVE as the user as, after a change to c's user (or a step
// that found it done, since a crash may have come between the change and
// the save). See the package comment.
func (r *Rotator) save(ctx context.Context, cl *goredis.Client, as string, c rotator.Credentials, sc scrubber) error {
	if r.opts.SkipACLSave {
		return nil
	}
	err := cl.Do(ctx, "ACL", "SAVE").Err()
	switch {
	case err == nil:
		return nil
	case isNoACLFile(err):
		r.log.WarnContext(ctx, "redis acl change not saved: the server has no acl file, so a restart reverts it",
			"server", where(c), "user", c.Username)
		return nil
	case goredis.HasErrorPrefix(err, "NOPERM"):
		return rotator.Errorf(rotator.KindPermission, sc.cause(err),
			"user %q changed the passwords of %q at %s but may not run ACL SAVE, so a restart of the server would revert them: "+
				"grant it +acl|save, or set SkipACLSave if something else writes the ACL file", as, c.Username, where(c))
	}
	return sc.fail(err, "save the ACL file (ACL SAVE) at %s after changing the passwords of %q", where(c), c.Username)
}

// isNoACLFile reports ACL SAVE's answer on a server without an ACL file
// ("ERR This Redis instance is not configured to use an ACL file. …").
func isNoACLFile(err error) bool {
	var reply goredis.Error
	return errors.As(err, &reply) && strings.Contains(reply.Error(), "not configured to use an ACL file")
}

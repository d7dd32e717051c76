package redis

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

// reply is an error reply as go-redis returns it.
type reply string

func (r reply) Error() string { return string(r) }
func (reply) RedisError()     {}

func TestPasswordHash(t *testing.T) {
	// echo -n 'p1' | sha256sum, as Redis stores it.
	if got, want := passwordHash("p1"), "f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a"; got != want {
		t.Errorf("passwordHash(p1) = %s, want %s", got, want)
	}
}

func TestScrubber(t *testing.T) {
	sc := newScrubber("pw", "pw-longer", "")
	sc = sc.add("other secret")
	msg := "ERR Error in ACL SETUSER modifier '#" + passwordHash("pw-longer") + "': pw-longer, pw, other secret, " + passwordHash("pw")
	got := sc.clean(msg)
	for _, s := range []string{"pw", "other secret", passwordHash("pw"), passwordHash("pw-longer")} {
		if strings.Contains(got, s) {
			t.Errorf("clean left %q in %q", s, got)
		}
	}
	err := sc.fail(fmt.Errorf("failed to authenticate: %w", reply("WRONGPASS pw-longer")), "log in as %q", "pw")
	var re *rotator.Error
	if !errors.As(err, &re) || re.Kind != rotator.KindAuth {
		t.Fatalf("fail = %#v, want KindAuth", err)
	}
	var se *ServerError
	if !errors.As(err, &se) || strings.Contains(err.Error(), "pw") {
		t.Errorf("fail = %v (cause %T), want a scrubbed *ServerError", err, re.Err)
	}
}

func TestKindOfReply(t *testing.T) {
	for msg, want := range map[string]rotator.Kind{
		"WRONGPASS invalid username-password pair or user is disabled.":        rotator.KindAuth,
		"NOAUTH Authentication required.":                                      rotator.KindAuth,
		"NOPERM this user has no permissions to run the 'acl|setuser' command": rotator.KindPermission,
		"LOADING Redis is loading the dataset in memory":                       rotator.KindUnreachable,
		"BUSY Redis is busy running a script.":                                 rotator.KindUnreachable,
		"ERR max number of clients reached":                                    rotator.KindUnreachable,
		"ERR unknown command 'ACL', with args beginning with: 'GETUSER' ":      rotator.KindInvalid,
		"ERR unknown subcommand 'GETUSER'. Try ACL HELP.":                      rotator.KindInvalid,
		"ERR Error in ACL SETUSER modifier 'x': Syntax error":                  rotator.KindTarget,
	} {
		if got := kindOfReply(msg); got != want {
			t.Errorf("kindOfReply(%q) = %v, want %v", msg, got, want)
		}
	}
}

func TestParseUser(t *testing.T) {
	h1, h2 := passwordHash("a"), passwordHash("b")
	resp2 := []any{"flags", []any{"on", "allchannels"}, "passwords", []any{h1, strings.ToUpper(h2)},
		"commands", "+@all", "keys", "~*", "channels", "&*", "selectors", []any{}}
	u, err := parseUser(resp2)
	if err != nil {
		t.Fatal(err)
	}
	if !u.on || u.nopass || !u.has(h1) || !u.has(h2) || !u.exactly(h2, h1) || u.exactly(h1) {
		t.Errorf("RESP2 user = %+v", u)
	}
	resp3 := map[any]any{"flags": []any{"off", "nopass"}, "passwords": []any{}, "keys": "~*"}
	if u, err = parseUser(resp3); err != nil || u.on || !u.nopass || len(u.passwords) != 0 || u.exactly() {
		t.Errorf("RESP3 user = %+v, %v", u, err)
	}
	for _, bad := range []any{"x", []any{"flags"}, []any{"flags", "on", "passwords", []any{}}, map[any]any{"flags": []any{"on"}, "passwords": []any{1}}} {
		if _, err := parseUser(bad); err == nil {
			t.Errorf("parseUser(%#v) succeeded", bad)
		}
	}
}

func TestSSLMode(t *testing.T) {
	for mode, want := range map[string]string{
		"": "disable", "disable": "disable", "DISABLED": "disable", "require": "require", "Required": "require",
		"verify-ca": "verify-ca", "verify_ca": "verify-ca", "verify-full": "verify-full", "verify_identity": "verify-full",
	} {
		if got, err := sslMode(mode, "disable"); err != nil || got != want {
			t.Errorf("sslMode(%q) = %q, %v; want %q", mode, got, err, want)
		}
	}
	for _, mode := range []string{"prefer", "preferred", "allow", "tls", "true"} {
		if _, err := sslMode(mode, "disable"); rotator.KindOf(err) != rotator.KindInvalid {
			t.Errorf("sslMode(%q) = %v, want KindInvalid", mode, err)
		}
	}
	if _, err := sslMode("prefer", "disable"); !strings.Contains(err.Error(), "no negotiation") {
		t.Errorf("prefer: %v, want an explanation", err)
	}
}

func TestIsNoACLFile(t *testing.T) {
	redisMsg := reply("ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.")
	// valkey-io/valkey src/acl.c, aclCommand.
	valkeyMsg := reply("ERR This instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a configuration file set) in order to store users in the configuration.")
	if !isNoACLFile(redisMsg) || !isNoACLFile(fmt.Errorf("wrapped: %w", valkeyMsg)) {
		t.Error("the answer of a server without an ACL file is not recognised")
	}
	if isNoACLFile(reply("ERR There was an error trying to save the ACLs. Please check the server logs for more information")) ||
		isNoACLFile(errors.New("not configured to use an ACL file")) {
		t.Error("another error is taken for a server without an ACL file")
	}
}

// The client options must keep go-redis from sending commands a restricted
// user may not run, and from retrying.
func TestClientOptions(t *testing.T) {
	r := New(Options{})
	cl, err := r.client(rotator.Credentials{Host: "::1", Port: 7000, Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	o := cl.Options()
	if o.Addr != "[::1]:7000" || o.ClientName != "" || !o.DisableIdentity || o.MaxRetries > 0 || o.DialerRetries != 1 ||
		o.PoolSize != 1 || o.Protocol != 2 || !o.ContextTimeoutEnabled || o.MaintNotificationsConfig.Mode != maintnotifications.ModeDisabled {
		t.Errorf("options: addr %s, client name %q, identity off %v, retries %d, dial retries %d, pool %d, protocol %d, context timeouts %v, maint %v",
			o.Addr, o.ClientName, o.DisableIdentity, o.MaxRetries, o.DialerRetries, o.PoolSize, o.Protocol, o.ContextTimeoutEnabled, o.MaintNotificationsConfig.Mode)
	}
	if _, err := r.client(rotator.Credentials{Host: "h", Username: "u", Password: "p", SSLMode: "prefer"}); rotator.KindOf(err) != rotator.KindInvalid {
		t.Errorf("client with sslmode prefer: %v", err)
	}
}

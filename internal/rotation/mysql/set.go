package mysql

import (
	"context"
	"strings"

	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

// setSingle changes the user's password; see the package comment.
func (r *Rotator) setSingle(ctx context.Context, req rotator.SetRequest, sc *scrubber) error {
	pending := req.Pending
	var prev *rotator.Credentials
	if p := req.Previous; p != nil && p.Username == pending.Username && p.Addr() == pending.Addr() && p.Password != req.Current.Password {
		prev = p
	}
	if m := req.Master; m != nil && validate(*m, "master credentials") == nil && sameServer(*m, pending) == nil {
		if done, err := r.setSingleAsMaster(ctx, req, prev, sc); done || err != nil {
			return err
		}
	}
	// Current first: on a first attempt it is the password that works.
	// Pending works after a crash that followed the change; Previous when
	// Current was never the user's.
	var refused error
	for i, c := range []*rotator.Credentials{&req.Current, &pending, prev} {
		if c == nil {
			continue
		}
		if i == 1 {
			switch err := r.login(ctx, pending); {
			case err == nil:
				return nil // a repeated step: already done
			case isAuthFailure(err):
				continue
			default:
				return sc.wrap(err, "log in as %q to %s", pending.Username, pending.Addr())
			}
		}
		s, err := r.open(ctx, *c, false)
		switch {
		case err == nil:
			err = r.changeOwnPassword(ctx, s, pending, c.Password, sc)
			s.close()
			r.forget(pending)
			if err == nil || rotator.KindOf(err) != rotator.KindPermission || req.Master == nil {
				return err
			}
			// The user may not change its own password, but it has just
			// proved that the secret knows it: Master may do it instead.
			r.log.DebugContext(ctx, "user may not change its own password; using master", "user", pending.Username)
		case isExpired(err):
			// The server checked the password before it reported the
			// expiry, so the secret knows it.
			if req.Master == nil {
				return rotator.Errorf(rotator.KindAuth, nil, "the password of %q has expired; set a new one by hand, or name a master in the secret so that rotation can", pending.Username)
			}
			r.log.DebugContext(ctx, "password expired; using master", "user", pending.Username)
		case isAuthFailure(err):
			refused = err
			continue
		default:
			return sc.wrap(err, "log in as %q to %s", c.Username, c.Addr())
		}
		return r.setByMaster(ctx, req, sc)
	}
	// Master is not used here: it would let anyone who can write the
	// secret take over the user without knowing its password.
	return sc.wrap(refused, "neither the current nor the previous password of %q logs in to %s", pending.Username, pending.Addr())
}

// setSingleAsMaster is single-user Set without logging in as the user: the
// (pooled) master proves one of the user's passwords against the stored
// hashes of every host entry and sets the pending one. done is false, with
// no error, when no password is proven that way — the master cannot log
// in or read mysql.user, a hash cannot be checked here
// (caching_sha2_password, sha256_password), or no password is that of
// every host entry — and Set then logs in as the user.
func (r *Rotator) setSingleAsMaster(ctx context.Context, req rotator.SetRequest, prev *rotator.Credentials, sc *scrubber) (done bool, err error) {
	pending := req.Pending
	mc, err := r.master(ctx, *req.Master)
	if err != nil {
		// Master is optional here: the user may change its own password.
		return false, nil
	}
	healthy := true
	defer func() { mc.Release(healthy) }()
	s := mc.C
	all, err := accounts(ctx, s, pending.Username)
	if err != nil {
		healthy = false
		return false, nil
	}
	accts := all[pending.Username]
	if len(accts) == 0 {
		return false, nil
	}
	for i, c := range []*rotator.Credentials{&req.Current, &pending, prev} {
		if c == nil {
			continue
		}
		if match, _ := matchesAll(accts, c.Password); !match {
			continue
		}
		if i == 1 {
			return true, nil // a repeated step: already done
		}
		for _, a := range accts {
			if err := s.srv.checkPlugin(a.plugin, accountName(pending.Username, a.host)); err != nil {
				healthy = false
				return false, err
			}
		}
		defer r.forget(pending)
		for _, a := range accts {
			if err := r.setAccountPassword(ctx, s, pending.Username, a, pending.Password, sc); err != nil {
				healthy = false
				return false, err
			}
		}
		return true, nil
	}
	return false, nil
}

// matchesAll reports whether pw is the password of every host entry in
// accts, and whether their plugins let that be checked here.
func matchesAll(accts []account, pw string) (match, checkable bool) {
	match = true
	for _, a := range accts {
		m, ok := matchesAuthString(a.plugin, a.authString, pw)
		if !ok {
			return false, false
		}
		match = match && m
	}
	return match, true
}

// changeOwnPassword gives the session's own account the pending password;
// old is the password it logged in with.
func (r *Rotator) changeOwnPassword(ctx context.Context, s *session, pending rotator.Credentials, old string, sc *scrubber) error {
	plugin := ""
	if s.srv.mariadb {
		var err error
		if plugin, err = ownPlugin(ctx, s); err != nil {
			return sc.wrap(err, "read the authentication plugin of %q", pending.Username)
		}
		if err := s.srv.checkPlugin(plugin, quoteIdent(pending.Username)); err != nil {
			return err
		}
	}
	err := r.execPassword(ctx, s, func(allowHash bool) string {
		return s.srv.setOwnPassword(plugin, pending.Password, old, allowHash)
	})
	if err != nil {
		return sc.wrap(err, "change the password of %q", pending.Username)
	}
	r.log.DebugContext(ctx, "changed own password", "user", pending.Username, "server", s.srv.String())
	return nil
}

// setByMaster gives every host entry of the pending user the pending
// password, as the master.
func (r *Rotator) setByMaster(ctx context.Context, req rotator.SetRequest, sc *scrubber) (err error) {
	pending, master := req.Pending, *req.Master
	if err := validate(master, "master credentials"); err != nil {
		return err
	}
	if err := sameServer(master, pending); err != nil {
		return err
	}
	mc, err := r.master(ctx, master)
	if err != nil {
		return sc.wrap(err, "log in as master user %q to %s", master.Username, master.Addr())
	}
	defer func() { mc.Release(err == nil) }()
	s := mc.C
	all, err := accounts(ctx, s, pending.Username)
	if err != nil {
		return sc.wrap(err, "look up user %q in mysql.user", pending.Username)
	}
	accts := all[pending.Username]
	if len(accts) == 0 {
		return rotator.Errorf(rotator.KindAuth, nil, "user %q does not exist on %s", pending.Username, pending.Addr())
	}
	for _, a := range accts {
		name := accountName(pending.Username, a.host)
		if err := s.srv.checkPlugin(a.plugin, name); err != nil {
			return err
		}
	}
	defer r.forget(pending)
	for _, a := range accts {
		if err := r.setAccountPassword(ctx, s, pending.Username, a, pending.Password, sc); err != nil {
			return err
		}
	}
	return nil
}

// setAccountPassword gives user@a.host the password pw with a's plugin.
func (r *Rotator) setAccountPassword(ctx context.Context, s *session, user string, a account, pw string, sc *scrubber) error {
	name := accountName(user, a.host)
	err := r.execPassword(ctx, s, func(allowHash bool) string {
		return "ALTER USER " + name + " " + s.srv.identified(a.plugin, pw, allowHash)
	})
	if err != nil {
		return sc.wrap(err, "set the password of %s", name)
	}
	r.log.DebugContext(ctx, "set password", "account", name, "plugin", a.plugin, "server", s.srv.String())
	return nil
}

// execPassword runs the statement build returns, which carries a password
// or its hash: the hash where the server takes one. The statement never
// reaches an error or a log.
func (r *Rotator) execPassword(ctx context.Context, s *session, build func(allowHash bool) string) error {
	allow, err := s.hashAllowed(ctx)
	if err != nil {
		return err
	}
	if !allow {
		r.log.WarnContext(ctx, "the server refuses password hashes (strict_password_validation with a password-validation plugin); sending the password in clear text, which the server may log",
			"server", s.srv.String())
	}
	_, err = s.conn.ExecContext(ctx, build(allow))
	return err
}

// setAlternating prepares the alternate user; see the package comment.
func (r *Rotator) setAlternating(ctx context.Context, req rotator.SetRequest, sc *scrubber) (err error) {
	pending, current, master := req.Pending, req.Current, *req.Master
	if alt, err := rotator.AlternateUser(current.Username, MaxUserLen); err != nil {
		return err
	} else if pending.Username != alt {
		return rotator.Errorf(rotator.KindInvalid, nil, "the pending user %q is not the alternate of the current user %q (want %q)", pending.Username, current.Username, alt)
	}
	if err := sameServer(master, current); err != nil {
		return err
	}
	mc, err := r.master(ctx, master)
	if err != nil {
		return sc.wrap(err, "log in as master user %q to %s", master.Username, master.Addr())
	}
	defer func() { mc.Release(err == nil) }()
	s := mc.C
	srv := s.srv
	alt, err := rotator.AlternateUser(current.Username, srv.maxUserLen())
	if err != nil {
		return err
	}
	if pending.Username != alt {
		return rotator.Errorf(rotator.KindInvalid, nil, "the pending user %q is not the alternate of the current user %q (want %q)", pending.Username, current.Username, alt)
	}
	if pending.Username == master.Username {
		return rotator.Errorf(rotator.KindInvalid, nil, "the pending user %q is the master user", pending.Username)
	}

	// The pair is NAME and NAME_clone. NAME is the source of truth: the
	// clone mirrors its hosts, options and privileges, whichever of the two
	// is current. Only when NAME does not exist (a secret that started with
	// a user named like a clone) is the current user the source.
	base, clone := current.Username, pending.Username
	if pending.Username+rotator.CloneSuffix == current.Username {
		base, clone = pending.Username, current.Username
	}
	all, err := accounts(ctx, s, current.Username, pending.Username)
	if err != nil {
		return sc.wrap(err, "look up users %q and %q in mysql.user", current.Username, pending.Username)
	}
	curAccts, pendAccts := all[current.Username], all[pending.Username]
	if len(curAccts) == 0 {
		return rotator.Errorf(rotator.KindAuth, nil, "the current user %q does not exist on %s", current.Username, current.Addr())
	}
	if err := r.proveCurrent(ctx, curAccts, current, sc); err != nil {
		return err
	}
	src, from, dst, to := curAccts, current.Username, pendAccts, pending.Username
	if base == pending.Username && len(pendAccts) > 0 {
		src, from, dst, to = pendAccts, base, curAccts, clone
	}
	var stale []string
	for _, d := range dst {
		if _, ok := findHost(src, d.host); !ok {
			stale = append(stale, accountName(to, d.host))
		}
	}
	if len(stale) > 0 {
		return rotator.Errorf(rotator.KindTarget, nil, "%s exist(s) but %q has no account at the same host, so the two users would differ; drop them (DROP USER) or create %q there",
			strings.Join(stale, ", "), from, from)
	}
	for _, a := range src {
		if err := srv.checkPlugin(a.plugin, accountName(from, a.host)); err != nil {
			return err
		}
	}

	// A host entry created for the current user (NAME gained a host while
	// the clone is in use) gets the current password, so clients there can
	// log in; one created for the pending user gets an unknown password
	// until the last step.
	newPassword := randomPassword()
	if to == current.Username {
		newPassword = current.Password
	}
	for _, a := range src {
		if err := r.syncAccount(ctx, s, from, to, a, dst, newPassword, sc); err != nil {
			return err
		}
	}
	// Last, so that a pending password that logs in means all of the above
	// is done; not again when a repeated step finds it set, so that a
	// password history policy does not refuse the repeat.
	if done, err := r.pendingSet(ctx, src, pendAccts, pending); err != nil {
		return sc.wrap(err, "log in as %q to %s", pending.Username, pending.Addr())
	} else if done {
		return nil
	}
	defer r.forget(pending)
	for _, a := range src {
		if err := r.setAccountPassword(ctx, s, pending.Username, a, pending.Password, sc); err != nil {
			return err
		}
	}
	return nil
}

// pendingSet reports whether every host entry of the pending user (one per
// entry of src) already has the pending password: by its stored hash, or
// by logging in where the plugin's hash cannot be checked here.
func (r *Rotator) pendingSet(ctx context.Context, src, pendAccts []account, pending rotator.Credentials) (bool, error) {
	have := make([]account, 0, len(src))
	for _, a := range src {
		p, ok := findHost(pendAccts, a.host)
		if !ok {
			return false, nil
		}
		have = append(have, p)
	}
	match, checkable := matchesAll(have, pending.Password)
	if checkable {
		return match, nil
	}
	switch err := r.login(ctx, pending); {
	case err == nil:
		return true, nil
	case isAuthFailure(err):
		return false, nil
	default:
		return false, err
	}
}

// sameServer refuses a master at another address than the user's: the
// users would be changed on a server other than the one the secret names.
func sameServer(master, user rotator.Credentials) error {
	if !strings.EqualFold(master.Host, user.Host) || master.Port != user.Port {
		return rotator.Errorf(rotator.KindInvalid, nil, "the master credentials point at %s, the user's at %s; they must name the same server", master.Addr(), user.Addr())
	}
	return nil
}

// proveCurrent checks that the secret knows the current user's password:
// against the stored hash of every host entry where the plugin allows it,
// else by logging in.
func (r *Rotator) proveCurrent(ctx context.Context, src []account, current rotator.Credentials, sc *scrubber) error {
	needLogin := false
	for _, a := range src {
		match, checkable := matchesAuthString(a.plugin, a.authString, current.Password)
		switch {
		case !checkable:
			needLogin = true
		case !match:
			return rotator.Errorf(rotator.KindAuth, nil, "the current password is not the password of %s", accountName(current.Username, a.host))
		}
	}
	if needLogin {
		if err := r.login(ctx, current); err != nil {
			return sc.wrap(err, "log in as current user %q to %s", current.Username, current.Addr())
		}
	}
	return nil
}

// syncAccount makes to@a.host mirror from@a.host: it exists (created with
// newPassword if not), has the same TLS requirement, resource limits and
// privileges. dst are to's existing host entries.
func (r *Rotator) syncAccount(ctx context.Context, s *session, from, to string, a account, dst []account, newPassword string, sc *scrubber) error {
	srv := s.srv
	name := accountName(to, a.host)
	d, exists := findHost(dst, a.host)
	if !exists {
		err := r.execPassword(ctx, s, func(allowHash bool) string {
			return "CREATE USER IF NOT EXISTS " + name + " " + srv.identified(a.plugin, newPassword, allowHash)
		})
		if err != nil {
			return sc.wrap(err, "create user %s", name)
		}
		r.log.DebugContext(ctx, "created alternate user", "account", name, "server", srv.String())
		d = account{host: a.host, plugin: a.plugin, maxStatementTime: "0"}
	}
	if !a.sameOptions(d) {
		stmt := "ALTER USER " + name + " " + a.requireClause(srv.noBackslashEscapes) + " " + a.limitsClause(srv.mariadb)
		if _, err := s.conn.ExecContext(ctx, stmt); err != nil {
			return sc.wrap(err, "copy the TLS requirement and limits of %s to %s", accountName(from, a.host), name)
		}
		r.log.DebugContext(ctx, "copied account options", "statement", stmt)
	}
	want, err := showGrants(ctx, s, from, a.host)
	if err != nil {
		return sc.wrap(err, "read the privileges of %s", accountName(from, a.host))
	}
	have, err := showGrants(ctx, s, to, a.host)
	if err != nil {
		return sc.wrap(err, "read the privileges of %s", name)
	}
	for _, stmt := range planSync(want, have, name, srv.mariadb) {
		if _, err := s.conn.ExecContext(ctx, stmt); err != nil {
			return sc.wrap(err, "copy the privileges of %s to %s: %s", accountName(from, a.host), name, stmt)
		}
		r.log.DebugContext(ctx, "synced privileges", "statement", stmt)
	}
	return nil
}

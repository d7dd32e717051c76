package iam

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/auth/policy"
	"github.com/rotor-secrets/rotor/internal/store"
)

// User is a user as the operations return it.
type User struct {
	UserName   string
	UserID     string
	ARN        string
	CreateDate time.Time
}

// AccessKey is an access key as the operations return it; Secret is set
// only by CreateAccessKey.
type AccessKey struct {
	UserName    string
	AccessKeyID string
	Secret      string
	Status      string // "Active" or "Inactive"
	CreateDate  time.Time
}

// Key statuses, as IAM names them.
const (
	StatusActive   = "Active"
	StatusInactive = "Inactive"
)

// Policy is a managed policy as the operations return it.
type Policy struct {
	PolicyName      string
	PolicyID        string
	ARN             string
	Description     string
	Document        string
	CreateDate      time.Time
	UpdateDate      time.Time
	AttachmentCount int
}

func (s *Service) userARN(name string) string {
	return "arn:aws:iam::" + s.cfg.AccountID + ":user/" + name
}

func (s *Service) policyARN(name string) string {
	return "arn:aws:iam::" + s.cfg.AccountID + ":policy/" + name
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// validName checks an IAM user or policy name: [\w+=,.@-]{1,max}.
func validName(field, name string, max int) *Error {
	if name == "" || len(name) > max {
		return errorf(KindInvalidInput, "%s must be 1 to %d characters long.", field, max)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_+=,.@-", c) >= 0) {
			return errorf(KindInvalidInput, "%s may contain only letters, digits and _+=,.@-.", field)
		}
	}
	return nil
}

// policyName accepts a policy's name or its ARN.
func (s *Service) policyName(nameOrARN string) (string, *Error) {
	name := nameOrARN
	if strings.HasPrefix(nameOrARN, "arn:") {
		prefix := s.policyARN("")
		if !strings.HasPrefix(nameOrARN, prefix) {
			return "", errorf(KindInvalidInput, "PolicyArn must be an ARN of the form %sNAME.", prefix)
		}
		name = strings.TrimPrefix(nameOrARN, prefix)
	}
	if err := validName("PolicyName", name, maxPolicyNameLen); err != nil {
		return "", err
	}
	return name, nil
}

func notFoundUser(name string) *Error {
	return errorf(KindNoSuchEntity, "The user with name %s cannot be found.", name)
}

func notFoundPolicy(name string) *Error {
	return errorf(KindNoSuchEntity, "Policy %s does not exist or is not attachable.", name)
}

// write runs fn in a write transaction and maps store errors it returns
// unchanged to internal errors.
func (s *Service) write(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.wrap("write", s.cfg.Store.Write(ctx, fn))
}

func (s *Service) read(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.wrap("read", s.cfg.Store.Read(ctx, fn))
}

func (s *Service) wrap(op string, err error) error {
	var e *Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	return internal(op, err)
}

// CreateUser creates a user with no keys and no policies.
func (s *Service) CreateUser(ctx context.Context, name string) (User, error) {
	if err := validName("UserName", name, maxUserNameLen); err != nil {
		return User{}, err
	}
	if err := s.Check(ctx, s.userARN(name)); err != nil {
		return User{}, err
	}
	id, err := newID("AIDA")
	if err != nil {
		return User{}, internal("generate user id", err)
	}
	u := store.User{Name: name, ARN: s.userARN(name), ID: id, CreatedAt: s.now()}
	err = s.write(ctx, func(tx store.Tx) error {
		err := tx.CreateUser(ctx, u)
		if errors.Is(err, store.ErrConflict) {
			return errorf(KindEntityExists, "User with name %s already exists.", name)
		}
		return err
	})
	if err != nil {
		return User{}, err
	}
	return userOf(u), nil
}

func userOf(u store.User) User {
	return User{UserName: u.Name, UserID: u.ID, ARN: u.ARN, CreateDate: u.CreatedAt}
}

// GetUser returns one user.
func (s *Service) GetUser(ctx context.Context, name string) (User, error) {
	if err := validName("UserName", name, maxUserNameLen); err != nil {
		return User{}, err
	}
	if err := s.Check(ctx, s.userARN(name)); err != nil {
		return User{}, err
	}
	var u store.User
	err := s.read(ctx, func(tx store.Tx) (err error) {
		u, err = tx.User(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return notFoundUser(name)
		}
		return err
	})
	return userOf(u), err
}

// DeleteUser deletes a user together with its access keys and policy
// attachments (IAM refuses until they are gone; Rotor removes them, and
// the user's keys stop working at once).
func (s *Service) DeleteUser(ctx context.Context, name string) error {
	if err := validName("UserName", name, maxUserNameLen); err != nil {
		return err
	}
	if err := s.Check(ctx, s.userARN(name)); err != nil {
		return err
	}
	var keys []store.AccessKey
	err := s.read(ctx, func(tx store.Tx) error {
		if _, err := tx.User(ctx, name); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return notFoundUser(name)
			}
			return err
		}
		var err error
		keys, err = tx.AccessKeysOf(ctx, s.userARN(name))
		return err
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.cfg.Keys.Delete(ctx, k.ID); err != nil && !errors.Is(err, auth.ErrUnknownKey) {
			return internal("delete access key", err)
		}
	}
	err = s.write(ctx, func(tx store.Tx) error {
		err := tx.DeleteUser(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return notFoundUser(name)
		}
		return err
	})
	s.invalidate()
	return err
}

// ListUsers returns up to max users by name after marker, and the marker
// of the next page ("" when this is the last).
func (s *Service) ListUsers(ctx context.Context, marker string, max int) ([]User, string, error) {
	if err := s.Check(ctx, "*"); err != nil {
		return nil, "", err
	}
	max = pageSize(max)
	var rows []store.User
	err := s.read(ctx, func(tx store.Tx) (err error) {
		rows, err = tx.ListUsers(ctx, marker, max+1)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	rows, next := page(rows, max, func(u store.User) string { return u.Name })
	out := make([]User, len(rows))
	for i, u := range rows {
		out[i] = userOf(u)
	}
	return out, next, nil
}

func pageSize(max int) int {
	if max <= 0 || max > 1000 {
		return 100
	}
	return max
}

// page cuts rows, read with a limit of max+1, to max and returns the marker
// of the next page: the key of the last row kept, "" when none follows.
func page[T any](rows []T, max int, key func(T) string) ([]T, string) {
	if len(rows) <= max {
		return rows, ""
	}
	rows = rows[:max]
	return rows, key(rows[max-1])
}

// CreateAccessKey creates an active access key for a user and returns it
// with its secret, which is never shown again.
func (s *Service) CreateAccessKey(ctx context.Context, user string) (AccessKey, error) {
	if err := validName("UserName", user, maxUserNameLen); err != nil {
		return AccessKey{}, err
	}
	if err := s.Check(ctx, s.userARN(user)); err != nil {
		return AccessKey{}, err
	}
	err := s.read(ctx, func(tx store.Tx) error {
		if _, err := tx.User(ctx, user); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return notFoundUser(user)
			}
			return err
		}
		keys, err := tx.AccessKeysOf(ctx, s.userARN(user))
		if err != nil {
			return err
		}
		if len(keys) >= MaxKeysPerUser {
			return errorf(KindLimitExceeded, "Cannot exceed quota for AccessKeysPerUser: %d", MaxKeysPerUser)
		}
		return nil
	})
	if err != nil {
		return AccessKey{}, err
	}
	id, secret, err := auth.GenerateKeyPair()
	if err != nil {
		return AccessKey{}, internal("generate access key", err)
	}
	if err := s.cfg.Keys.Put(ctx, id, secret, s.userARN(user), true); err != nil {
		return AccessKey{}, internal("store access key", err)
	}
	return AccessKey{UserName: user, AccessKeyID: id, Secret: secret, Status: StatusActive, CreateDate: s.now()}, nil
}

// ListAccessKeys returns a user's access keys, without secrets.
func (s *Service) ListAccessKeys(ctx context.Context, user string) ([]AccessKey, error) {
	if err := validName("UserName", user, maxUserNameLen); err != nil {
		return nil, err
	}
	if err := s.Check(ctx, s.userARN(user)); err != nil {
		return nil, err
	}
	var keys []store.AccessKey
	err := s.read(ctx, func(tx store.Tx) error {
		if _, err := tx.User(ctx, user); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return notFoundUser(user)
			}
			return err
		}
		var err error
		keys, err = tx.AccessKeysOf(ctx, s.userARN(user))
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]AccessKey, len(keys))
	for i, k := range keys {
		st := StatusInactive
		if k.Active {
			st = StatusActive
		}
		out[i] = AccessKey{UserName: user, AccessKeyID: k.ID, Status: st, CreateDate: k.CreatedAt}
	}
	return out, nil
}

// userKey checks that access key id belongs to user.
func (s *Service) userKey(ctx context.Context, user, id string) error {
	if err := validName("UserName", user, maxUserNameLen); err != nil {
		return err
	}
	if id == "" || len(id) > 128 {
		return errorf(KindInvalidInput, "AccessKeyId must be 1 to 128 characters long.")
	}
	if err := s.Check(ctx, s.userARN(user)); err != nil {
		return err
	}
	return s.read(ctx, func(tx store.Tx) error {
		k, err := tx.AccessKey(ctx, id)
		if errors.Is(err, store.ErrNotFound) || err == nil && k.PrincipalARN != s.userARN(user) {
			return errorf(KindNoSuchEntity, "The Access Key with id %s cannot be found.", id)
		}
		return err
	})
}

// UpdateAccessKey activates or deactivates a user's access key; the change
// applies to the next request.
func (s *Service) UpdateAccessKey(ctx context.Context, user, id, status string) error {
	if status != StatusActive && status != StatusInactive {
		return errorf(KindInvalidInput, "Status must be Active or Inactive.")
	}
	if err := s.userKey(ctx, user, id); err != nil {
		return err
	}
	if err := s.cfg.Keys.SetActive(ctx, id, status == StatusActive); err != nil {
		if errors.Is(err, auth.ErrUnknownKey) {
			return errorf(KindNoSuchEntity, "The Access Key with id %s cannot be found.", id)
		}
		return internal("update access key", err)
	}
	return nil
}

// DeleteAccessKey deletes a user's access key; the change applies to the
// next request.
func (s *Service) DeleteAccessKey(ctx context.Context, user, id string) error {
	if err := s.userKey(ctx, user, id); err != nil {
		return err
	}
	if err := s.cfg.Keys.Delete(ctx, id); err != nil {
		if errors.Is(err, auth.ErrUnknownKey) {
			return errorf(KindNoSuchEntity, "The Access Key with id %s cannot be found.", id)
		}
		return internal("delete access key", err)
	}
	return nil
}

// checkDocument parses an identity policy document.
func checkDocument(doc string) *Error {
	if doc == "" {
		return errorf(KindMalformedPolicy, "The policy document is empty.")
	}
	if _, err := policy.ParseIdentityPolicy(doc); err != nil {
		return errorf(KindMalformedPolicy, "%s", err.Error())
	}
	return nil
}

// CreatePolicy creates a managed identity policy.
func (s *Service) CreatePolicy(ctx context.Context, name, description, doc string) (Policy, error) {
	if err := validName("PolicyName", name, maxPolicyNameLen); err != nil {
		return Policy{}, err
	}
	if len(description) > maxDescriptionLen {
		return Policy{}, errorf(KindInvalidInput, "Description must be at most %d characters long.", maxDescriptionLen)
	}
	if err := s.Check(ctx, s.policyARN(name)); err != nil {
		return Policy{}, err
	}
	if err := checkDocument(doc); err != nil {
		return Policy{}, err
	}
	id, err := newID("ANPA")
	if err != nil {
		return Policy{}, internal("generate policy id", err)
	}
	now := s.now()
	p := store.Policy{Name: name, ARN: s.policyARN(name), ID: id, Description: description, Document: doc,
		CreatedAt: now, UpdatedAt: now}
	err = s.write(ctx, func(tx store.Tx) error {
		err := tx.CreatePolicy(ctx, p)
		if errors.Is(err, store.ErrConflict) {
			return errorf(KindEntityExists, "A policy called %s already exists.", name)
		}
		return err
	})
	if err != nil {
		return Policy{}, err
	}
	return policyOf(p, 0), nil
}

func policyOf(p store.Policy, attachments int) Policy {
	return Policy{PolicyName: p.Name, PolicyID: p.ID, ARN: p.ARN, Description: p.Description, Document: p.Document,
		CreateDate: p.CreatedAt, UpdateDate: p.UpdatedAt, AttachmentCount: attachments}
}

// GetPolicy returns a policy with its document and attachment count.
func (s *Service) GetPolicy(ctx context.Context, nameOrARN string) (Policy, error) {
	name, perr := s.policyName(nameOrARN)
	if perr != nil {
		return Policy{}, perr
	}
	if err := s.Check(ctx, s.policyARN(name)); err != nil {
		return Policy{}, err
	}
	var out Policy
	err := s.read(ctx, func(tx store.Tx) error {
		p, err := tx.Policy(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return notFoundPolicy(name)
		}
		if err != nil {
			return err
		}
		users, err := tx.PolicyUsers(ctx, name)
		out = policyOf(p, len(users))
		return err
	})
	return out, err
}

// UpdatePolicy replaces a policy's document (IAM's CreatePolicyVersion
// with SetAsDefault); it applies to the next request of every user the
// policy is attached to.
func (s *Service) UpdatePolicy(ctx context.Context, nameOrARN, doc string) (Policy, error) {
	name, perr := s.policyName(nameOrARN)
	if perr != nil {
		return Policy{}, perr
	}
	if err := s.Check(ctx, s.policyARN(name)); err != nil {
		return Policy{}, err
	}
	if err := checkDocument(doc); err != nil {
		return Policy{}, err
	}
	var out Policy
	err := s.write(ctx, func(tx store.Tx) error {
		p, err := tx.Policy(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return notFoundPolicy(name)
		}
		if err != nil {
			return err
		}
		p.Document, p.UpdatedAt = doc, s.now()
		if err := tx.UpdatePolicy(ctx, p); err != nil {
			return err
		}
		users, err := tx.PolicyUsers(ctx, name)
		out = policyOf(p, len(users))
		return err
	})
	s.invalidate()
	return out, err
}

// DeletePolicy deletes a policy; IAM refuses while it is attached.
func (s *Service) DeletePolicy(ctx context.Context, nameOrARN string) error {
	name, perr := s.policyName(nameOrARN)
	if perr != nil {
		return perr
	}
	if err := s.Check(ctx, s.policyARN(name)); err != nil {
		return err
	}
	err := s.write(ctx, func(tx store.Tx) error {
		users, err := tx.PolicyUsers(ctx, name)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return errorf(KindDeleteConflict, "Cannot delete a policy attached to entities: it is attached to %d user(s).", len(users))
		}
		err = tx.DeletePolicy(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return notFoundPolicy(name)
		}
		return err
	})
	s.invalidate()
	return err
}

// ListPolicies returns up to max policies by name after marker, and the
// next marker.
func (s *Service) ListPolicies(ctx context.Context, marker string, max int) ([]Policy, string, error) {
	if err := s.Check(ctx, "*"); err != nil {
		return nil, "", err
	}
	max = pageSize(max)
	var rows []store.Policy
	err := s.read(ctx, func(tx store.Tx) (err error) {
		rows, err = tx.ListPolicies(ctx, marker, max+1)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	rows, next := page(rows, max, func(p store.Policy) string { return p.Name })
	out := make([]Policy, len(rows))
	for i, p := range rows {
		out[i] = policyOf(p, -1)
		out[i].Document = ""
	}
	return out, next, nil
}

// AttachUserPolicy attaches a policy to a user; it applies to the user's
// next request.
func (s *Service) AttachUserPolicy(ctx context.Context, user, nameOrARN string) error {
	return s.attachment(ctx, user, nameOrARN, true)
}

// DetachUserPolicy detaches a policy from a user; it applies to the user's
// next request.
func (s *Service) DetachUserPolicy(ctx context.Context, user, nameOrARN string) error {
	return s.attachment(ctx, user, nameOrARN, false)
}

func (s *Service) attachment(ctx context.Context, user, nameOrARN string, attach bool) error {
	if err := validName("UserName", user, maxUserNameLen); err != nil {
		return err
	}
	name, perr := s.policyName(nameOrARN)
	if perr != nil {
		return perr
	}
	if err := s.Check(ctx, s.userARN(user)); err != nil {
		return err
	}
	err := s.write(ctx, func(tx store.Tx) error {
		if _, err := tx.User(ctx, user); errors.Is(err, store.ErrNotFound) {
			return notFoundUser(user)
		} else if err != nil {
			return err
		}
		if _, err := tx.Policy(ctx, name); errors.Is(err, store.ErrNotFound) {
			return notFoundPolicy(name)
		} else if err != nil {
			return err
		}
		if !attach {
			err := tx.DetachUserPolicy(ctx, user, name)
			if errors.Is(err, store.ErrNotFound) {
				return errorf(KindNoSuchEntity, "Policy %s is not attached to user %s.", name, user)
			}
			return err
		}
		attached, err := tx.UserPolicies(ctx, user)
		if err != nil {
			return err
		}
		if len(attached) >= MaxPoliciesByUser {
			for _, p := range attached {
				if p.Name == name {
					return nil
				}
			}
			return errorf(KindLimitExceeded, "Cannot exceed quota for PoliciesPerUser: %d", MaxPoliciesByUser)
		}
		return tx.AttachUserPolicy(ctx, user, name)
	})
	s.invalidate()
	return err
}

// ListAttachedUserPolicies returns the policies attached to a user.
func (s *Service) ListAttachedUserPolicies(ctx context.Context, user string) ([]Policy, error) {
	if err := validName("UserName", user, maxUserNameLen); err != nil {
		return nil, err
	}
	if err := s.Check(ctx, s.userARN(user)); err != nil {
		return nil, err
	}
	var rows []store.Policy
	err := s.read(ctx, func(tx store.Tx) error {
		if _, err := tx.User(ctx, user); errors.Is(err, store.ErrNotFound) {
			return notFoundUser(user)
		} else if err != nil {
			return err
		}
		var err error
		rows, err = tx.UserPolicies(ctx, user)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Policy, len(rows))
	for i, p := range rows {
		out[i] = policyOf(p, -1)
		out[i].Document = ""
	}
	return out, nil
}

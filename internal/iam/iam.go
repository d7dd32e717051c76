// Package iam is Rotor's access control: users, their access keys, managed
// identity policies and the attachments between them, and the per-request
// authorization that enforces them on every operation.
//
// # Principals
//
// The root principal (arn:aws:iam::ACCOUNT:root) may do everything. Every
// other caller is a user, arn:aws:iam::ACCOUNT:user/NAME, authenticated by
// one of its access keys (at most two, as in IAM). An access key's secret is
// shown once, when the key is created, and stored sealed by the keyring.
// Deactivating or deleting a key takes effect on the next request this
// node serves (auth.StoreKeys drops it from its cache when the change
// commits).
//
// # Authorization
//
// awsapi attaches a Caller to each request's context and calls Prepare,
// which loads the caller's identity policies (cached, and dropped from the
// cache whenever a policy, attachment or user changes) outside any store
// transaction. The secrets service then asks Authorize for each Access it
// makes; Rotor-native operations ask Check. Both evaluate as AWS does within
// one account (policy.Authorize): an explicit Deny in any policy wins;
// otherwise an Allow in an identity policy or in the secret's resource
// policy allows; otherwise the request is denied. A denial is
// AccessDeniedException with AWS's message, "User: ARN is not authorized to
// perform: ACTION on resource: ARN because …".
//
// A context without a Caller is refused, except one made by System, which
// the server uses for its own work (the rotation engine, the purge job).
//
// Request context keys offered to conditions: aws:SourceIp,
// aws:CurrentTime, aws:EpochTime, aws:SecureTransport, aws:UserAgent,
// aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType, aws:username,
// aws:userid, aws:RequestedRegion, aws:RequestTag/KEY, aws:TagKeys,
// aws:ResourceTag/KEY and secretsmanager:ResourceTag/KEY,
// secretsmanager:SecretId, secretsmanager:Name, secretsmanager:VersionStage
// and secretsmanager:VersionId.
//
// Errors of the administrative operations are *Error values whose Kind
// internal/awsapi maps to IAM's error codes; denials are secrets.Error
// values of KindAccessDenied.
package iam

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/auth/policy"
	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/store"
)

// Kind classifies an administrative error.
type Kind int

// The kinds of error, after IAM's codes.
const (
	KindInternal        Kind = iota
	KindNoSuchEntity         // NoSuchEntityException
	KindEntityExists         // EntityAlreadyExistsException
	KindInvalidInput         // InvalidInputException
	KindMalformedPolicy      // MalformedPolicyDocumentException
	KindLimitExceeded        // LimitExceededException
	KindDeleteConflict       // DeleteConflictException
)

// Error is an administrative error; Msg is safe to show to the client.
type Error struct {
	Kind Kind
	Msg  string
	Err  error // the cause of a KindInternal error, for logs only
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

func internal(msg string, err error) *Error { return &Error{Kind: KindInternal, Msg: msg, Err: err} }

// Limits, as IAM's.
const (
	MaxKeysPerUser    = 2
	MaxPoliciesByUser = 10
	maxUserNameLen    = 64
	maxPolicyNameLen  = 128
	maxDescriptionLen = 1000
)

// Config wires a Service.
type Config struct {
	Store     store.Store
	Keys      *auth.StoreKeys
	AccountID string
	Region    string
	Now       func() time.Time
	Logger    *slog.Logger
	// Version, when set, counts the committed changes of users, keys and
	// policies by every node sharing the store (store.TopicVersions): the
	// cached identity policies are dropped before use when it changed.
	Version func(context.Context) (uint64, error)
}

// Service implements the administrative operations and the authorizer. It
// is safe for concurrent use.
type Service struct {
	cfg Config

	mu       sync.Mutex
	policies map[string][]*policy.Policy // user ARN → parsed attached policies
	gen      uint64                      // bumped by every change that invalidates policies
	seen     uint64                      // the Config.Version the cache holds

	resMu     sync.Mutex
	resources map[string]*policy.Policy // resource policy document → parsed (bounded)
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, policies: make(map[string][]*policy.Policy), resources: make(map[string]*policy.Policy)}
}

// Caller is the request context of one API call.
type Caller struct {
	Principal auth.Principal
	// Operation is the action of the request, "secretsmanager:GetSecretValue"
	// or "rotor:CreateUser".
	Operation string
	RequestID string
	SourceIP  string // without port
	UserAgent string
	Secure    bool // the request came over TLS
	Time      time.Time

	identity []*policy.Policy
	prepared bool

	// Accesses are the secrets the request was allowed to act on (or to
	// look for, with Missing set), in order, for its audit record. The
	// secrets service may fill in the version after the fact
	// (secrets.Access.VersionID).
	Accesses []*secrets.Access
	// Denied are the questions refused, in order: one for a refused
	// request, any number for BatchGetSecretValue, whose refusals are
	// per secret.
	Denied []*secrets.Access
}

type callerKey struct{}
type systemKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the Caller ctx carries, nil if none.
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// System returns a context for the server's own work, which Authorize
// allows without a Caller.
func System(ctx context.Context) context.Context {
	return context.WithValue(ctx, systemKey{}, true)
}

func isSystem(ctx context.Context) bool {
	v, _ := ctx.Value(systemKey{}).(bool)
	return v
}

// Prepare loads c's identity policies so that Authorize, which runs inside
// store transactions, needs no store access. Root needs none.
func (s *Service) Prepare(ctx context.Context, c *Caller) error {
	c.prepared = true
	if c.Principal.Root {
		return nil
	}
	if doc := c.Principal.SessionPolicy; doc != "" {
		// Temporary credentials: the session's policy is all they have.
		p, err := policy.ParseIdentityPolicy(doc)
		if err != nil {
			return internal("session policy", err)
		}
		c.identity = []*policy.Policy{p}
		return nil
	}
	ps, err := s.identityPolicies(ctx, c.Principal.ARN)
	if err != nil {
		return err
	}
	c.identity = ps
	return nil
}

// Refresh re-checks a long-lived request (a label-change stream) against
// the current state: its access key must still be active, and its identity
// policies are reloaded. An error means the caller's access is gone.
func (s *Service) Refresh(ctx context.Context, c *Caller) error {
	if s.cfg.Keys != nil {
		if _, _, err := s.cfg.Keys.SecretKey(ctx, c.Principal.AccessKeyID); err != nil {
			return secrets.AccessDenied("The access key of this request was deactivated or deleted.")
		}
	}
	return s.Prepare(ctx, c)
}

func (s *Service) identityPolicies(ctx context.Context, principalARN string) ([]*policy.Policy, error) {
	var version uint64
	if s.cfg.Version != nil {
		v, err := s.cfg.Version(ctx)
		if err != nil {
			return nil, internal("check identity policy cache", err)
		}
		version = v
	}
	s.mu.Lock()
	if version != s.seen {
		s.gen++
		clear(s.policies)
		s.seen = version
	}
	ps, ok := s.policies[principalARN]
	gen := s.gen
	s.mu.Unlock()
	if ok {
		return ps, nil
	}
	name, ok := userName(principalARN)
	if !ok {
		return nil, nil // not a user: no identity policies
	}
	var docs []store.Policy
	err := s.cfg.Store.Read(ctx, func(tx store.Tx) error {
		var err error
		docs, err = tx.UserPolicies(ctx, name)
		return err
	})
	if err != nil {
		return nil, internal("read identity policies", err)
	}
	ps = make([]*policy.Policy, 0, len(docs))
	for _, d := range docs {
		p, err := policy.ParseIdentityPolicy(d.Document)
		if err != nil {
			// Documents are checked when stored; a bad one grants nothing.
			s.cfg.Logger.Error("stored identity policy does not parse", "policy", d.Name, "error", err)
			continue
		}
		ps = append(ps, p)
	}
	s.mu.Lock()
	if s.gen == gen {
		s.policies[principalARN] = ps
	}
	s.mu.Unlock()
	return ps, nil
}

// invalidate drops every cached identity policy set.
func (s *Service) invalidate() {
	s.mu.Lock()
	s.gen++
	clear(s.policies)
	s.mu.Unlock()
}

// Invalidate drops cached policies and keys, for changes made by another
// node.
func (s *Service) Invalidate() {
	s.invalidate()
	if s.cfg.Keys != nil {
		s.cfg.Keys.Forget()
	}
}

const maxCachedResourcePolicies = 4096

func (s *Service) resourcePolicy(doc string) *policy.Policy {
	if doc == "" {
		return nil
	}
	s.resMu.Lock()
	p, ok := s.resources[doc]
	s.resMu.Unlock()
	if ok {
		return p
	}
	p, err := policy.ParseResourcePolicy(doc)
	if err != nil {
		// Stored resource policies were checked when attached (or predate
		// enforcement): one that does not parse grants nothing.
		s.cfg.Logger.Warn("resource policy does not parse; it grants nothing", "error", err)
		p = nil
	}
	s.resMu.Lock()
	if len(s.resources) >= maxCachedResourcePolicies {
		clear(s.resources)
	}
	s.resources[doc] = p
	s.resMu.Unlock()
	return p
}

// Authorize implements secrets.Config.Authorize.
func (s *Service) Authorize(ctx context.Context, a *secrets.Access) error {
	return s.authorize(ctx, a, true)
}

// authorize answers a; note records an allowed secret access in the
// caller's Accesses for the audit record.
func (s *Service) authorize(ctx context.Context, a *secrets.Access, note bool) error {
	c := CallerFrom(ctx)
	if c == nil {
		if isSystem(ctx) {
			return nil
		}
		return errors.New("iam: a request without a caller")
	}
	action := a.Action
	if action == "" {
		action = c.Operation
	}
	resource := a.SecretARN
	if resource == "" {
		resource = "*"
	}
	if c.Principal.Root {
		if note {
			c.note(a)
		}
		return nil
	}
	if !c.prepared {
		return errors.New("iam: Authorize before Prepare")
	}
	req := &policy.Request{Action: action, Resource: resource, Principal: c.Principal.ARN, Context: s.context(c, a)}
	res := policy.Authorize(req, c.identity, s.resourcePolicy(a.ResourcePolicy))
	if !res.Allowed && a.Listing && a.SecretARN == "" && res.Deciding == nil && mayAllow(c.identity, action) {
		// ListSecrets as a whole: allowed when some identity policy could
		// allow it on some secret; the results are then filtered per secret.
		res.Allowed = true
	}
	if !res.Allowed {
		if !a.Listing || a.SecretARN == "" {
			c.Denied = append(c.Denied, a)
		}
		return secrets.AccessDenied(deniedMessage(c.Principal.ARN, action, resource, res.Reason))
	}
	if note {
		c.note(a)
	}
	return nil
}

// note records an allowed access to a secret — one that exists or, with
// Missing set, one asked for that does not — for the audit record.
func (c *Caller) note(a *secrets.Access) {
	if a.Listing || a.SecretARN == "" {
		return
	}
	c.Accesses = append(c.Accesses, a)
}

// Check authorizes a Rotor-native operation on resource ("*" when it has
// none): nil, or a secrets.AccessDenied error.
func (s *Service) Check(ctx context.Context, resource string) error {
	c := CallerFrom(ctx)
	if c == nil {
		if isSystem(ctx) {
			return nil
		}
		return errors.New("iam: a request without a caller")
	}
	return s.authorize(ctx, &secrets.Access{SecretARN: resource}, false)
}

// mayAllow reports whether an Allow statement of ps names action, whatever
// its resource and conditions.
func mayAllow(ps []*policy.Policy, action string) bool {
	for _, p := range ps {
		for i := range p.Statements {
			st := &p.Statements[i]
			if st.Effect == policy.Allow && st.MatchesAction(action) {
				return true
			}
		}
	}
	return false
}

func deniedMessage(principal, action, resource, reason string) string {
	return "User: " + principal + " is not authorized to perform: " + action + " on resource: " + resource + " " + reason
}

// context builds the condition keys of one question.
func (s *Service) context(c *Caller, a *secrets.Access) policy.Context {
	ctx := make(policy.Context, 24)
	t := c.Time
	if t.IsZero() {
		t = s.cfg.Now()
	}
	t = t.UTC()
	ctx.Set("aws:CurrentTime", t.Format(time.RFC3339))
	ctx.Set("aws:EpochTime", strconv.FormatInt(t.Unix(), 10))
	ctx.Set("aws:SecureTransport", strconv.FormatBool(c.Secure))
	ctx.Set("aws:PrincipalArn", c.Principal.ARN)
	ctx.Set("aws:PrincipalAccount", s.cfg.AccountID)
	ctx.Set("aws:RequestedRegion", s.cfg.Region)
	if name, ok := userName(c.Principal.ARN); ok {
		ctx.Set("aws:PrincipalType", "IAMUser")
		ctx.Set("aws:username", name)
		ctx.Set("aws:userid", c.Principal.AccessKeyID)
	}
	if ip, err := netip.ParseAddr(c.SourceIP); err == nil {
		ctx.Set("aws:SourceIp", ip.Unmap().String())
	}
	if c.UserAgent != "" {
		ctx.Set("aws:UserAgent", c.UserAgent)
	}
	for _, tag := range a.ResourceTags {
		ctx.Set("aws:ResourceTag/"+tag.Key, tag.Value)
		ctx.Set("secretsmanager:ResourceTag/"+tag.Key, tag.Value)
	}
	for _, tag := range a.RequestTags {
		ctx.Set("aws:RequestTag/"+tag.Key, tag.Value)
	}
	if len(a.TagKeys) > 0 {
		ctx.Set("aws:TagKeys", a.TagKeys...)
	}
	if a.SecretID != "" {
		ctx.Set("secretsmanager:SecretId", a.SecretARN)
	}
	if a.Name != "" {
		ctx.Set("secretsmanager:Name", a.Name)
	}
	if a.VersionStage != "" {
		ctx.Set("secretsmanager:VersionStage", a.VersionStage)
	}
	if a.VersionID != "" {
		ctx.Set("secretsmanager:VersionId", a.VersionID)
	}
	return ctx
}

// userName returns NAME of arn:aws:iam::ACCOUNT:user/NAME.
func userName(principalARN string) (string, bool) {
	i := strings.Index(principalARN, ":user/")
	if i < 0 || !strings.HasPrefix(principalARN, "arn:aws:iam::") {
		return "", false
	}
	return principalARN[i+len(":user/"):], true
}

// newID returns an IAM-style unique id: prefix and 17 characters of [A-Z2-7].
func newID(prefix string) (string, error) {
	var b [11]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return prefix + base32.StdEncoding.EncodeToString(b[:])[:17], nil
}

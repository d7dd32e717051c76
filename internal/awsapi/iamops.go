package awsapi

import (
	"context"
	"strconv"

	"github.com/rotor-secrets/rotor/internal/iam"
)

// Rotor's administration of users, access keys and managed policies:
// rotor.CreateUser and friends, served when Config.IAM is set. Members and
// response shapes are IAM's (UserName, PolicyArn, {"User":{…}}, Marker and
// IsTruncated), times are epoch seconds as everywhere in this API. The
// iam.Service authorizes each call itself and returns *iam.Error values,
// which wireErrorOf maps to IAM's codes.

var iamOperations = rotorOps(
	op("CreateUser", userNameIn, createUser),
	op("GetUser", userNameIn, getUser),
	op("DeleteUser", userNameIn, deleteUser),
	op("ListUsers", listIAMIn, listUsers),
	op("CreateAccessKey", userNameIn, createAccessKey),
	op("ListAccessKeys", userNameIn, listAccessKeys),
	op("UpdateAccessKey", updateAccessKeyIn, updateAccessKey),
	op("DeleteAccessKey", accessKeyIn, deleteAccessKey),
	op("CreatePolicy", createPolicyIn, createPolicy),
	op("GetPolicy", policyARNIn, getPolicy),
	op("UpdatePolicy", updatePolicyIn, updatePolicy),
	op("DeletePolicy", policyARNIn, deletePolicy),
	op("ListPolicies", listIAMIn, listPolicies),
	op("AttachUserPolicy", userPolicyIn, attachUserPolicy),
	op("DetachUserPolicy", userPolicyIn, detachUserPolicy),
	op("ListAttachedUserPolicies", userNameIn, listAttachedUserPolicies),
)

// Limits of IAM's service model for the members checked here; names,
// documents and descriptions are checked by the iam package.
const (
	maxIAMItems     = 1000
	maxIAMMarkerLen = 320
)

// Request shapes.

type userNameRequest struct {
	UserName string
}

type listIAMRequest struct {
	Marker   string
	MaxItems *int64
}

type accessKeyRequest struct {
	UserName    string
	AccessKeyId string
	Status      string
}

type createPolicyRequest struct {
	PolicyName     string
	PolicyDocument string
	Description    string
}

type policyARNRequest struct {
	PolicyArn      string
	PolicyDocument string
}

type userPolicyRequest struct {
	UserName  string
	PolicyArn string
}

// Response shapes.

type userOut struct {
	UserName   string
	UserId     string
	Arn        string
	CreateDate epochTime `json:",omitzero"`
}

type userResult struct {
	User userOut
}

type listUsersOut struct {
	Users       []userOut
	IsTruncated bool
	Marker      string `json:",omitempty"`
}

// newAccessKeyOut is the only shape that carries SecretAccessKey.
type newAccessKeyOut struct {
	UserName        string
	AccessKeyId     string
	SecretAccessKey string
	Status          string
	CreateDate      epochTime `json:",omitzero"`
}

type createAccessKeyOut struct {
	AccessKey newAccessKeyOut
}

// accessKeyMetadataOut has no member for the secret, so no listing can
// carry it.
type accessKeyMetadataOut struct {
	UserName    string
	AccessKeyId string
	Status      string
	CreateDate  epochTime `json:",omitzero"`
}

type listAccessKeysOut struct {
	AccessKeyMetadata []accessKeyMetadataOut
	IsTruncated       bool
}

type policyOut struct {
	PolicyName  string
	PolicyId    string
	Arn         string
	Description string    `json:",omitempty"`
	CreateDate  epochTime `json:",omitzero"`
	UpdateDate  epochTime `json:",omitzero"`
	// AttachmentCount is absent where the service did not count (nil).
	AttachmentCount *int   `json:",omitempty"`
	PolicyDocument  string `json:",omitempty"`
}

type policyResult struct {
	Policy policyOut
}

type listPoliciesOut struct {
	Policies    []policyOut
	IsTruncated bool
	Marker      string `json:",omitempty"`
}

type attachedPolicyOut struct {
	PolicyName string
	PolicyArn  string
}

type listAttachedUserPoliciesOut struct {
	AttachedPolicies []attachedPolicyOut
	IsTruncated      bool
}

// iamInvalidInput is the error of a request member out of the service
// model's bounds. It names the member as IAM's own validation does
// (lowerCamelCase) and never repeats its value.
func iamInvalidInput(member, constraint string) error {
	return &iam.Error{Kind: iam.KindInvalidInput,
		Msg: "1 validation error detected: Value at '" + member + "' failed to satisfy constraint: " + constraint}
}

// requireMember checks that a required string member is present, with the
// message IAM gives for a missing one.
func requireMember(member, v string) error {
	if v == "" {
		return &iam.Error{Kind: iam.KindInvalidInput,
			Msg: "1 validation error detected: Value null at '" + member + "' failed to satisfy constraint: Member must not be null"}
	}
	return nil
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Users

func userNameIn(w *userNameRequest) (string, error) {
	return w.UserName, requireMember("userName", w.UserName)
}

func userOf(u iam.User) userOut {
	return userOut{UserName: u.UserName, UserId: u.UserID, Arn: u.ARN, CreateDate: epochTime(u.CreateDate)}
}

func createUser(ctx context.Context, h *Handler, name string) (any, error) {
	u, err := h.iam.CreateUser(ctx, name)
	if err != nil {
		return nil, err
	}
	return userResult{userOf(u)}, nil
}

func getUser(ctx context.Context, h *Handler, name string) (any, error) {
	u, err := h.iam.GetUser(ctx, name)
	if err != nil {
		return nil, err
	}
	return userResult{userOf(u)}, nil
}

func deleteUser(ctx context.Context, h *Handler, name string) (any, error) {
	if err := h.iam.DeleteUser(ctx, name); err != nil {
		return nil, err
	}
	return emptyOut{}, nil
}

type listIAMInput struct {
	marker string
	max    int // 0: the service's default
}

func listIAMIn(w *listIAMRequest) (listIAMInput, error) {
	in := listIAMInput{marker: w.Marker}
	if len(w.Marker) > maxIAMMarkerLen {
		return in, iamInvalidInput("marker", "Member must have length less than or equal to "+strconv.Itoa(maxIAMMarkerLen))
	}
	if w.MaxItems != nil {
		if *w.MaxItems < 1 || *w.MaxItems > maxIAMItems {
			return in, iamInvalidInput("maxItems", "Member must have value between 1 and "+strconv.Itoa(maxIAMItems))
		}
		in.max = int(*w.MaxItems)
	}
	return in, nil
}

func listUsers(ctx context.Context, h *Handler, in listIAMInput) (any, error) {
	users, next, err := h.iam.ListUsers(ctx, in.marker, in.max)
	if err != nil {
		return nil, err
	}
	out := listUsersOut{Users: make([]userOut, len(users)), IsTruncated: next != "", Marker: next}
	for i, u := range users {
		out.Users[i] = userOf(u)
	}
	return out, nil
}

// Access keys

func createAccessKey(ctx context.Context, h *Handler, user string) (any, error) {
	k, err := h.iam.CreateAccessKey(ctx, user)
	if err != nil {
		return nil, err
	}
	return createAccessKeyOut{newAccessKeyOut{
		UserName: k.UserName, AccessKeyId: k.AccessKeyID, SecretAccessKey: k.Secret,
		Status: k.Status, CreateDate: epochTime(k.CreateDate),
	}}, nil
}

func listAccessKeys(ctx context.Context, h *Handler, user string) (any, error) {
	keys, err := h.iam.ListAccessKeys(ctx, user)
	if err != nil {
		return nil, err
	}
	out := listAccessKeysOut{AccessKeyMetadata: make([]accessKeyMetadataOut, len(keys))}
	for i, k := range keys {
		out.AccessKeyMetadata[i] = accessKeyMetadataOut{
			UserName: k.UserName, AccessKeyId: k.AccessKeyID, Status: k.Status, CreateDate: epochTime(k.CreateDate),
		}
	}
	return out, nil
}

type accessKeyInput struct {
	user, id, status string
}

func accessKeyIn(w *accessKeyRequest) (accessKeyInput, error) {
	in := accessKeyInput{user: w.UserName, id: w.AccessKeyId, status: w.Status}
	return in, firstErr(requireMember("userName", w.UserName), requireMember("accessKeyId", w.AccessKeyId))
}

func updateAccessKeyIn(w *accessKeyRequest) (accessKeyInput, error) {
	in, err := accessKeyIn(w)
	return in, firstErr(err, requireMember("status", w.Status))
}

func updateAccessKey(ctx context.Context, h *Handler, in accessKeyInput) (any, error) {
	if err := h.iam.UpdateAccessKey(ctx, in.user, in.id, in.status); err != nil {
		return nil, err
	}
	return emptyOut{}, nil
}

func deleteAccessKey(ctx context.Context, h *Handler, in accessKeyInput) (any, error) {
	if err := h.iam.DeleteAccessKey(ctx, in.user, in.id); err != nil {
		return nil, err
	}
	return emptyOut{}, nil
}

// Policies

func policyOf(p iam.Policy) policyOut {
	out := policyOut{
		PolicyName: p.PolicyName, PolicyId: p.PolicyID, Arn: p.ARN, Description: p.Description,
		CreateDate: epochTime(p.CreateDate), UpdateDate: epochTime(p.UpdateDate),
	}
	if p.AttachmentCount >= 0 {
		n := p.AttachmentCount
		out.AttachmentCount = &n
	}
	return out
}

type createPolicyInput struct {
	name, description, document string
}

func createPolicyIn(w *createPolicyRequest) (createPolicyInput, error) {
	in := createPolicyInput{name: w.PolicyName, description: w.Description, document: w.PolicyDocument}
	return in, firstErr(requireMember("policyName", w.PolicyName), requireMember("policyDocument", w.PolicyDocument))
}

func createPolicy(ctx context.Context, h *Handler, in createPolicyInput) (any, error) {
	p, err := h.iam.CreatePolicy(ctx, in.name, in.description, in.document)
	if err != nil {
		return nil, err
	}
	return policyResult{policyOf(p)}, nil
}

type iamPolicyInput struct {
	arn, document string
}

func policyARNIn(w *policyARNRequest) (iamPolicyInput, error) {
	return iamPolicyInput{arn: w.PolicyArn}, requireMember("policyArn", w.PolicyArn)
}

func getPolicy(ctx context.Context, h *Handler, in iamPolicyInput) (any, error) {
	p, err := h.iam.GetPolicy(ctx, in.arn)
	if err != nil {
		return nil, err
	}
	out := policyOf(p)
	out.PolicyDocument = p.Document
	return policyResult{out}, nil
}

func updatePolicyIn(w *policyARNRequest) (iamPolicyInput, error) {
	in := iamPolicyInput{arn: w.PolicyArn, document: w.PolicyDocument}
	return in, firstErr(requireMember("policyArn", w.PolicyArn), requireMember("policyDocument", w.PolicyDocument))
}

func updatePolicy(ctx context.Context, h *Handler, in iamPolicyInput) (any, error) {
	p, err := h.iam.UpdatePolicy(ctx, in.arn, in.document)
	if err != nil {
		return nil, err
	}
	return policyResult{policyOf(p)}, nil
}

func deletePolicy(ctx context.Context, h *Handler, in iamPolicyInput) (any, error) {
	if err := h.iam.DeletePolicy(ctx, in.arn); err != nil {
		return nil, err
	}
	return emptyOut{}, nil
}

func listPolicies(ctx context.Context, h *Handler, in listIAMInput) (any, error) {
	ps, next, err := h.iam.ListPolicies(ctx, in.marker, in.max)
	if err != nil {
		return nil, err
	}
	out := listPoliciesOut{Policies: make([]policyOut, len(ps)), IsTruncated: next != "", Marker: next}
	for i, p := range ps {
		out.Policies[i] = policyOf(p)
	}
	return out, nil
}

// Attachments

type userPolicyInput struct {
	user, policy string
}

func userPolicyIn(w *userPolicyRequest) (userPolicyInput, error) {
	in := userPolicyInput{user: w.UserName, policy: w.PolicyArn}
	return in, firstErr(requireMember("userName", w.UserName), requireMember("policyArn", w.PolicyArn))
}

func attachUserPolicy(ctx context.Context, h *Handler, in userPolicyInput) (any, error) {
	if err := h.iam.AttachUserPolicy(ctx, in.user, in.policy); err != nil {
		return nil, err
	}
	return emptyOut{}, nil
}

func detachUserPolicy(ctx context.Context, h *Handler, in userPolicyInput) (any, error) {
	if err := h.iam.DetachUserPolicy(ctx, in.user, in.policy); err != nil {
		return nil, err
	}
	return emptyOut{}, nil
}

func listAttachedUserPolicies(ctx context.Context, h *Handler, user string) (any, error) {
	ps, err := h.iam.ListAttachedUserPolicies(ctx, user)
	if err != nil {
		return nil, err
	}
	out := listAttachedUserPoliciesOut{AttachedPolicies: make([]attachedPolicyOut, len(ps))}
	for i, p := range ps {
		out.AttachedPolicies[i] = attachedPolicyOut{PolicyName: p.PolicyName, PolicyArn: p.ARN}
	}
	return out, nil
}

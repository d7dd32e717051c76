package client

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

// fetch reads k from the service. Without prev (a miss, or a forced
// refresh) it asks GetSecretValue for the stage. With prev it first asks
// DescribeSecret which version carries the stage: if prev is that version it
// is kept, otherwise that version is fetched by VersionId, so the value and
// the stage agree even if the stage moves again meanwhile. denied reports
// that DescribeSecret was refused, in which case fetch fell back to
// GetSecretValue.
func (c *Cache) fetch(ctx context.Context, k key, prev *Secret, noDescribe bool) (s *Secret, denied bool, err error) {
	if prev == nil || noDescribe {
		s, err = c.getValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &k.id, VersionStage: &k.stage})
		return s, false, err
	}
	d, err := c.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: &k.id})
	if err != nil {
		if errorCode(err) != "AccessDeniedException" {
			return nil, false, err
		}
		// Permission to read values but not metadata is common; such a
		// caller still gets refreshes, without the version check.
		s, err = c.getValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &k.id, VersionStage: &k.stage})
		return s, true, err
	}
	vid := versionWithStage(d.VersionIdsToStages, k.stage)
	switch {
	case d.DeletedDate != nil || vid == "":
		// Let the service say what is wrong (marked for deletion, no such
		// stage) in its own words.
		s, err = c.getValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &k.id, VersionStage: &k.stage})
		return s, false, err
	case vid == prev.VersionID:
		stages := d.VersionIdsToStages[vid]
		if slices.Equal(stages, prev.VersionStages) {
			return prev, false, nil
		}
		cp := *prev
		cp.VersionStages = slices.Clone(stages)
		return &cp, false, nil
	default:
		s, err = c.getValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &k.id, VersionId: &vid})
		return s, false, err
	}
}

func (c *Cache) getValue(ctx context.Context, in *secretsmanager.GetSecretValueInput) (*Secret, error) {
	out, err := c.api.GetSecretValue(ctx, in)
	if err != nil {
		return nil, err
	}
	return &Secret{
		ARN:           aws.ToString(out.ARN),
		Name:          aws.ToString(out.Name),
		VersionID:     aws.ToString(out.VersionId),
		VersionStages: out.VersionStages,
		SecretString:  aws.ToString(out.SecretString),
		SecretBinary:  out.SecretBinary,
		CreatedDate:   aws.ToTime(out.CreatedDate),
	}, nil
}

// versionWithStage returns the version carrying stage, or "".
func versionWithStage(versions map[string][]string, stage string) string {
	for vid, stages := range versions {
		if slices.Contains(stages, stage) {
			return vid
		}
	}
	return ""
}

// isGone reports whether err means the secret can no longer be read, so a
// cached value must not be served: it does not exist, it is marked for
// deletion, or the caller lost access to it.
func isGone(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "ResourceNotFoundException", "AccessDeniedException":
		return true
	case "InvalidRequestException":
		return strings.Contains(strings.ToLower(ae.ErrorMessage()), "marked for deletion")
	}
	return false
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

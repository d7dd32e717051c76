package secrets

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/rotor-secrets/rotor/internal/store"
)

// The ListSecrets filter keys.
var filterKeys = []string{"description", "name", "tag-key", "tag-value", "primary-region", "owning-service", "all"}

// listScanLimit bounds the rows one ListSecrets call examines, so a
// selective filter over many secrets answers with a partial (possibly
// empty) page and a NextToken rather than scanning everything.
const listScanLimit = 2000

// ListSecrets lists secrets matching every filter, in the requested order,
// one page at a time.
func (s *Service) ListSecrets(ctx context.Context, in ListSecretsInput) (ListSecretsOutput, error) {
	max, err := maxResults(in.MaxResults, maxListResults)
	if err != nil {
		return ListSecretsOutput{}, err
	}
	if err := checkFilters(in.Filters); err != nil {
		return ListSecretsOutput{}, err
	}
	q := store.ListQuery{SortBy: store.SortByCreated, Descending: true, IncludeDeleted: in.IncludePlannedDeletion}
	switch in.SortBy {
	case "", "created-date":
	case "name", "last-changed-date", "last-accessed-date":
		q.SortBy = store.SortBy(in.SortBy)
	default:
		return ListSecretsOutput{}, validation("sortBy", "Member must satisfy enum value set: [created-date, last-accessed-date, last-changed-date, name]")
	}
	switch in.SortOrder {
	case "", "desc":
	case "asc":
		q.Descending = false
	default:
		return ListSecretsOutput{}, validation("sortOrder", "Member must satisfy enum value set: [asc, desc]")
	}
	if in.NextToken != "" {
		var tok listToken
		if len(in.NextToken) > maxNextTokenLen || decodeToken(in.NextToken, &tok) != nil ||
			tok.Sort != string(q.SortBy) || tok.Desc != q.Descending || tok.Deleted != q.IncludeDeleted {
			return ListSecretsOutput{}, errorf(KindInvalidNextToken, "The NextToken value is invalid.")
		}
		q.After = &store.Cursor{Name: tok.Name, ARN: tok.ARN}
		if tok.TimeMS != 0 {
			q.After.Time = time.UnixMilli(tok.TimeMS).UTC()
		}
	}

	if err := s.authorize(ctx, &Access{Action: ActionListSecrets, Listing: true}); err != nil {
		return ListSecretsOutput{}, err
	}
	var out ListSecretsOutput
	err = s.cfg.Store.Read(ctx, func(tx store.Tx) error {
		scanned := 0
		for {
			q.Limit = min(max*2, listScanLimit-scanned)
			rows, err := tx.ListSecrets(ctx, q)
			if err != nil {
				return internal("list secrets", err)
			}
			for i, sec := range rows {
				scanned++
				last := cursorOf(q.SortBy, sec)
				visible, err := s.visible(ctx, sec)
				if err != nil {
					return err
				}
				if visible && matchesAll(sec, in.Filters, s.cfg.Region) {
					d, err := s.describe(ctx, tx, sec)
					if err != nil {
						return err
					}
					out.SecretList = append(out.SecretList, d)
				}
				full := len(out.SecretList) == max
				if full || scanned >= listScanLimit {
					if full && i == len(rows)-1 && len(rows) < q.Limit {
						return nil // the last row of the last batch: no more pages
					}
					out.NextToken = encodeToken(listToken{
						Sort: string(q.SortBy), Desc: q.Descending, Deleted: q.IncludeDeleted,
						Name: last.Name, TimeMS: msOf(last.Time), ARN: last.ARN,
					})
					return nil
				}
			}
			if len(rows) < q.Limit {
				return nil
			}
			q.After = ptr(cursorOf(q.SortBy, rows[len(rows)-1]))
		}
	})
	return out, err
}

// visible reports whether the caller may see sec in ListSecrets results.
func (s *Service) visible(ctx context.Context, sec store.Secret) (bool, error) {
	err := s.authorize(ctx, &Access{Action: ActionListSecrets, Listing: true, SecretARN: sec.ARN, Name: sec.Name,
		SecretID: sec.ARN, ResourcePolicy: sec.ResourcePolicy, ResourceTags: fromStoreTags(sec.Tags)})
	if err == nil {
		return true, nil
	}
	if KindOf(err) == KindAccessDenied {
		return false, nil
	}
	return false, err
}

func ptr[T any](v T) *T { return &v }

func msOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func cursorOf(by store.SortBy, sec store.Secret) store.Cursor {
	c := store.Cursor{ARN: sec.ARN}
	switch by {
	case store.SortByName:
		c.Name = sec.Name
	case store.SortByLastChanged:
		c.Time = sec.LastChangedAt
	case store.SortByLastAccessed:
		c.Time = sec.LastAccessedAt
	default:
		c.Time = sec.CreatedAt
	}
	return c
}

type listToken struct {
	Sort    string `json:"s"`
	Desc    bool   `json:"d,omitempty"`
	Deleted bool   `json:"x,omitempty"`
	Name    string `json:"n,omitempty"`
	TimeMS  int64  `json:"t,omitempty"`
	ARN     string `json:"a"`
}

func encodeToken(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func maxResults(p *int64, limit int) (int, error) {
	if p == nil {
		return limit, nil
	}
	if *p < 1 || *p > int64(limit) {
		return 0, validation("maxResults", fmt.Sprintf("Member must have value between 1 and %d", limit))
	}
	return int(*p), nil
}

func checkFilters(fs []Filter) error {
	if len(fs) > maxFilters {
		return validation("filters", "Member must have length less than or equal to 10")
	}
	for _, f := range fs {
		known := false
		for _, k := range filterKeys {
			known = known || f.Key == k
		}
		if !known {
			return validation("filters.member.key", "Member must satisfy enum value set: [description, name, tag-key, tag-value, primary-region, owning-service, all]")
		}
		if len(f.Values) == 0 || len(f.Values) > maxFilterValues {
			return validation("filters.member.values", "Member must have length between 1 and 10")
		}
		for _, v := range f.Values {
			if err := checkLen("filters.member.values.member", v, 0, maxFilterValueLen); err != nil {
				return err
			}
			if !validFilterValue(v) {
				return validation("filters.member.values.member", `Member must satisfy regular expression pattern: ^\!?[a-zA-Z0-9 :_@\/\+\=\.\-\!]*$`)
			}
		}
	}
	return nil
}

func validFilterValue(v string) bool {
	v = strings.TrimPrefix(v, "!")
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(" :_@/+=.-!", c) >= 0) {
			return false
		}
	}
	return true
}

// matchesAll reports whether sec passes every filter. Within one filter the
// plain values are alternatives and "!"-prefixed values are exclusions: a
// secret passes if it matches some plain value (or there are none) and no
// excluded one.
func matchesAll(sec store.Secret, fs []Filter, region string) bool {
	for _, f := range fs {
		anyPlain, plainHit := false, false
		for _, v := range f.Values {
			if neg, ok := strings.CutPrefix(v, "!"); ok {
				if matches(sec, f.Key, neg, region) {
					return false
				}
				continue
			}
			anyPlain = true
			plainHit = plainHit || matches(sec, f.Key, v, region)
		}
		if anyPlain && !plainHit {
			return false
		}
	}
	return true
}

func matches(sec store.Secret, key, v, region string) bool {
	switch key {
	case "name":
		return strings.HasPrefix(sec.Name, v)
	case "description":
		return hasPrefixFold(sec.Description, v)
	case "tag-key":
		for _, t := range sec.Tags {
			if strings.HasPrefix(t.Key, v) {
				return true
			}
		}
	case "tag-value":
		for _, t := range sec.Tags {
			if strings.HasPrefix(t.Value, v) {
				return true
			}
		}
	case "primary-region":
		return strings.HasPrefix(region, v)
	case "owning-service":
		return false // no secret is managed by another service
	case "all":
		fields := []string{sec.Name, sec.Description}
		for _, t := range sec.Tags {
			fields = append(fields, t.Key, t.Value)
		}
		for _, f := range fields {
			if hasPrefixFold(f, v) {
				return true
			}
			for _, w := range strings.FieldsFunc(f, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
				if hasPrefixFold(w, v) {
					return true
				}
			}
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

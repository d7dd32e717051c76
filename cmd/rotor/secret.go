package main

// `rotor secret …`: a command-line client for the Secrets Manager API, for
// Rotor or AWS alike. Each subcommand is one API operation; flags mirror the
// operation's members.

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/spf13/cobra"
)

// secretCLI holds what the secret subcommands share: the environment and the
// persistent flags.
type secretCLI struct {
	e      *env
	output string
	conn   connFlags
}

func newSecretCmd(e *env) *cobra.Command {
	s := &secretCLI{e: e}
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Manage secrets",
		Long: `Manage secrets through the Secrets Manager API, on Rotor or on AWS.

The endpoint, region and credentials are found as the AWS CLI finds them
(AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL, AWS_PROFILE, AWS_REGION,
the shared config and credentials files). Where nothing is configured, the
endpoint is ` + defaultEndpoint + `, the region ` + defaultRegion + `, and the credentials are
profile "rotor" of $ROTOR_DATA_DIR/credentials (default ./rotor-data/credentials),
which rotor server writes.

Output is the API response as JSON (-o json, the default) or a short text
form for people (-o text).`,
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) > 0 {
				return secretUsageError(cmd, "unknown command %q for %q", a[0], cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringVarP(&s.output, "output", "o", outputJSON, "output `format`: json or text")
	pf.StringVar(&s.conn.endpointURL, "endpoint-url", "", "send requests to `URL` instead of the configured endpoint")
	pf.StringVar(&s.conn.region, "region", "", "the `region` to sign requests for")
	pf.StringVar(&s.conn.profile, "profile", "", "use `NAME` from the shared config and credentials files")
	pf.DurationVar(&s.conn.timeout, "timeout", defaultTimeout, "give up on a request after this `duration`")
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return secretUsageError(c, "%v", err)
	})
	cmd.AddCommand(
		s.newCreateCmd(),
		s.newGetCmd(),
		s.newPutCmd(),
		s.newUpdateCmd(),
		s.newDescribeCmd(),
		s.newListCmd(),
		s.newVersionsCmd(),
		s.newDeleteCmd(),
		s.newRestoreCmd(),
		s.newTagCmd(),
		s.newUntagCmd(),
		s.newRandomPasswordCmd(),
		s.newRotateCmd(),
		s.newCancelRotationCmd(),
		s.newRotationStatusCmd(),
	)
	return cmd
}

// check validates the persistent flags; call it before anything else.
func (s *secretCLI) check(cmd *cobra.Command) error {
	if s.output != outputJSON && s.output != outputText {
		return secretUsageError(cmd, "--output: want json or text, got %q", s.output)
	}
	if s.conn.timeout <= 0 {
		return secretUsageError(cmd, "--timeout: want a positive duration, got %s", s.conn.timeout)
	}
	return nil
}

func (s *secretCLI) open(cmd *cobra.Command) (*clientConn, error) {
	return openClient(cmd.Context(), s.e.getenv, s.conn)
}

// print writes out as JSON, or through text for -o text.
func (s *secretCLI) print(out any, text func(w io.Writer) error) error {
	if s.output == outputText {
		return text(s.e.stdout)
	}
	return writeAPIJSON(s.e.stdout, out)
}

// changed returns a pointer to v when the flag was given, and nil (the member
// is left out of the request) when it was not.
func changed[T any](cmd *cobra.Command, flag string, v T) *T {
	if cmd.Flags().Changed(flag) {
		return &v
	}
	return nil
}

func (s *secretCLI) newCreateCmd() *cobra.Command {
	var (
		vf                         valueFlags
		description, kmsKey, token string
		tags                       []string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a secret, optionally with its first value",
		Args:  secretArgs(1, false, "NAME"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := s.check(cmd); err != nil {
				return err
			}
			t, err := parseTags(tags)
			if err != nil {
				return secretUsageError(cmd, "--tag: %v", err)
			}
			v, err := vf.read(cmd, s.e.stdin, false)
			if err != nil {
				return err
			}
			in := &secretsmanager.CreateSecretInput{
				Name:               &a[0],
				Description:        changed(cmd, "description", description),
				KmsKeyId:           changed(cmd, "kms-key-id", kmsKey),
				ClientRequestToken: changed(cmd, "client-request-token", token),
				SecretString:       v.str,
				SecretBinary:       v.bin,
			}
			if len(t) > 0 {
				in.Tags = t
			}
			c, err := s.open(cmd)
			if err != nil {
				return err
			}
			out, err := callAPI(cmd.Context(), c, c.client.CreateSecret, in)
			if err != nil {
				return err
			}
			return s.print(out, func(w io.Writer) error {
				if out.VersionId != nil {
					_, err := fmt.Fprintf(w, "created %s (version %s)\n", printable(aws.ToString(out.Name)), printable(*out.VersionId))
					return err
				}
				_, err := fmt.Fprintf(w, "created %s\n", printable(aws.ToString(out.Name)))
				return err
			})
		},
	}
	vf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&description, "description", "", "the secret's description")
	f.StringVar(&kmsKey, "kms-key-id", "", "the `key` that encrypts the secret's values")
	f.StringArrayVar(&tags, "tag", nil, "add the tag `KEY=VALUE` (repeatable)")
	f.StringVar(&token, "client-request-token", "", "idempotency `token`, also the first version's id (default: generated)")
	return cmd
}

func (s *secretCLI) newGetCmd() *cobra.Command {
	var versionID, stage string
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Print a secret's value (by default the AWSCURRENT version)",
		Long: `Print a secret's value (by default the AWSCURRENT version).

With -o text, only the value is printed: the string as stored, or the raw
bytes of a binary secret.`,
		Args: secretArgs(1, false, "ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := s.check(cmd); err != nil {
				return err
			}
			c, err := s.open(cmd)
			if err != nil {
				return err
			}
			out, err := callAPI(cmd.Context(), c, c.client.GetSecretValue, &secretsmanager.GetSecretValueInput{
				SecretId:     &a[0],
				VersionId:    changed(cmd, "version-id", versionID),
				VersionStage: changed(cmd, "version-stage", stage),
			})
			if err != nil {
				return err
			}
			return s.print(out, func(w io.Writer) error {
				if out.SecretString != nil {
					return writeRaw(w, []byte(*out.SecretString))
				}
				return writeRaw(w, out.SecretBinary)
			})
		},
	}
	cmd.Flags().StringVar(&versionID, "version-id", "", "get the version with this `id`")
	cmd.Flags().StringVar(&stage, "version-stage", "", "get the version with this staging `label`")
	return cmd
}

func (s *secretCLI) newPutCmd() *cobra.Command {
	var (
		vf     valueFlags
		token  string
		stages []string
	)
	cmd := &cobra.Command{
		Use:   "put ID",
		Short: "Store a new value as a new version of a secret",
		Args:  secretArgs(1, false, "ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := s.check(cmd); err != nil {
				return err
			}
			v, err := vf.read(cmd, s.e.stdin, true)
			if err != nil {
				return err
			}
			c, err := s.open(cmd)
			if err != nil {
				return err
			}
			out, err := callAPI(cmd.Context(), c, c.client.PutSecretValue, &secretsmanager.PutSecretValueInput{
				SecretId:           &a[0],
				ClientRequestToken: changed(cmd, "client-request-token", token),
				SecretString:       v.str,
				SecretBinary:       v.bin,
				VersionStages:      stages,
			})
			if err != nil {
				return err
			}
			return s.print(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "stored version %s of %s (%s)\n",
					printable(aws.ToString(out.VersionId)), printable(aws.ToString(out.Name)), printable(joinStages(out.VersionStages)))
				return err
			})
		},
	}
	vf.register(cmd)
	cmd.Flags().StringVar(&token, "client-request-token", "", "idempotency `token`, also the new version's id (default: generated)")
	cmd.Flags().StringArrayVar(&stages, "version-stage", nil, "attach this staging `label` to the new version (repeatable; default AWSCURRENT)")
	return cmd
}

func joinStages(stages []string) string {
	if len(stages) == 0 {
		return "no staging labels"
	}
	return strings.Join(stages, ", ")
}

func (s *secretCLI) newUpdateCmd() *cobra.Command {
	var (
		vf                         valueFlags
		description, kmsKey, token string
	)
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change a secret's description, key or value",
		Args:  secretArgs(1, false, "ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := s.check(cmd); err != nil {
				return err
			}
			v, err := vf.read(cmd, s.e.stdin, false)
			if err != nil {
				return err
			}
			in := &secretsmanager.UpdateSecretInput{
				SecretId:           &a[0],
				Description:        changed(cmd, "description", description),
				KmsKeyId:           changed(cmd, "kms-key-id", kmsKey),
				ClientRequestToken: changed(cmd, "client-request-token", token),
				SecretString:       v.str,
				SecretBinary:       v.bin,
			}
			if in.Description == nil && in.KmsKeyId == nil && !v.given() {
				return secretUsageError(cmd, "nothing to update: give --description, --kms-key-id, --value, --value-file or --binary-file")
			}
			c, err := s.open(cmd)
			if err != nil {
				return err
			}
			out, err := callAPI(cmd.Context(), c, c.client.UpdateSecret, in)
			if err != nil {
				return err
			}
			return s.print(out, func(w io.Writer) error {
				if out.VersionId != nil {
					_, err := fmt.Fprintf(w, "updated %s (new version %s)\n", printable(aws.ToString(out.Name)), printable(*out.VersionId))
					return err
				}
				_, err := fmt.Fprintf(w, "updated %s\n", printable(aws.ToString(out.Name)))
				return err
			})
		},
	}
	vf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&description, "description", "", "the new description")
	f.StringVar(&kmsKey, "kms-key-id", "", "the `key` that encrypts new values")
	f.StringVar(&token, "client-request-token", "", "idempotency `token`, also the new version's id (default: generated)")
	return cmd
}

func (s *secretCLI) newDescribeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "describe ID",
		Short: "Show a secret's details, without its value",
		Args:  secretArgs(1, false, "ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := s.check(cmd); err != nil {
				return err
			}
			c, err := s.open(cmd)
			if err != nil {
				return err
			}
			out, err := callAPI(cmd.Context(), c, c.client.DescribeSecret, &secretsmanager.DescribeSecretInput{SecretId: &a[0]})
			if err != nil {
				return err
			}
			return s.print(out, func(w io.Writer) error { return writeDescription(w, out) })
		},
	}
}

// sortByValues are the orders ListSecrets knows.
var sortByValues = []types.SortByType{
	types.SortByTypeName,
	types.SortByTypeCreatedDate,
	types.SortByTypeLastAccessedDate,
	types.SortByTypeLastChangedDate,
}

// maxPageSize is the service's limit on MaxResults.
const maxPageSize = 100

// pageFlags are the paging flags of list and versions.
type pageFlags struct {
	maxResults int32
	nextToken  string
	all        bool
}

func (p *pageFlags) register(cmd *cobra.Command, what string) {
	f := cmd.Flags()
	f.Int32Var(&p.maxResults, "max-results", 0, fmt.Sprintf("ask for at most `N` %s per page (1-%d)", what, maxPageSize))
	f.StringVar(&p.nextToken, "next-token", "", "start at this page `token` from an earlier answer")
	f.BoolVar(&p.all, "all", false, "follow NextToken and print every page as one answer")
}

func (p *pageFlags) check(cmd *cobra.Command) error {
	if cmd.Flags().Changed("max-results") && (p.maxResults < 1 || p.maxResults > maxPageSize) {
		return secretUsageError(cmd, "--max-results: want 1 to %d, got %d", maxPageSize, p.maxResults)
	}
	return nil
}

// collect calls a paged operation once (from --next-token, if given), or with
// --all until the pages end. fetch returns the page's NextToken.
func (p *pageFlags) collect(fetch func(token *string) (next *string, err error)) error {
	var token *string
	if p.nextToken != "" {
		token = &p.nextToken
	}
	for {
		next, err := fetch(token)
		if err != nil {
			return err
		}
		if !p.all || next == nil || *next == "" {
			return nil
		}
		if token != nil && *token == *next {
			return fmt.Errorf("the server returned NextToken %q twice", *next)
		}
		token = next
	}
}

// collectPages is collect for an operation whose pages merge into one
// answer: merge appends a later page to the first, next reads a page's
// NextToken.
func collectPages[O any](p *pageFlags, fetch func(token *string) (*O, error), next func(*O) *string, merge func(all, page *O)) (*O, error) {
	var all *O
	err := p.collect(func(token *string) (*string, error) {
		page, err := fetch(token)
		if err != nil {
			return nil, err
		}
		if all == nil {
			all = page
		} else {
			merge(all, page)
		}
		return next(page), nil
	})
	return all, err
}

func (s *secretCLI) newListCmd() *cobra.Command {
	var (
		pages           pageFlags
		filters         []string
		includeDeleted  bool
		sortBy, sortOrd string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List secrets",
		Long: `List secrets.

--filter KEY=VALUE narrows the list; KEY is one of name, description, tag-key,
tag-value, primary-region, owning-service or all. Values of the same key
accumulate (a secret matches any of them); different keys must all match.
A value starting with ! negates it.`,
		Args: secretArgs(0, false),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := s.check(cmd); err != nil {
				return err
			}
			if err := pages.check(cmd); err != nil {
				return err
			}
			fs, err := parseFilters(filters)
			if err != nil {
				return secretUsageError(cmd, "--filter: %v", err)
			}
			if sortBy != "" && !slices.Contains(sortByValues, types.SortByType(sortBy)) {
				return secretUsageError(cmd, "--sort-by: want one of %s, got %q", joinEnum(sortByValues), sortBy)
			}
			if sortOrd != "" && sortOrd != string(types.SortOrderTypeAsc) && sortOrd != string(types.SortOrderTypeDesc) {
				return secretUsageError(cmd, "--sort-order: want asc or desc, got %q", sortOrd)
			}
			c, err := s.open(cmd)
			if err != nil {
				return err
			}
			in := &secretsmanager.ListSecretsInput{
				Filters:                fs,
				IncludePlannedDeletion: changed(cmd, "include-planned-deletion", includeDeleted),
				SortBy:                 types.SortByType(sortBy),
				SortOrder:              types.SortOrderType(sortOrd),
				MaxResults:             changed(cmd, "max-results", pages.maxResults),
			}
			all, err := collectPages(&pages,
				func(token *string) (*secretsmanager.ListSecretsOutput, error) {
					in.NextToken = token
					return callAPI(cmd.Context(), c, c.client.ListSecrets, in)
				},
				func(o *secretsmanager.ListSecretsOutput) *string { return o.NextToken },
				func(all, page *secretsmanager.ListSecretsOutput) {
					all.SecretList = append(all.SecretList, page.SecretList...)
					all.NextToken = page.NextToken
				})
			if err != nil {
				return err
			}
			return s.print(all, func(w io.Writer) error {
				if err := writeSecretTable(w, all.SecretList); err != nil {
					return err
				}
				s.noteMore(all.NextToken)
				return nil
			})
		},
	}
	pages.register(cmd, "secrets")
	f := cmd.Flags()
	f.StringArrayVar(&filters, "filter", nil, "list only secrets matching `KEY=VALUE` (repeatable)")
	f.BoolVar(&includeDeleted, "include-planned-deletion", false, "include secrets scheduled for deletion")
	f.StringVar(&sortBy, "sort-by", "", "sort by `field`: name, created-date, last-accessed-date or last-changed-date")
	f.StringVar(&sortOrd, "sort-order", "", "sort `order`: asc or desc")
	return cmd
}

// noteMore tells a person reading text output that there are more pages.
func (s *secretCLI) noteMore(next *string) {
	if next != nil && *next != "" {
		fmt.Fprintf(s.e.stderr, "rotor: more results: use --all, or --next-token %s\n", *next)
	}
}

func (s *secretCLI) newVersionsCmd() *cobra.Command {
	var (
		pages             pageFlags
		includeDeprecated bool
	)
	cmd := &cobra.Command{
		Use:   "versions ID",
		Short: "List a secret's versions and their staging labels",
		Args:  secretArgs(1, false, "ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := s.check(cmd); err != nil {
				return err
			}
			if err := pages.check(cmd); err != nil {
				return err
			}
			c, err := s.open(cmd)
			if err != nil {
				return err
			}
			in := &secretsmanager.ListSecretVersionIdsInput{
				SecretId:          &a[0],
				IncludeDeprecated: changed(cmd, "include-deprecated", includeDeprecated),
				MaxResults:        changed(cmd, "max-results", pages.maxResults),
			}
			all, err := collectPages(&pages,
				func(token *string) (*secretsmanager.ListSecretVersionIdsOutput, error) {
					in.NextToken = token
					return callAPI(cmd.Context(), c, c.client.ListSecretVersionIds, in)
				},
				func(o *secretsmanager.ListSecretVersionIdsOutput) *string { return o.NextToken },
				func(all, page *secretsmanager.ListSecretVersionIdsOutput) {
					all.Versions = append(all.Versions, page.Versions...)
					all.NextToken = page.NextToken
				})
			if err != nil {
				return err
			}
			return s.print(all, func(w io.Writer) error {
				if err := writeVersionTable(w, all.Versions); err != nil {
					return err
				}
				s.noteMore(all.NextToken)
				return nil
			})
		},
	}
	pages.register(cmd, "versions")
	cmd.Flags().BoolVar(&includeDeprecated, "include-deprecated", false, "include versions without a staging label")
	return cmd
}

// The service's bounds on RecoveryWindowInDays.
const (
	minRecoveryDays = 7
	maxRecoveryDays = 30
)

func (s *secretCLI) newDeleteCmd() *cobra.Command {
	var (
		days  int64
		force bool
	)
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Schedule a secret for deletion, or delete it at once with --force",
		Args:  secretArgs(1, false, "ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := s.check(cmd); err != nil {
				return err
			}
			daysSet := cmd.Flags().Changed("recovery-window-days")
			if daysSet && force {
				return secretUsageError(cmd, "give --recovery-window-days or --force, not both")
			}
			if daysSet && (days < minRecoveryDays || days > maxRecoveryDays) {
				return secretUsageError(cmd, "--recovery-window-days: want %d to %d, got %d", minRecoveryDays, maxRecoveryDays, days)
			}
			c, err := s.open(cmd)
			if err != nil {
				return err
			}
			out, err := callAPI(cmd.Context(), c, c.client.DeleteSecret, &secretsmanager.DeleteSecretInput{
				SecretId:                   &a[0],
				RecoveryWindowInDays:       changed(cmd, "recovery-window-days", days),
				ForceDeleteWithoutRecovery: changed(cmd, "force", force),
			})
			if err != nil {
				return err
			}
			return s.print(out, func(w io.Writer) error {
				name := printable(aws.ToString(out.Name))
				if force {
					_, err := fmt.Fprintf(w, "deleted %s\n", name)
					return err
				}
				_, err := fmt.Fprintf(w, "%s will be deleted at %s; `rotor secret restore %s` cancels that\n", name, textTime(out.DeletionDate), name)
				return err
			})
		},
	}
	cmd.Flags().Int64Var(&days, "recovery-window-days", 0, fmt.Sprintf("days (%d-%d) during which the secret can be restored (default 30)", minRecoveryDays, maxRecoveryDays))
	cmd.Flags().BoolVar(&force, "force", false, "delete at once, without a recovery window")
	return cmd
}

func (s *secretCLI) newRestoreCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "restore ID",
		Short: "Cancel a secret's scheduled deletion",
		Args:  secretArgs(1, false, "ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := s.check(cmd); err != nil {
				return err
			}
			c, err := s.open(cmd)
			if err != nil {
				return err
			}
			out, err := callAPI(cmd.Context(), c, c.client.RestoreSecret, &secretsmanager.RestoreSecretInput{SecretId: &a[0]})
			if err != nil {
				return err
			}
			return s.print(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "restored %s\n", printable(aws.ToString(out.Name)))
				return err
			})
		},
	}
}

func (s *secretCLI) newTagCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "tag ID KEY=VALUE...",
		Short: "Add or replace tags on a secret",
		Args:  secretArgs(2, true, "ID", "KEY=VALUE"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := s.check(cmd); err != nil {
				return err
			}
			tags, err := parseTags(a[1:])
			if err != nil {
				return secretUsageError(cmd, "%v", err)
			}
			c, err := s.open(cmd)
			if err != nil {
				return err
			}
			out, err := callAPI(cmd.Context(), c, c.client.TagResource, &secretsmanager.TagResourceInput{SecretId: &a[0], Tags: tags})
			if err != nil {
				return err
			}
			return s.print(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "tagged %s\n", printable(a[0]))
				return err
			})
		},
	}
}

func (s *secretCLI) newUntagCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "untag ID KEY...",
		Short: "Remove tags from a secret",
		Args:  secretArgs(2, true, "ID", "KEY"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := s.check(cmd); err != nil {
				return err
			}
			for _, k := range a[1:] {
				if k == "" {
					return secretUsageError(cmd, "empty tag key")
				}
			}
			c, err := s.open(cmd)
			if err != nil {
				return err
			}
			out, err := callAPI(cmd.Context(), c, c.client.UntagResource, &secretsmanager.UntagResourceInput{SecretId: &a[0], TagKeys: a[1:]})
			if err != nil {
				return err
			}
			return s.print(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "untagged %s\n", printable(a[0]))
				return err
			})
		},
	}
}

func (s *secretCLI) newRandomPasswordCmd() *cobra.Command {
	var (
		length                                      int64
		exclude                                     string
		noNumbers, noPunct, noUpper, noLower, space bool
		eachType                                    bool
	)
	cmd := &cobra.Command{
		Use:   "random-password",
		Short: "Generate a random password on the server",
		Args:  secretArgs(0, false),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := s.check(cmd); err != nil {
				return err
			}
			if cmd.Flags().Changed("length") && length < 1 {
				return secretUsageError(cmd, "--length: want a positive number, got %d", length)
			}
			c, err := s.open(cmd)
			if err != nil {
				return err
			}
			out, err := callAPI(cmd.Context(), c, c.client.GetRandomPassword, &secretsmanager.GetRandomPasswordInput{
				PasswordLength:          changed(cmd, "length", length),
				ExcludeCharacters:       changed(cmd, "exclude-characters", exclude),
				ExcludeNumbers:          changed(cmd, "exclude-numbers", noNumbers),
				ExcludePunctuation:      changed(cmd, "exclude-punctuation", noPunct),
				ExcludeUppercase:        changed(cmd, "exclude-uppercase", noUpper),
				ExcludeLowercase:        changed(cmd, "exclude-lowercase", noLower),
				IncludeSpace:            changed(cmd, "include-space", space),
				RequireEachIncludedType: changed(cmd, "require-each-included-type", eachType),
			})
			if err != nil {
				return err
			}
			return s.print(out, func(w io.Writer) error {
				return writeRaw(w, []byte(aws.ToString(out.RandomPassword)))
			})
		},
	}
	f := cmd.Flags()
	f.Int64Var(&length, "length", 32, "password length in characters")
	f.StringVar(&exclude, "exclude-characters", "", "never use these `characters`")
	f.BoolVar(&noNumbers, "exclude-numbers", false, "use no digits")
	f.BoolVar(&noPunct, "exclude-punctuation", false, "use no punctuation")
	f.BoolVar(&noUpper, "exclude-uppercase", false, "use no uppercase letters")
	f.BoolVar(&noLower, "exclude-lowercase", false, "use no lowercase letters")
	f.BoolVar(&space, "include-space", false, "allow the space character")
	f.BoolVar(&eachType, "require-each-included-type", true, "use at least one character of every included type")
	return cmd
}

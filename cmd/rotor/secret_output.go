package main

// Output of `rotor secret …`: the API response as JSON (the default, for
// programs) or short text (for people).

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

const (
	outputJSON = "json"
	outputText = "text"
)

// writeAPIJSON writes an SDK output struct the way the API sends it: AWS
// member names (in the SDK struct's order), absent members left out,
// timestamps in RFC 3339, blobs in base64, and no ResultMetadata.
func writeAPIJSON(w io.Writer, v any) error {
	var compact bytes.Buffer
	if err := encodeAPIValue(&compact, reflect.ValueOf(v)); err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

var (
	timeType  = reflect.TypeFor[time.Time]()
	bytesType = reflect.TypeFor[[]byte]()
)

func encodeAPIValue(buf *bytes.Buffer, v reflect.Value) error {
	switch {
	case !v.IsValid():
		buf.WriteString("null")
		return nil
	case v.Type() == timeType:
		return encodeJSONScalar(buf, v.Interface().(time.Time).Format(time.RFC3339Nano))
	case v.Type() == bytesType:
		return encodeJSONScalar(buf, v.Bytes())
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			buf.WriteString("null")
			return nil
		}
		return encodeAPIValue(buf, v.Elem())
	case reflect.Struct:
		buf.WriteByte('{')
		first := true
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || f.Name == "ResultMetadata" || absent(v.Field(i)) {
				continue
			}
			if !first {
				buf.WriteByte(',')
			}
			first = false
			if err := encodeJSONScalar(buf, f.Name); err != nil {
				return err
			}
			buf.WriteByte(':')
			if err := encodeAPIValue(buf, v.Field(i)); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	case reflect.Slice, reflect.Array:
		buf.WriteByte('[')
		for i := range v.Len() {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := encodeAPIValue(buf, v.Index(i)); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
		return nil
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.String(), b.String()) })
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := encodeJSONScalar(buf, k.String()); err != nil {
				return err
			}
			buf.WriteByte(':')
			if err := encodeAPIValue(buf, v.MapIndex(k)); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
		return nil
	}
	return encodeJSONScalar(buf, v.Interface())
}

// absent reports whether a member was not in the response: the SDK leaves
// optional members nil, and enums as "".
func absent(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
		return v.IsNil()
	case reflect.String:
		return v.Len() == 0
	}
	return false
}

// encodeJSONScalar writes v as JSON without escaping <, > and &, which only
// matters inside HTML.
func encodeJSONScalar(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1) // Encode's newline
	return nil
}

// writeRaw writes a value for a pipe or a file exactly as stored, and adds a
// newline only for a terminal, where the prompt would otherwise follow it on
// the same line.
func writeRaw(w io.Writer, b []byte) error {
	if _, err := w.Write(b); err != nil {
		return err
	}
	if isTerminal(w) && !bytes.HasSuffix(b, []byte("\n")) {
		_, err := io.WriteString(w, "\n")
		return err
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// textTime formats a timestamp for people: RFC 3339 to the second.
func textTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// printable makes a server-supplied string safe to print in a line or a table
// cell: control characters, which could move the cursor or break the table,
// become spaces.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}

func writeSecretTable(w io.Writer, secrets []types.SecretListEntry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLAST CHANGED\tDESCRIPTION")
	for _, s := range secrets {
		changed := s.LastChangedDate
		if changed == nil {
			changed = s.CreatedDate
		}
		desc := printable(aws.ToString(s.Description))
		if s.DeletedDate != nil {
			desc = strings.TrimSpace("(deleted " + textTime(s.DeletedDate) + ") " + desc)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", printable(aws.ToString(s.Name)), textTime(changed), desc)
	}
	return tw.Flush()
}

func writeVersionTable(w io.Writer, versions []types.SecretVersionsListEntry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION ID\tSTAGES\tCREATED\tLAST ACCESSED")
	for _, v := range versions {
		stages := "-"
		if len(v.VersionStages) > 0 {
			stages = printable(strings.Join(v.VersionStages, ","))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", printable(aws.ToString(v.VersionId)), stages, textTime(v.CreatedDate), textTime(v.LastAccessedDate))
	}
	return tw.Flush()
}

// writeDescription writes DescribeSecret's answer as aligned "Member: value"
// lines, leaving out absent members.
func writeDescription(w io.Writer, d *secretsmanager.DescribeSecretOutput) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	line := func(key, value string) {
		if value != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", key, printable(value))
		}
	}
	date := func(key string, t *time.Time) {
		if t != nil {
			line(key, textTime(t))
		}
	}
	line("Name", aws.ToString(d.Name))
	line("ARN", aws.ToString(d.ARN))
	line("Description", aws.ToString(d.Description))
	line("KmsKeyId", aws.ToString(d.KmsKeyId))
	line("Type", aws.ToString(d.Type))
	if d.RotationEnabled != nil {
		line("RotationEnabled", fmt.Sprint(*d.RotationEnabled))
	}
	line("RotationLambdaARN", aws.ToString(d.RotationLambdaARN))
	if r := d.RotationRules; r != nil {
		schedule := aws.ToString(r.ScheduleExpression)
		if schedule == "" && r.AutomaticallyAfterDays != nil {
			schedule = fmt.Sprintf("every %d days", *r.AutomaticallyAfterDays)
		}
		if r.Duration != nil {
			schedule += ", window " + *r.Duration
		}
		line("RotationRules", schedule)
	}
	date("LastRotatedDate", d.LastRotatedDate)
	date("NextRotationDate", d.NextRotationDate)
	date("LastChangedDate", d.LastChangedDate)
	date("LastAccessedDate", d.LastAccessedDate)
	date("CreatedDate", d.CreatedDate)
	date("DeletedDate", d.DeletedDate)
	line("PrimaryRegion", aws.ToString(d.PrimaryRegion))
	line("OwningService", aws.ToString(d.OwningService))
	if len(d.Tags) > 0 {
		tags := make([]string, len(d.Tags))
		for i, t := range d.Tags {
			tags[i] = aws.ToString(t.Key) + "=" + aws.ToString(t.Value)
		}
		slices.Sort(tags)
		line("Tags", strings.Join(tags, ", "))
	}
	ids := make([]string, 0, len(d.VersionIdsToStages))
	for id := range d.VersionIdsToStages {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		return cmp.Or(cmp.Compare(stageRank(d.VersionIdsToStages[a]), stageRank(d.VersionIdsToStages[b])), cmp.Compare(a, b))
	})
	for _, id := range ids {
		line("Version", id+" "+strings.Join(d.VersionIdsToStages[id], ","))
	}
	return tw.Flush()
}

// stageRank orders versions as people look for them: current, pending,
// previous, then the rest.
func stageRank(stages []string) int {
	for i, s := range []string{"AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"} {
		if slices.Contains(stages, s) {
			return i
		}
	}
	return 3
}

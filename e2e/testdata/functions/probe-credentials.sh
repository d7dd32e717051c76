#!/usr/bin/env bash
# probe-credentials.sh OUT_DIR OTHER_SECRET ROTOR_BIN: an exec rotation
# function that, at createSecret, tries what its temporary credentials may
# and may not do, writes the outcomes to OUT_DIR/results (one line each:
# NAME ok, or NAME failed ERROR_CODE) and the credentials themselves to
# OUT_DIR/credentials, and fails. Its standard error (also copied to
# OUT_DIR/stderr.log) prints the secret's password and the secret access
# key, which Rotor must redact from the failure's message, first and last,
# with the denied calls' errors in between, as a script's output would be.
#
# Needs bash, aws (the AWS CLI) and python3.
set -uo pipefail
umask 077
out=$1 other=$2 rotor=$3

event=$(cat)
eval "$(printf '%s' "$event" | python3 -c '
import json, shlex, sys
e = json.load(sys.stdin)
for k, v in (("step", "Step"), ("arn", "SecretId"), ("token", "ClientRequestToken")):
    print(k + "=" + shlex.quote(str(e.get(v, ""))))
')"
: >"$out/stderr.log"
say() { printf '%s\n' "$*" | tee -a "$out/stderr.log" >&2; }
if [ "$step" != createSecret ]; then
	say "probe: unexpected step $step"
	exit 1
fi

printf '%s\n%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$out/credentials.tmp"
mv "$out/credentials.tmp" "$out/credentials"

password=$(aws secretsmanager get-secret-value --secret-id "$arn" --query SecretString --output text |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["password"])')
say "probe: read the secret; its password is $password (must be redacted)"
say "probe: my secret access key is $AWS_SECRET_ACCESS_KEY (must be redacted)"

: >"$out/results.tmp"
# try NAME COMMAND…: runs COMMAND and records its outcome; the AWS CLI names
# the error code in parentheses, rotor after "error: ". A failure's first
# error line (200 characters of it) goes to standard error.
try() {
	local name=$1 errf code
	shift
	errf=$(mktemp)
	if "$@" >/dev/null 2>"$errf"; then
		echo "$name ok" >>"$out/results.tmp"
	else
		code=$(grep -oE '\([A-Za-z]+(Exception|Error)\)|error: [A-Za-z]+Exception' "$errf" | head -n1 | tr -d '()' | sed 's/^error: //')
		echo "$name failed ${code:-unknown}" >>"$out/results.tmp"
		say "probe: $name: $(grep -m1 -i error "$errf" | cut -c1-200)"
	fi
	rm -f "$errf"
}
sm() { aws secretsmanager "$@" --output json; }

try own-describe sm describe-secret --secret-id "$arn"
try own-get sm get-secret-value --secret-id "$arn"
try own-versions sm list-secret-version-ids --secret-id "$arn"
try random-password sm get-random-password
try other-get sm get-secret-value --secret-id "$other"
try other-describe sm describe-secret --secret-id "$other"
try other-put sm put-secret-value --secret-id "$other" --secret-string stolen
try list-secrets sm list-secrets
try create-secret sm create-secret --name "probe-created-$token" --secret-string x
try own-delete sm delete-secret --secret-id "$arn" --force-delete-without-recovery
try own-policy sm put-resource-policy --secret-id "$arn" --resource-policy '{"Version":"2012-10-17","Statement":[]}'
try rotor-register-function "$rotor" function register probe-escalated --webhook http://127.0.0.1:1/x
try rotor-list-functions "$rotor" function list
mv "$out/results.tmp" "$out/results"

say "probe: once more, the password is $password (must be redacted)"
say "probe: and my secret access key is $AWS_SECRET_ACCESS_KEY (must be redacted)"
say "probe: failing on purpose"
exit 1

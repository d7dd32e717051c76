#!/usr/bin/env bash
# pg-single-user.sh: a single-user PostgreSQL rotation function for Rotor's
# exec runtime, modelled on AWS's SecretsManagerRDSPostgreSQLRotationSingleUser
# Lambda template. Rotor runs it once per step with the Lambda event on stdin
# ({"Step", "SecretId", "ClientRequestToken"}) and the endpoint, region and
# temporary credentials in the environment, which the AWS CLI picks up.
# Every step is idempotent: the engine repeats a step that failed.
#
# Arguments (optional): STATE_DIR STEP… — after doing the work of each STEP
# named, fail once (exit 1), remembering it in STATE_DIR, so that the engine's
# retry runs that step a second time. Tests use it to check idempotency.
#
# Needs bash, aws (the AWS CLI), python3 (for JSON) and psql.
set -euo pipefail
umask 077

state_dir=${1:-}
fail_once=" ${*:2} "

event=$(cat)
log() { printf '%s: %s\n' "${AWS_LAMBDA_FUNCTION_NAME:-pg-single-user}" "$*" >&2; }
die() { log "$@"; exit 1; }

# The event's fields, shell-quoted by python.
eval "$(printf '%s' "$event" | python3 -c '
import json, shlex, sys
e = json.load(sys.stdin)
for k, v in (("step", "Step"), ("arn", "SecretId"), ("token", "ClientRequestToken")):
    print(k + "=" + shlex.quote(str(e.get(v, ""))))
')"
[ -n "$step" ] && [ -n "$arn" ] && [ -n "$token" ] || die "bad event: $event"

sm() { aws secretsmanager "$@" --output json; }

# secret_string ARGS…: the SecretString of get-secret-value ARGS…; fails
# (status 3) when the version has no value (ResourceNotFoundException).
secret_string() {
	local out err
	err=$(mktemp)
	if ! out=$(aws secretsmanager get-secret-value --secret-id "$arn" "$@" --query SecretString --output text 2>"$err"); then
		if grep -q ResourceNotFoundException "$err"; then
			rm -f "$err"
			return 3
		fi
		cat "$err" >&2
		rm -f "$err"
		return 1
	fi
	rm -f "$err"
	printf '%s' "$out"
}

# load PREFIX JSON: sets PREFIX_host, _port, _username, _password, _dbname
# from the secret JSON (no pipe: the variables must land in this shell).
load() {
	eval "$(printf '%s' "$2" | python3 -c '
import json, shlex, sys
p = sys.argv[1]
d = json.load(sys.stdin)
for k in ("host", "port", "username", "password", "dbname"):
    print(p + "_" + k + "=" + shlex.quote(str(d.get(k, ""))))
' "$1")"
}

# login PREFIX [SQL]: logs in with PREFIX's credentials and runs SQL
# (default SELECT 1) from stdin; prints psql's output.
login() {
	local p=$1 sql=${2:-SELECT 1}
	local host=${p}_host port=${p}_port user=${p}_username pw=${p}_password db=${p}_dbname
	printf '%s\n' "$sql" | PGPASSWORD=${!pw} PGCONNECT_TIMEOUT=10 PGSSLMODE=disable \
		psql -X -w -q -t -A -v ON_ERROR_STOP=1 -h "${!host}" -p "${!port}" -U "${!user}" -d "${!db:-postgres}" "${@:3}"
}

maybe_fail() {
	[ -n "$state_dir" ] || return 0
	case $fail_once in *" $step "*) ;; *) return 0 ;; esac
	[ -e "$state_dir/$step.failed" ] && return 0
	: >"$state_dir/$step.failed"
	die "injected failure after the work of $step (token $token)"
}

# As the template: rotation must be enabled, the token a version of the
# secret, already AWSCURRENT (nothing to do) or AWSPENDING.
describe=$(sm describe-secret --secret-id "$arn")
eval "$(printf '%s' "$describe" | python3 -c '
import json, shlex, sys
d = json.load(sys.stdin)
token = sys.argv[1]
stages = d.get("VersionIdsToStages", {})
cur = [v for v, s in stages.items() if "AWSCURRENT" in s]
print("enabled=" + shlex.quote(str(d.get("RotationEnabled", False)).lower()))
print("known=" + shlex.quote(str(token in stages).lower()))
print("token_stages=" + shlex.quote(" ".join(stages.get(token, []))))
print("current_version=" + shlex.quote(cur[0] if cur else ""))
' "$token")"
[ "$enabled" = true ] || die "secret $arn is not enabled for rotation"
[ "$known" = true ] || die "secret version $token has no stage for rotation of secret $arn"
case " $token_stages " in
*" AWSCURRENT "*)
	log "secret version $token already set as AWSCURRENT for secret $arn"
	exit 0
	;;
*" AWSPENDING "*) ;;
*) die "secret version $token not set as AWSPENDING for rotation of secret $arn" ;;
esac

case $step in
createSecret)
	st=0
	secret_string --version-id "$token" --version-stage AWSPENDING >/dev/null || st=$?
	case $st in
	0) log "createSecret: AWSPENDING already has a value for $token" ;;
	3)
		current=$(secret_string --version-stage AWSCURRENT)
		pw=$(aws secretsmanager get-random-password --exclude-characters '/@"'"'"'\' --password-length 32 \
			--query RandomPassword --output text)
		file=$HOME/pending.json
		CURRENT=$current NEWPW=$pw python3 -c '
import json, os, sys
d = json.loads(os.environ["CURRENT"])
d["password"] = os.environ["NEWPW"]
sys.stdout.write(json.dumps(d))
' >"$file"
		sm put-secret-value --secret-id "$arn" --client-request-token "$token" \
			--secret-string "file://$file" --version-stages AWSPENDING >/dev/null
		rm -f "$file"
		log "createSecret: put a new AWSPENDING value for $token"
		;;
	*) exit 1 ;;
	esac
	;;
setSecret)
	pending=$(secret_string --version-id "$token" --version-stage AWSPENDING)
	load pending "$pending"
	if login pending >/dev/null 2>&1; then
		log "setSecret: AWSPENDING already logs in"
	else
		current=$(secret_string --version-stage AWSCURRENT)
		load current "$current"
		if ! login current >/dev/null 2>&1; then
			st=0
			prev=$(secret_string --version-stage AWSPREVIOUS) || st=$?
			[ "$st" = 0 ] || die "setSecret: unable to log in with AWSCURRENT, and there is no AWSPREVIOUS"
			load current "$prev"
			login current >/dev/null || die "setSecret: unable to log in with AWSCURRENT or AWSPREVIOUS"
		fi
		[ "$current_username" = "$pending_username" ] || die "setSecret: AWSPENDING's user $pending_username is not AWSCURRENT's $current_username"
		[ "$current_host" = "$pending_host" ] || die "setSecret: AWSPENDING's host is not AWSCURRENT's"
		# psql quotes the variables (:"…" an identifier, :'…' a literal).
		login current 'ALTER ROLE :"user" PASSWORD :'"'"'pw'"'" \
			-v user="$pending_username" -v pw="$pending_password" >/dev/null
		log "setSecret: changed the password of $pending_username"
	fi
	;;
testSecret)
	pending=$(secret_string --version-id "$token" --version-stage AWSPENDING)
	load pending "$pending"
	one=$(login pending) || die "testSecret: AWSPENDING does not log in"
	[ "$one" = 1 ] || die "testSecret: SELECT 1 returned $one"
	log "testSecret: AWSPENDING logs in"
	;;
finishSecret)
	[ -n "$current_version" ] || die "finishSecret: no version is AWSCURRENT"
	sm update-secret-version-stage --secret-id "$arn" --version-stage AWSCURRENT \
		--move-to-version-id "$token" --remove-from-version-id "$current_version" >/dev/null
	log "finishSecret: moved AWSCURRENT from $current_version to $token"
	;;
*) die "invalid step $step" ;;
esac
maybe_fail

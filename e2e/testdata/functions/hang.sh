#!/usr/bin/env bash
# hang.sh OUT_DIR: an exec rotation function that never finishes. It starts
# a background child, writes the child's pid to OUT_DIR/child.pid and its
# own to OUT_DIR/script.pid, then sleeps; Rotor must kill both (the whole
# process group) at the function's timeout.
set -u
out=$1
cat >/dev/null
sleep 300 &
child=$!
echo "$child" >"$out/child.pid.tmp" && mv "$out/child.pid.tmp" "$out/child.pid"
echo "$$" >"$out/script.pid.tmp" && mv "$out/script.pid.tmp" "$out/script.pid"
echo "hang: started child $child, sleeping" >&2
sleep 300
echo "hang: woke up (must not happen)" >&2

#!/bin/sh
# noop.sh: an exec rotation function that does nothing (for registration
# tests).
cat >/dev/null
exit 0

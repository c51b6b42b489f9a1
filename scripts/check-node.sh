#!/usr/bin/env bash
# The k6 scripts are checked with node (k6 itself cannot be installed
# here); install node from Debian when it is missing and we are root.
set -euo pipefail
command -v node >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ]; then
	echo "node not found: installing Debian's nodejs" >&2
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >&2
else
	echo "node not found: install Debian's nodejs package to check the k6 scripts" >&2
	exit 1
fi

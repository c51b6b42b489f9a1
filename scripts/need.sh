#!/usr/bin/env bash
# Installs the programs the tests drive that are missing, from Debian's
# packages, in one apt-get run (as root; otherwise says what to install).
#
#   scripts/need.sh COMMAND=PACKAGE ...     e.g. kcat=kcat node=nodejs
#   scripts/need.sh /PATH=PACKAGE ...        a file the package installs
#
# PostgreSQL is installed by scripts/postgres.sh, which `make run` uses too.
set -euo pipefail
missing=()
for pair in "$@"; do
	what=${pair%%=*}
	if [ "${what#/}" != "$what" ]; then
		[ -e "$what" ] || missing+=("${pair#*=}")
	else
		command -v "$what" >/dev/null 2>&1 || missing+=("${pair#*=}")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing programs: install Debian's ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
	exit 1
fi
echo "installing Debian's ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2

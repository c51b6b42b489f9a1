#!/usr/bin/env bash
# Private PostgreSQL cluster for `make run` and `make test`.
#
#   scripts/postgres.sh start   install if missing, init .run/pg, start on
#                               127.0.0.1:55432, create the database; prints
#                               the DATABASE_URL (idempotent)
#   scripts/postgres.sh stop    stop the private cluster
#   scripts/postgres.sh url     print the DATABASE_URL
#
# When DATABASE_URL is set, nothing is installed or started: that server is
# used as it is.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
port=${PGPORT_PRIVATE:-55432}
db=${PGDATABASE_PRIVATE:-ratestream}
# PGRUN_PRIVATE: another directory for a second cluster (the fault tests
# restart one of their own).
run=${PGRUN_PRIVATE:-$root/.run}
user=ratestream
data="$run/pg"
logdir="$run/logs"

say() { echo "postgres: $*" >&2; }

url() {
	if [ -n "${DATABASE_URL:-}" ]; then
		echo "$DATABASE_URL"
	else
		echo "postgres://$user@127.0.0.1:$port/$db?sslmode=disable"
	fi
}

find_bin() {
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

install_pg() {
	if [ "$(id -u)" != 0 ]; then
		say "PostgreSQL server binaries not found; install Debian's 'postgresql' package (sudo apt-get install postgresql) or set DATABASE_URL"
		exit 1
	fi
	say "installing Debian's postgresql package"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq postgresql >&2
}

# as_owner runs a command as the cluster's owner: ourselves, or the
# 'postgres' system user when we are root (initdb refuses to run as root).
as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# owner_can_use DIR: can the owner create and traverse DIR's parents?
owner_can_use() {
	[ "$(id -u)" != 0 ] && return 0
	runuser -u postgres -- test -x "$1" 2>/dev/null
}

# port_in_use: does anything accept connections on 127.0.0.1:$port?
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

# refuse_held_port explains who holds our port, and how to free it.
refuse_held_port() {
	local p cmd holder="" dir=""
	for p in /proc/[0-9]*; do
		cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
		case "$cmd" in
		*postgres*"-p $port "*)
			holder=${p#/proc/}
			dir=$(echo "$cmd" | sed -n 's/.*-D \([^ ]*\).*/\1/p')
			break
			;;
		esac
	done
	if [ -n "$holder" ]; then
		say "port $port is already in use by another PostgreSQL (pid $holder, data directory ${dir:-unknown}),"
		say "most likely the private cluster of another checkout. Stop it with"
		say "  scripts/postgres.sh stop     (in that checkout), or"
		say "  runuser -u postgres -- $(dirname "$(echo "$cmd" | cut -d' ' -f1)")/pg_ctl -D ${dir:-DIR} stop"
	else
		say "port $port is already in use by another program (see: ss -ltnp 'sport = :$port')."
	fi
	say "Or run this checkout's cluster on another port: PGPORT_PRIVATE=<port> make run, or use a server of your own: DATABASE_URL=... make run"
	exit 1
}

start() {
	if [ -n "${DATABASE_URL:-}" ]; then
		url
		return 0
	fi
	local bin
	bin=$(find_bin) || { install_pg; bin=$(find_bin) || { say "no PostgreSQL after install"; exit 1; }; }
	if [ -f "$data/PG_VERSION" ] && (cd / && as_owner "$bin/pg_ctl" -D "$(readlink -f "$data")" status) >/dev/null 2>&1; then
		# Already running: use the port it runs on.
		port=$(sed -n 4p "$(readlink -f "$data")/postmaster.pid" 2>/dev/null || echo "$port")
	elif port_in_use; then
		refuse_held_port
	fi
	mkdir -p "$run" "$logdir"
	if [ ! -e "$data" ]; then
		local base="$run"
		if ! owner_can_use "$run"; then
			# The checkout sits where the postgres user cannot reach it
			# (e.g. under /root): keep the cluster and its log where it
			# can, and link them into .run.
			base="/var/tmp/ratestream-pg-$(echo "$run" | md5sum | cut -c1-12)"
			mkdir -p "$base"
			ln -sfn "$base/pg" "$data"
			ln -sfn "$base/postgres.log" "$logdir/postgres.log"
		fi
		mkdir -p "$base/pg"
		[ "$(id -u)" = 0 ] && chown postgres:postgres "$base/pg"
		chmod 700 "$base/pg"
	fi
	local real log
	real=$(readlink -f "$data")
	log=$(readlink -f "$logdir/postgres.log")
	if [ ! -f "$real/PG_VERSION" ]; then
		say "initialising cluster in $data"
		(cd / && as_owner "$bin/initdb" -D "$real" -U "$user" --auth=trust --encoding=UTF8 --locale=C.UTF-8) >"$logdir/postgres-initdb.log" 2>&1 ||
			{ cat "$logdir/postgres-initdb.log" >&2; exit 1; }
	fi
	if ! (cd / && as_owner "$bin/pg_ctl" -D "$real" status) >/dev/null 2>&1; then
		say "starting on 127.0.0.1:$port"
		touch "$log"
		[ "$(id -u)" = 0 ] && chown postgres "$log"
		(cd / && as_owner "$bin/pg_ctl" -D "$real" -l "$log" -w -t 60 \
			-o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=300 -c shared_buffers=256MB" \
			start) >/dev/null || { tail -n 20 "$log" >&2; exit 1; }
	fi
	if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U "$user" -d postgres -tAc "select 1 from pg_database where datname='$db'" | grep -q 1; then
		"$bin/createdb" -h 127.0.0.1 -p "$port" -U "$user" "$db"
	fi
	url
}

stop() {
	[ -n "${DATABASE_URL:-}" ] && return 0
	local bin
	bin=$(find_bin) || return 0
	[ -f "$data/PG_VERSION" ] || return 0
	(cd / && as_owner "$bin/pg_ctl" -D "$(readlink -f "$data")" -m fast stop) >/dev/null 2>&1 || true
}

case "${1:-}" in
start) start ;;
stop) stop ;;
url) url ;;
*) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac

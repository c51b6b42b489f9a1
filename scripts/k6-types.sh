#!/usr/bin/env bash
# Installs what checks the k6 scripts' types (TypeScript and k6's published
# definitions, pinned in simulation/k6/package-lock.json) into
# simulation/k6/node_modules, once: make test runs it.
set -euo pipefail
dir=$(cd "$(dirname "$0")/../simulation/k6" && pwd)
stamp=$dir/node_modules/.package-lock.json
if [ -f "$stamp" ] && [ "$stamp" -nt "$dir/package-lock.json" ]; then
	exit 0
fi
echo "installing the k6 type definitions and TypeScript (npm ci in simulation/k6)" >&2
npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2

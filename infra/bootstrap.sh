#!/usr/bin/env bash
# Makes the checkout runnable: installs the locked npm dependencies when they are missing or stale, and
# compiles the TypeScript (incrementally). Run by `npm start` and `npm test` before anything else.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log() { printf '[ms2m] %s\n' "$*" >&2; }

need=$(node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.stdout.write(a>20||(a===20&&b>=19)?"":"x")')
[ -z "$need" ] || { log "ERROR: Node.js >= 20.19 is required (found $(node -v)); install a newer Node.js"; exit 1; }

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies (the versions in package-lock.json)…"
  # Not `npm ci`: registries that lack other platforms' optional binaries (@swc/core-darwin-*, …) leave
  # them out of the lockfile, which `npm ci` rejects; `npm install` installs the same locked versions.
  npm install --no-audit --no-fund --loglevel=error >&2
fi
log "compiling TypeScript…"
node_modules/.bin/tsc -p tsconfig.json

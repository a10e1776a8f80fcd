#!/usr/bin/env bash
# `npm run bench:peers` (from the repository root): spoolq beside BullMQ (Redis) and plainjob (SQLite), in one run.
#   1. installs benchmarks/peers' own packages when they are missing or older than its lockfile (the library's
#      install stays lean: BullMQ, ioredis, better-sqlite3 and plainjob live only here, as optionalDependencies,
#      so one that fails to install, e.g. better-sqlite3 without a compiler, is skipped by the run, not fatal);
#   2. builds the library (npm run build → dist/), then this package (tsc → benchmarks/peers/dist/);
#   3. runs dist/run.js, which starts and stops its own redis-server(s) (needs `redis-server` on PATH:
#      `sudo apt-get install -y redis-server`; without it BullMQ is skipped with a line saying so).
# Every step has a time limit. Options for run.js go through the environment (see benchmarks/README.md, Peers).
set -uo pipefail
PEERS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$PEERS/../.." && pwd)"
say() { echo "bench:peers: $*"; }

stale=0
for pkg in typescript @types/node bullmq ioredis better-sqlite3 plainjob; do
  [ -d "$PEERS/node_modules/$pkg" ] || stale=1
done
[ "$PEERS/package-lock.json" -nt "$PEERS/node_modules/.package-lock.json" ] && stale=1
if [ "$stale" = 1 ]; then
  say "installing benchmarks/peers' packages (npm install --prefix benchmarks/peers; compiling better-sqlite3 can take 2 minutes)"
  timeout -k 10 900 npm install --prefix "$PEERS" --no-audit --no-fund \
    || say "npm install failed (exit $?); queues whose packages are missing will be reported and skipped"
fi

say "building the library (npm run build)"
(cd "$ROOT" && timeout -k 10 600 npm run build --silent)
rc=$?
if [ ! -f "$ROOT/dist/lib/index.js" ]; then say "the library build failed (exit $rc) and left no dist/lib/index.js"; exit 1; fi
[ "$rc" = 0 ] || say "WARNING: the library build reported errors (exit $rc); measuring what it emitted"

TSC="$PEERS/node_modules/.bin/tsc"
[ -x "$TSC" ] || TSC="$ROOT/node_modules/.bin/tsc"
say "building benchmarks/peers ($TSC)"
timeout -k 10 300 "$TSC" -p "$PEERS/tsconfig.json"
rc=$?
if [ ! -f "$PEERS/dist/run.js" ] || [ ! -f "$PEERS/dist/child.js" ]; then say "benchmarks/peers did not build (exit $rc)"; exit 1; fi
[ "$rc" = 0 ] || say "WARNING: benchmarks/peers compiled with type errors (exit $rc), probably a missing peer package; running anyway"

# 30 minutes at most for the whole run (about 8 when nothing else is running); SIGTERM first, so run.js stops its
# children and redis-servers, then SIGKILL 15 s later.
cd "$PEERS" && exec timeout -k 15 1800 node dist/run.js

#!/usr/bin/env bash
# Every check and every test, unit and integration, against the real services that
# tools/setup.sh (or .ci/run) started. Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
step() { printf '\n==> %s\n' "$1"; shift; "$@" || { echo "FAILED: $*"; status=1; }; }

step "type check" npx tsc --noEmit -p .
step "lint (boundaries, cycles)" npx eslint .
step "formatting (npm run format)" npx prettier --check --log-level warn '**/*.{ts,js}'
step "generated config sample and docs are current" node --import tsx tools/gen-docs.ts --check

printf '\n==> tests (unit and integration)\n'
out=$(mktemp)
BERTH_FROM_SOURCE=1 npx mocha --no-colors --timeout 120000 'test/unit/**/*.test.ts' 'test/it/**/*.it.ts' 2>&1 | tee "$out"
mocha_status=${PIPESTATUS[0]}
passed=$(grep -Eo '^ +[0-9]+ passing' "$out" | grep -Eo '[0-9]+' | tail -1)
failed=$(grep -Eo '^ +[0-9]+ failing' "$out" | grep -Eo '[0-9]+' | tail -1)
rm -f "$out"
[ "$mocha_status" = 0 ] || status=1
[ -n "$passed" ] && [ "$passed" -gt 0 ] || { echo "no tests ran"; status=1; }
echo
echo "${passed:-0} passed, ${failed:-0} failed"
exit $status

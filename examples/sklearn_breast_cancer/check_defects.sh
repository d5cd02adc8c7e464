#!/usr/bin/env bash
# Prove the gates catch what they claim: run this example's gate suite once per seeded
# defect (EXAMPLE_DEFECT, see screening/data.py DEFECTS) and require that
#   - pytest exits 1 (tests failed),
#   - the gates that failed (from the JSON report) are exactly the expected ones,
#   - the log carries each expected gate's explanation line "[mlgates] <gate>: FAIL".
# Before that the suite must pass without --mlgates (gate tests skipped) and with it
# (JSON report valid, markdown summary written, also to $GITHUB_STEP_SUMMARY).
#
# Usage: ./check_defects.sh [defect ...]   (default: all defects)
set -euo pipefail
cd "$(dirname "$0")"
# This script owns these: a caller's defect, step summary or virtualenv must not leak in.
unset EXAMPLE_DEFECT GITHUB_STEP_SUMMARY VIRTUAL_ENV

declare -A EXPECTED=(
  [split]="time_split"
  [leak]="point_in_time target_leak"
  [worse]="no_worse"
  [drift]="psi_drift"
  [skew]="feature_parity"
  [stale]="freshness"
)
ORDER=(split leak worse drift skew stale)
if [[ $# -gt 0 ]]; then ORDER=("$@"); fi
for defect in "${ORDER[@]}"; do
  if [[ -z "${EXPECTED[$defect]:-}" ]]; then
    echo "unknown defect '$defect'; known: ${!EXPECTED[*]}" >&2
    exit 2
  fi
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Gates that did not pass in a report, sorted and space-separated.
failed_gates() {
  uv run --quiet python - "$1" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1], encoding="utf-8"))
bad = sorted({r["name"] for r in doc["results"] if r["verdict"] in ("fail", "inconclusive")})
print(" ".join(bad))
PY
}

problems=0

echo "== gates off"
if ! uv run pytest -q >"$tmp/off.log" 2>&1 || ! grep -q "re-run with --mlgates" "$tmp/off.log"; then
  cat "$tmp/off.log"
  echo "FAIL: without --mlgates the suite must pass with the gate tests skipped" >&2
  exit 1
fi
echo "   $(tail -n 1 "$tmp/off.log")"

echo "== clean run"
if ! GITHUB_STEP_SUMMARY="$tmp/step_summary.md" uv run pytest --mlgates \
  --mlgates-report="$tmp/clean.json" --mlgates-markdown="$tmp/clean.md" -q >"$tmp/clean.log" 2>&1; then
  cat "$tmp/clean.log"
  echo "FAIL: the clean suite must pass" >&2
  exit 1
fi
uv run --quiet --with jsonschema python -m mlgates.report --validate "$tmp/clean.json"  # needs mlgates[schema]
for md in "$tmp/clean.md" "$tmp/step_summary.md"; do
  if ! grep -q "| PASS | no_worse |" "$md" || ! grep -q "ML Test Score" "$md"; then
    cat "$md"
    echo "FAIL: markdown summary $md lacks the gate table or the ML Test Score" >&2
    exit 1
  fi
done
echo "   passed; JSON report valid, markdown summary written"
echo "   $(grep -E '^[0-9]+ gate results' "$tmp/clean.log")"

for defect in "${ORDER[@]}"; do
  expected="${EXPECTED[$defect]}"
  echo "== EXAMPLE_DEFECT=$defect (expect: $expected)"
  log="$tmp/$defect.log"
  report="$tmp/$defect.json"
  set +e
  EXAMPLE_DEFECT="$defect" uv run pytest --mlgates --mlgates-report="$report" -q >"$log" 2>&1
  rc=$?
  set -e
  if [[ $rc -ne 1 ]]; then
    cat "$log"
    echo "FAIL: $defect: pytest exited $rc, expected 1 (tests failed)" >&2
    problems=$((problems + 1))
    continue
  fi
  got="$(failed_gates "$report")"
  if [[ "$got" != "$expected" ]]; then
    cat "$log"
    echo "FAIL: $defect: failing gates '$got', expected '$expected'" >&2
    problems=$((problems + 1))
    continue
  fi
  for gate in $expected; do
    line="$(grep -m1 -E "^\[mlgates\] $gate: FAIL" "$log" || true)"
    if [[ -z "$line" ]]; then
      cat "$log"
      echo "FAIL: $defect: no '[mlgates] $gate: FAIL' explanation in the output" >&2
      problems=$((problems + 1))
      continue 2
    fi
    echo "   $line"
  done
done

if [[ $problems -gt 0 ]]; then
  echo "$problems defect run(s) did not fail as expected" >&2
  exit 1
fi
echo "all ${#ORDER[@]} seeded defects caught by the expected gates"

#!/usr/bin/env bash
# The security stage of `make test` (make security): one summary line per check, quiet
# otherwise; the first failing check prints its output and stops the stage (exit 1).
#   lock          requirements.lock matches the installed nomosx[dev] (scripts/lock.py)
#   pip-audit     known vulnerabilities in requirements.lock; reviewed ignores: .pip-audit-ignore
#   detect-secrets  secrets in the tracked files that the reviewed .secrets.baseline lacks
#   ruff S        the flake8-bandit rules on src/ and scripts/ (selection and ignores: pyproject)
#   build         wheel and sdist (python -m build), the wheel's packaged data files, then the
#                 wheel installed with its locked dependencies into a fresh venv and run offline
# NOMOSX_AUDIT_REQUIRED=1 makes an unreachable vulnerability service a failure (the GitHub
# workflow sets it; this machine's network reaches neither OSV nor PyPI's per-release API).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${VENV:-.venv}/bin
PY=$BIN/python
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STAGE_START=$SECONDS

fail() {  # fail MESSAGE [LOG]: print the log (if any) and the message, then stop
  [ -n "${2:-}" ] && [ -s "$2" ] && cat "$2" >&2
  echo "security: FAILED: $1" >&2
  exit 1
}

# -- lock -------------------------------------------------------------------------------
t=$SECONDS
$PY scripts/lock.py --check 2>"$WORK/lock.log" || fail "lock check" "$WORK/lock.log"
locked=$(grep -c '^[^#]' requirements.lock)
echo "lock: requirements.lock matches the environment, $locked packages ($((SECONDS - t))s)"

# -- pip-audit --------------------------------------------------------------------------
t=$SECONDS
ignores=()
[ -f .pip-audit-ignore ] || fail ".pip-audit-ignore is missing"
while read -r id _; do
  ignores+=(--ignore-vuln "$id")
done < <(grep -v -e '^\s*#' -e '^\s*$' .pip-audit-ignore)
# every pin is exact, so no resolution (--disable-pip --no-deps); its hash advice goes to the log
status=0
$BIN/pip-audit -r requirements.lock --disable-pip --no-deps --progress-spinner off \
  --format json --output "$WORK/audit.json" "${ignores[@]}" 2>"$WORK/audit.log" || status=$?
[ -s "$WORK/audit.json" ] || fail "pip-audit did not run (exit $status)" "$WORK/audit.log"
$PY - "$WORK/audit.json" "$((${#ignores[@]} / 2))" "$((SECONDS - t))" "$status" <<'EOF' || exit 1
import json, os, sys

report = json.load(open(sys.argv[1]))
ignored, seconds, status = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
deps = report["dependencies"]
skipped = [d for d in deps if "skip_reason" in d]
vulnerable = [d for d in deps if d.get("vulns")]
found = sum(len(d["vulns"]) for d in vulnerable)
for dep in vulnerable:
    for vuln in dep["vulns"]:
        fixes = ", ".join(vuln.get("fix_versions") or []) or "none"
        print(f"  {dep['name']} {dep['version']}: {vuln['id']} (fixed in: {fixes})", file=sys.stderr)
audited = len(deps) - len(skipped)
print(
    f"pip-audit: {len(deps)} packages, {audited} audited, {found} vulnerabilities, "
    f"{ignored} ignored ({seconds}s)"
)
if found or (status and not skipped):
    print("security: FAILED: pip-audit found known vulnerabilities: upgrade (then `make lock`)"
          " or list the advisory with a reason in .pip-audit-ignore", file=sys.stderr)
    sys.exit(1)
if skipped and not audited:
    reason = skipped[0]["skip_reason"]
    message = ("pip-audit: WARNING: no package could be audited, the vulnerability service "
               f"knows none of them (first: {reason})")
    if os.environ.get("NOMOSX_AUDIT_REQUIRED") == "1":
        print(f"security: FAILED: {message}", file=sys.stderr)
        sys.exit(1)
    print(message + "; NOMOSX_AUDIT_REQUIRED=1 makes this a failure")
elif skipped:
    print("pip-audit: not audited: " + ", ".join(f"{d['name']} {d['version']}" for d in skipped))
EOF

# -- detect-secrets ---------------------------------------------------------------------
t=$SECONDS
# the hook rewrites line numbers in the baseline it is given: give it a copy
cp .secrets.baseline "$WORK/secrets.baseline"
# the tracked files and the new ones not ignored (still on disk: a deletion may be unstaged)
git ls-files -z --cached --others --exclude-standard >"$WORK/listed" \
  || fail "git ls-files: the secret scan needs a git work tree"
# (the baseline itself holds the hashes: the hook skips it only when given the file itself)
while IFS= read -r -d '' f; do
  [ -f "$f" ] && [ "$f" != .secrets.baseline ] && printf '%s\0' "$f"
done <"$WORK/listed" >"$WORK/files"
scanned=$(tr -cd '\0' <"$WORK/files" | wc -c)
if ! xargs -0 "$BIN/detect-secrets-hook" --baseline "$WORK/secrets.baseline" \
  <"$WORK/files" >"$WORK/secrets.log" 2>&1; then
  # exit 3 alone: the copy's line numbers were refreshed, nothing new was found
  if grep -q 'Potential secrets' "$WORK/secrets.log" || ! grep -q 'baseline file was updated' \
    "$WORK/secrets.log"; then
    fail "detect-secrets found secrets that .secrets.baseline lacks: remove them or, if they
are fake, run \`make secrets-baseline\` and mark them false positives in its audit" \
      "$WORK/secrets.log"
  fi
fi
reviewed=$($PY -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]
print(sum(len(v) for v in r.values()))' .secrets.baseline)
echo "detect-secrets: $scanned files, 0 new secrets, $reviewed reviewed false positives in" \
  ".secrets.baseline ($((SECONDS - t))s)"

# -- ruff S -----------------------------------------------------------------------------
t=$SECONDS
# pyproject.toml's selection, so its reviewed ignores hold (a bare --select S would drop them)
rules=$($BIN/ruff check --show-settings src/nomosx/__init__.py \
  | sed -n '/^linter.rules.enabled/,/^\]/p' | grep -cE '\(S[0-9]+\)' || true)
[ "$rules" -gt 0 ] || fail "ruff's security rules (S) are not selected in pyproject.toml"
$BIN/ruff check --output-format concise src scripts >"$WORK/ruff.log" 2>&1 \
  || fail "ruff check src scripts (security rules S among the others)" "$WORK/ruff.log"
noqa=$( (grep -rhoE 'noqa: *S[0-9]+' src scripts || true) | wc -l)
echo "ruff S: $rules rules on src/ and scripts/, 0 findings, $noqa noqa exemptions" \
  "(S101 assert, S311 random off; tests/, bench/ exempt) ($((SECONDS - t))s)"

# -- build and install test -------------------------------------------------------------
t=$SECONDS
$PY -m build --outdir "$WORK/dist" . >"$WORK/build.log" 2>&1 || fail "python -m build" "$WORK/build.log"
wheel=$(ls "$WORK"/dist/*.whl)
sdist=$(ls "$WORK"/dist/*.tar.gz)
# every file of the package (templates, static files, migrations, the bundled library...)
git ls-files --cached --others --exclude-standard src/nomosx >"$WORK/package-files"
packaged=$($PY - "$wheel" "$sdist" "$WORK/package-files" <<'EOF'
import sys, tarfile, zipfile

wheel = set(zipfile.ZipFile(sys.argv[1]).namelist())
sdist = {n.split("/", 1)[1] for n in tarfile.open(sys.argv[2]).getnames() if "/" in n}
files = open(sys.argv[3]).read().split()
missing = [f"{f} (wheel)" for f in files if f.removeprefix("src/") not in wheel]
missing += [f"{f} (sdist)" for f in files if f not in sdist]
if not files or missing:
    sys.exit("security: FAILED: the built packages lack " + ", ".join(missing or ["src/nomosx"]))
print(len(files))
EOF
) || exit 1
$PY -m venv "$WORK/venv"
# a real install: the wheel and every dependency at its locked version, from the index (torch's
# CPU build from pip's find-links, as in `make install`); no byte-compiling: a minute less
"$WORK/venv/bin/python" -m pip install --quiet --no-compile -c requirements.lock "$wheel" \
  >"$WORK/install.log" 2>&1 || fail "installing the built wheel in a fresh venv" "$WORK/install.log"
# run offline, without the caller's keys, service URLs or NOMOSX_* settings
# (OPENBLAS_* and the rest kept: some processors need those)
(
  cd "$WORK"
  settings='NOMOSX_|DATABASE_URL|REDIS_URL|QDRANT_URL|[A-Z]+_API_KEY|SENTRY_DSN'
  # shellcheck disable=SC2046  # names only, one word each
  unset $(env | sed -n -E "s/^(($settings)[A-Z0-9_]*)=.*/\\1/p")
  export HOME="$WORK" NOMOSX_DATA_DIR="$WORK/data"
  venv/bin/python -c 'import nomosx, sys; sys.exit(not nomosx.__file__.startswith(sys.prefix))' \
    || { echo "nomosx was not imported from the fresh venv" >&2; exit 1; }
  venv/bin/nomosx --version
  venv/bin/nomosx brief "Does vitamin D supplementation reduce the risk of fractures?" \
    --sources 3 --out brief.md
  grep -q '\[SRC-1\]' brief.md || { echo "the brief cites no source" >&2; exit 1; }
) >"$WORK/smoke.log" 2>&1 || fail "the installed wheel's smoke test (nomosx brief)" "$WORK/smoke.log"
echo "build: $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB) and $(basename "$sdist")" \
  "with all $packaged package files, installed in a fresh venv, offline brief written" \
  "($((SECONDS - t))s)"

echo "security: all checks passed ($((SECONDS - STAGE_START))s)"

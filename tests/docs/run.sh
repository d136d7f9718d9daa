#!/usr/bin/env bash
# The documentation's examples as tests: every ```sql block of README.md and docs/*.md runs
# against a fresh database of a private cluster (tests/docs/doctest.py says how blocks are
# marked). First the runner is checked on pages made to fail (tests/docs/selftest/): a runner
# that cannot fail proves nothing.
#
# Fixtures stand in for a reader's files: the work folder holds `my64.onnx` (the 64-bit test
# model tests/fixtures/encoder/tiny_image.onnx, not a trained one), `my64.icsm` (a trainer
# model file, tests/fixtures/trainer/) and a few test images;
# psql runs there, and /srv/ics/ in a block means that folder.
#
# Usage: tests/docs/run.sh [FILE.md...]   (default: README.md docs/*.md trainer/README.md trainer/docs/*.md)
#   ICS_DOCS_PORT (default 28837), ICS_DOCS_DEMO_PORT (28839, for the make stop-demo check);
#   ICS_DOCS_NO_INSTALL=1 when the extension is installed already.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/common.sh

PORT=${ICS_DOCS_PORT:-28837}
CLUSTER=${ICS_DOCS_CLUSTER:-docs}
WORK=$ICS_RUN_DIR/docs-work
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(README.md docs/*.md trainer/README.md trainer/docs/*.md)

step "no citation of files outside the repository"
# The repository must stand on its own: no design files of elsewhere, no tracker threads.
# (The patterns are bracketed so that this file does not match itself.)
cited=$( (git grep -nIE 'shared/[d]esign|\.\./[s]hared|\b(ICS|SQL)\.[m]d\b' -- .
    git grep -nIiE '\b[t]he issue' -- .) || true)
[ -z "$cited" ] || { printf '%s\n' "$cited"; die "files cite what is not in the repository (above)"; }
ok "none"

if [ -z "${ICS_DOCS_NO_INSTALL:-}" ]; then
    step "build and install the extension (release)"
    install_extension
fi

install -d -m 0755 "$ICS_RUN_DIR"
rm -rf "$WORK" && install -d -m 0755 "$WORK"
for f in cat.jpg cat.png cup.jpg tall.jpg; do cp "tests/fixtures/encoder/$f" "$WORK/"; done
cp tests/fixtures/encoder/tiny_image.onnx "$WORK/my64.onnx"
cp tests/fixtures/trainer/model-v3.icsm "$WORK/my64.icsm"
chmod -R a+rX "$WORK"

cluster_destroy "$CLUSTER"
cluster_start "$CLUSTER" "$PORT"
trap 'cluster_destroy "$CLUSTER"' EXIT
doctest() { python3 tests/docs/doctest.py --port "$PORT" --psql "$PG_BIN/psql" --workdir "$WORK" "$@"; }

step "doc-test runner self-test (pages that must fail, one that must pass)"
for page in failing_block wrong_output error_runs; do
    if doctest "tests/docs/selftest/$page.md" >"$WORK/selftest.log" 2>&1; then
        cat "$WORK/selftest.log"
        die "the doc-test runner passed tests/docs/selftest/$page.md, which must fail"
    fi
    grep -q '^not ok ' "$WORK/selftest.log" || die "no 'not ok' line for tests/docs/selftest/$page.md"
    ok "$page.md fails as it must"
done
doctest tests/docs/selftest/passing.md >"$WORK/selftest.log" 2>&1 ||
    { cat "$WORK/selftest.log"; die "the doc-test runner failed tests/docs/selftest/passing.md"; }
ok "passing.md passes"

step "make stop-demo stops the demo's cluster and keeps its data (the README's advice)"
demo=$CLUSTER-demo
cluster_destroy "$demo"
cluster_start "$demo" "${ICS_DOCS_DEMO_PORT:-28839}"
ICS_RUN_DIR=$ICS_RUN_DIR ICS_DEMO_CLUSTER=$demo make -s --no-print-directory stop-demo
if as_pg "$PG_BIN/pg_ctl" -D "$ICS_RUN_DIR/$demo/data" status >/dev/null 2>&1; then
    cluster_destroy "$demo"
    die "make stop-demo left the demo's cluster running"
fi
[ -f "$ICS_RUN_DIR/$demo/data/PG_VERSION" ] || die "make stop-demo removed the demo's data"
cluster_destroy "$demo"
echo "ok make stop-demo"

step "documentation examples: ${files[*]}"
doctest "${files[@]}"

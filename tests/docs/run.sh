#!/usr/bin/env bash
# The documentation's examples as tests: every ```sql block of README.md and docs/*.md runs
# against a fresh database of a private cluster (tests/docs/doctest.py says how blocks are
# marked). First the runner is checked on pages made to fail (tests/docs/selftest/): a runner
# that cannot fail proves nothing.
#
# Fixtures stand in for a reader's files: the work folder holds `my64.onnx` (the 64-bit test
# model tests/fixtures/encoder/tiny_image.onnx, not a trained one) and a few test images;
# psql runs there, and /srv/ics/ in a block means that folder.
#
# Usage: tests/docs/run.sh [FILE.md...]   (default: docs/*.md)
#   ICS_DOCS_PORT (default 28837); ICS_DOCS_NO_INSTALL=1 when the extension is installed already.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/common.sh

PORT=${ICS_DOCS_PORT:-28837}
CLUSTER=${ICS_DOCS_CLUSTER:-docs}
WORK=$ICS_RUN_DIR/docs-work
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(docs/*.md)

step "no citation of files outside the repository"
# The repository must stand on its own: no design files of elsewhere, no tracker threads.
cited=$(git grep -nIiE 'shared/design|\.\./shared|ICS\.md|SQL\.md|the issue' -- . ':!tests/docs/run.sh' ':!README.md' || true)
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

step "documentation examples: ${files[*]}"
doctest "${files[@]}"

#!/usr/bin/env bash
# Every test of ics_hash, in tiers (the README's test command runs this after setup):
#   1. style: rustfmt and clippy, warnings are errors;
#   2. pure unit tests of the pgrx-free crates (cargo test);
#   3. SQL regression tests (pg_regress, expected output) against a private cluster;
#      then the documentation's examples (tests/docs/);
#   4. cluster scenarios with real PostgreSQL processes (tests/cluster/scenarios.sh,
#      tests/cluster/sharding.sh);
#   5. the main job end to end on small data (scripts/demo.sh --small).
# Exits non-zero on the first failing tier; the last line is the tally.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

PORT=${ICS_TEST_PORT:-28815}
CLUSTER=test
passed=0
failed=0
tally() { printf '\nics_hash tests: %d passed, %d failed\n' "$passed" "$failed"; }
trap 'cluster_stop $CLUSTER; tally' EXIT

step "style: cargo fmt, cargo clippy"
cargo fmt --all --check
cargo clippy --quiet --workspace --all-targets -- -D warnings
ok "clean"

step "unit tests (pgrx-free crates)"
# Every SIMD kernel this CPU has must be tested: a path the CPU reports but the tests skip
# fails them (ICS_REQUIRE_SIMD, read by ics-codes' kernel tests).
simd=()
grep -qw popcnt /proc/cpuinfo && simd+=(popcnt)
grep -qw avx2 /proc/cpuinfo && simd+=(avx2)
grep -qw avx512f /proc/cpuinfo && grep -qw avx512_vpopcntdq /proc/cpuinfo && simd+=(avx512)
ICS_REQUIRE_SIMD=$(IFS=,; echo "${simd[*]}")
export ICS_REQUIRE_SIMD
info "SIMD kernels required by this CPU: ${ICS_REQUIRE_SIMD:-none}"
cargo test --quiet -p ics-codes -p ics-encoder -p ics-index -p ics-train -p ics-benches 2>&1 | tee target/unit-tests.log
# Which kernels the tests ran against the scalar reference (their own report).
cargo test --quiet -p ics-codes --lib every_path_matches_reference -- --nocapture 2>&1 |
    grep -E '^(kernels tested|skipping)' | sed 's/^/    /'
units=$(awk '/^test result: ok/ { n += $4 } END { print n + 0 }' target/unit-tests.log)
passed=$((passed + units))

step "build and install the extension (release)"
install_extension
ok "installed into $($PG_CONFIG --pkglibdir)"

step "SQL regression tests (pg_regress)"
cluster_destroy $CLUSTER
cluster_start $CLUSTER "$PORT"
out=target/regress
rm -rf "$out" && mkdir -p "$out"
# --use-existing leaves the database to us: a fresh one with the extension per run.
psql_at "$PORT" -d postgres -c "DROP DATABASE IF EXISTS ics_regress" -c "CREATE DATABASE ics_regress"
psql_at "$PORT" -d ics_regress -c "CREATE EXTENSION ics_hash"
# --- encoder fixtures (tests/fixtures/encoder): the server reads them as its own OS user, so
# they go to a world-readable folder; the tests find it through ICS_FIXTURES.
ICS_FIXTURES=$ICS_RUN_DIR/fixtures/encoder
rm -rf "$ICS_FIXTURES" && mkdir -p "$ICS_FIXTURES"
cp tests/fixtures/encoder/* "$ICS_FIXTURES"/ && chmod -R a+rX "$ICS_RUN_DIR/fixtures"
export ICS_FIXTURES
# --- end encoder fixtures
regress_tests=$(grep -E '^test:' tests/regress/schedule | sed 's/^test://' | wc -w)
if "$(dirname "$($PG_CONFIG --pgxs)")/../test/regress/pg_regress" \
    --use-existing --host=127.0.0.1 --port="$PORT" --user=postgres \
    --bindir="$PG_BIN" --inputdir=tests/regress --outputdir="$out" \
    --dbname=ics_regress \
    --schedule=tests/regress/schedule; then
    passed=$((passed + regress_tests))
else
    failed=$((failed + 1))
    [ -f "$out/regression.diffs" ] && head -n 300 "$out/regression.diffs"
    die "SQL regression tests failed: see $out/regression.diffs"
fi
cluster_stop $CLUSTER

# --- documentation examples (tests/docs): every SQL block of README.md and docs/ runs, and the
# README's own-images recipe runs as written (list files, train, export, load, index, query).
step "documentation examples (tests/docs/run.sh, tests/docs/own_images.sh)"
for t in run own_images; do
    if ICS_DOCS_NO_INSTALL=1 bash tests/docs/$t.sh >target/docs-$t.log 2>&1; then
        passed=$((passed + $(grep -cE '^ok ' target/docs-$t.log)))
        tail -n 1 target/docs-$t.log | sed 's/^/    /'
    else
        failed=$((failed + 1))
        tail -n 40 target/docs-$t.log
        die "tests/docs/$t.sh failed: see target/docs-$t.log"
    fi
done
# --- end documentation examples

step "cluster scenarios (replica, crash, concurrency, vacuum)"
bash tests/cluster/scenarios.sh | tee target/scenarios.log || true
passed=$((passed + $(grep -cE '^ok ' target/scenarios.log || true)))
if grep -qE '^not ok' target/scenarios.log || ! grep -q ', 0 failed$' target/scenarios.log; then
    failed=$((failed + $(grep -cE '^not ok' target/scenarios.log || true)))
    grep -E '^not ok' target/scenarios.log || tail -n 20 target/scenarios.log
    die "cluster scenarios failed: see target/scenarios.log"
fi

step "sharding scenario (three shards over postgres_fdw, models on a standby)"
bash tests/cluster/sharding.sh | tee target/sharding.log || true
passed=$((passed + $(grep -cE '^ok ' target/sharding.log || true)))
if grep -qE '^not ok' target/sharding.log || ! grep -q ', 0 failed$' target/sharding.log; then
    failed=$((failed + $(grep -cE '^not ok' target/sharding.log || true)))
    grep -E '^not ok' target/sharding.log || tail -n 20 target/sharding.log
    die "sharding scenario failed: see target/sharding.log"
fi

step "end to end: the main job on small data (scripts/demo.sh --small)"
# Compose, train, export, load, encode, index, query, and the check that mAP@1000 through SQL
# equals the trainer's (the demo fails when it does not).
if ICS_DEMO_FRESH=1 ICS_DEMO_PORT=28836 ICS_DEMO_CLUSTER=e2e bash scripts/demo.sh --small >target/e2e.log 2>&1; then
    passed=$((passed + 1))
    grep -E 'mAP@1000|equal the trainer' target/e2e.log | sed 's/^/    /'
    cluster_destroy e2e
else
    failed=$((failed + 1))
    tail -n 40 target/e2e.log
    cluster_destroy e2e
    die "the end-to-end test failed: see target/e2e.log"
fi

#!/usr/bin/env bash
# Every test of ics_hash, in tiers (the README's test command runs this after setup):
#   1. style: rustfmt and clippy, warnings are errors;
#   2. pure unit tests of the pgrx-free crates (cargo test);
#   3. on PostgreSQL 15 (the system's): SQL regression tests (pg_regress, expected output)
#      against a private cluster, the cluster scenarios (tests/cluster/scenarios.sh,
#      tests/cluster/sharding.sh) and the extension upgrade from 0.1.0
#      (tests/cluster/upgrade.sh extension); the documentation's examples (tests/docs/);
#   4. on PostgreSQL 16 and 18: the build with clippy for that major, the SQL regression tests,
#      the replica and crash scenarios for both index strategies, the extension upgrade;
#   5. pg_upgrade from 15 to 18, copy and link modes (tests/cluster/upgrade.sh pg_upgrade);
#   6. the main job end to end on small data (scripts/demo.sh --small).
# ICS_TEST_MAJORS (default "15 16 18") limits the majors. Exits non-zero on the first failing
# tier; the last line is the tally, then the count per major.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

PORT=${ICS_TEST_PORT:-28815}
read -r -a majors <<<"${ICS_TEST_MAJORS:-${PG_MAJORS[*]}}"
passed=0
failed=0
declare -A per_major=()
count() { # count MAJOR N: N more tests passed on MAJOR ("all" for tests of no one major)
    passed=$((passed + $2))
    per_major[$1]=$((${per_major[$1]:-0} + $2))
}
tally() {
    printf '\nics_hash tests: %d passed, %d failed\n' "$passed" "$failed"
    local m
    for m in all "${PG_MAJORS[@]}" 15-18; do
        [ -n "${per_major[$m]:-}" ] && printf '    %s: %d passed\n' "$([ "$m" = all ] && echo "not per major" || echo "PostgreSQL $m")" "${per_major[$m]}"
    done
    true
}
trap 'for m in "${majors[@]}"; do use_pg "$m"; cluster_stop "test$m"; done; tally' EXIT

step "style: cargo fmt, cargo clippy"
cargo fmt --all --check
cargo clippy --quiet --workspace --all-targets -- -D warnings
# The trainer's CUDA backend (burn 0.21): compiled without a GPU, not run.
cargo clippy --quiet -p ics-train --features cuda --all-targets -- -D warnings
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
count all "$units"

# A TAP log's passes and failures into the tally; fails the run when any check failed.
tap_tally() { # tap_tally MAJOR LOG WHAT
    count "$1" "$(grep -cE '^ok ' "$2" || true)"
    if grep -qE '^not ok' "$2" || ! grep -q ', 0 failed$' "$2"; then
        failed=$((failed + $(grep -cE '^not ok' "$2" || true)))
        grep -E '^not ok' "$2" || tail -n 20 "$2"
        die "$3 failed: see $2"
    fi
}

# regress MAJOR: the SQL regression tests against a private cluster of that major. A test
# that needs a contrib extension the major's server lacks is left out, and says so.
regress() {
    local major=$1 cluster=test$1
    cluster_destroy "$cluster"
    cluster_start "$cluster" "$PORT"
    local out=target/regress-pg$major
    rm -rf "$out" && mkdir -p "$out"
    # --use-existing leaves the database to us: a fresh one with the extension per run.
    psql_at "$PORT" -d postgres -c "DROP DATABASE IF EXISTS ics_regress" -c "CREATE DATABASE ics_regress"
    psql_at "$PORT" -d ics_regress -c "CREATE EXTENSION ics_hash"
    local schedule=$out/schedule t ext line kept
    while read -r line; do
        case $line in
        test:*)
            kept=()
            for t in ${line#test:}; do
                ext=$(sed -nE 's/^CREATE EXTENSION ([a-z_]+);.*/\1/p' "tests/regress/sql/$t.sql" | grep -v '^ics_hash$' | head -n 1 || true)
                if [ -n "$ext" ] && [ ! -f "$("$PG_CONFIG" --sharedir)/extension/$ext.control" ]; then
                    info "left out on PostgreSQL $major: $t (its server has no $ext)" >&2
                else
                    kept+=("$t")
                fi
            done
            [ ${#kept[@]} -eq 0 ] || echo "test: ${kept[*]}"
            ;;
        *) echo "$line" ;;
        esac
    done <tests/regress/schedule >"$schedule"
    local regress_tests
    regress_tests=$(grep -E '^test:' "$schedule" | sed 's/^test://' | wc -w)
    if "$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress" \
        --use-existing --host=127.0.0.1 --port="$PORT" --user=postgres \
        --bindir="$PG_BIN" --inputdir=tests/regress --outputdir="$out" \
        --dbname=ics_regress \
        --schedule="$schedule"; then
        count "$major" "$regress_tests"
    else
        failed=$((failed + 1))
        [ -f "$out/regression.diffs" ] && head -n 300 "$out/regression.diffs"
        die "SQL regression tests on PostgreSQL $major failed: see $out/regression.diffs"
    fi
    cluster_stop "$cluster"
}

# --- encoder fixtures (tests/fixtures/encoder): the server reads them as its own OS user, so
# they go to a world-readable folder; the tests find it through ICS_FIXTURES.
ICS_FIXTURES=$ICS_RUN_DIR/fixtures/encoder
mkdir -p "$ICS_RUN_DIR" && rm -rf "$ICS_FIXTURES" && mkdir -p "$ICS_FIXTURES"
cp tests/fixtures/encoder/* "$ICS_FIXTURES"/ && chmod -R a+rX "$ICS_RUN_DIR/fixtures"
chmod a+rx "$ICS_RUN_DIR"
export ICS_FIXTURES
# --- end encoder fixtures

for major in "${majors[@]}"; do
    use_pg "$major"
    step "PostgreSQL $major: build and install the extension (release)"
    install_extension
    ok "installed into $("$PG_CONFIG" --pkglibdir) ($("$PG_CONFIG" --version))"
    if [ "$major" != 15 ]; then
        # The default features are 15's; code behind another major's cfgs is linted here,
        # against the release build's dependencies.
        cargo clippy --quiet --release -p ics_hash --no-default-features --features "pg$major" -- -D warnings
        ok "clippy clean for pg$major"
    fi

    step "PostgreSQL $major: SQL regression tests (pg_regress)"
    regress "$major"

    # --- documentation examples (tests/docs), on 15: every SQL block of README.md and docs/
    # runs, and the README's own-images recipe runs as written (train, export, load, query).
    if [ "$major" = 15 ]; then
        step "PostgreSQL 15: documentation examples (tests/docs/run.sh, tests/docs/own_images.sh)"
        for t in run own_images; do
            if ICS_DOCS_NO_INSTALL=1 bash tests/docs/$t.sh >target/docs-$t.log 2>&1; then
                count 15 "$(grep -cE '^ok ' target/docs-$t.log)"
                tail -n 1 target/docs-$t.log | sed 's/^/    /'
            else
                failed=$((failed + 1))
                tail -n 40 target/docs-$t.log
                die "tests/docs/$t.sh failed: see target/docs-$t.log"
            fi
        done
    fi
    # --- end documentation examples

    if [ "$major" = 15 ]; then
        step "PostgreSQL 15: cluster scenarios (replica, crash, concurrency, vacuum, security)"
        bash tests/cluster/scenarios.sh | tee target/scenarios.log || true
        tap_tally 15 target/scenarios.log "cluster scenarios"

        step "PostgreSQL 15: sharding scenario (three shards over postgres_fdw, models on a standby)"
        bash tests/cluster/sharding.sh | tee target/sharding.log || true
        tap_tally 15 target/sharding.log "sharding scenario"
    else
        step "PostgreSQL $major: cluster scenarios (replica, crash; both strategies)"
        ICS_PG_MAJOR=$major bash tests/cluster/scenarios.sh replica crash | tee "target/scenarios-pg$major.log" || true
        tap_tally "$major" "target/scenarios-pg$major.log" "cluster scenarios on PostgreSQL $major"
    fi

    step "PostgreSQL $major: extension upgrade from 0.1.0 (ALTER EXTENSION ics_hash UPDATE)"
    ICS_PG_MAJOR=$major bash tests/cluster/upgrade.sh extension | tee "target/upgrade-pg$major.log" || true
    tap_tally "$major" "target/upgrade-pg$major.log" "extension upgrade on PostgreSQL $major"
done

if [[ " ${majors[*]} " == *" 15 "* && " ${majors[*]} " == *" 18 "* ]]; then
    step "pg_upgrade from PostgreSQL 15 to 18 (copy and link modes, a shard among the clusters)"
    bash tests/cluster/upgrade.sh pg_upgrade | tee target/pg_upgrade.log || true
    tap_tally 15-18 target/pg_upgrade.log "pg_upgrade scenario"
fi

use_pg 15
step "end to end: the main job on small data (scripts/demo.sh --small)"
# Compose, train, export, load, encode, index, query, and the check that mAP@1000 through SQL
# equals the trainer's (the demo fails when it does not).
if ICS_DEMO_FRESH=1 ICS_DEMO_PORT=${ICS_E2E_PORT:-28836} ICS_DEMO_CLUSTER=e2e bash scripts/demo.sh --small >target/e2e.log 2>&1; then
    count 15 1
    grep -E 'mAP@1000|equal the trainer' target/e2e.log | sed 's/^/    /'
    cluster_destroy e2e
else
    failed=$((failed + 1))
    tail -n 40 target/e2e.log
    cluster_destroy e2e
    die "the end-to-end test failed: see target/e2e.log"
fi

#!/usr/bin/env bash
# SQL benchmark of the mih index against sequential scans and between its two strategies,
# in one run.
#
# Data (reproducible: benches/bin/gen_codes.rs, `cargo run -p ics-benches --bin gen-codes`), N rows
# of each kind, 1,000 query codes of the same distribution (not in the table), 100,000 more
# rows for the bulk-insert measurement:
#   clustered64   40 centres, each bit flipped with p = 1/8 (well-trained single-label codes)
#   multilabel64  per-bit majority of 1-3 of 80 centres, each bit flipped with p = 0.1
#   uniform64, uniform128, uniform256   fair independent bits
# For each: the index as `strategy = auto` builds it (the chosen strategy is reported), and for
# the 64-bit kinds also the other strategy, forced; build time, size against the packed codes +
# TIDs, query latency over one connection with prepared statements (pgbench -M prepared,
# per-query log: median and p95) for k-NN k=10 and k=100 and two radii, the same queries by
# sequential scan, and INSERT ... SELECT of 100k rows with and without the index. The floor
# is measured in the same run: `simd-scan` (benches/scan.rs) scans the same codes in memory
# on one thread with the fastest kernel of this CPU, and every latency is also printed as a
# ratio to it (x1.0 = the speed of that scan; below 1 the index skips codes).
# Usage: benches/sql/mih.sh [rows] [queries per form]      (defaults 1000000, 300)
#        MIH_BENCH_KINDS="uniform64" benches/sql/mih.sh 10000000   (one kind, 10M rows)
# Knobs (environment): MIH_BENCH_KINDS; MIH_BENCH_RADII="0 2 4 8" (the radius columns; by
# default two per kind); MIH_BENCH_VARIANTS="auto" (of seqscan, auto, other; default all
# three); MIH_BENCH_INSERT=0 skips the INSERT/VACUUM measurement; MIH_BENCH_KEEP=1 keeps the
# tables. The 100M-row run of docs/benchmarks.md:
#   MIH_BENCH_KINDS="uniform64 multilabel64" MIH_BENCH_VARIANTS=auto MIH_BENCH_INSERT=0 \
#   MIH_BENCH_STATS=0 MIH_BENCH_RADII="0 2 4 8" benches/sql/mih.sh 100000000 200
# The build's progress (pg_stat_progress_create_index) is printed every 15 seconds, and the
# building backend's peak memory (VmHWM) is reported with its time.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/common.sh
source benches/sql/lib.sh

ROWS=${1:-1000000}
QUERIES=${2:-300}
SEQ_QUERIES=${SEQ_QUERIES:-10}
KINDS=${MIH_BENCH_KINDS:-clustered64 multilabel64 uniform64 uniform128 uniform256}
PORT=${ICS_BENCH_PORT:-28817}
out=$(pwd)/target/bench-sql
mkdir -p "$out"
report=$out/mih-$ROWS.md

step "building the code generator and the scan floor"
cargo build --release --quiet -p ics-benches --bin gen-codes --bin simd-scan
gen=${CARGO_TARGET_DIR:-$(pwd)/target}/release/gen-codes
floor_bin=${CARGO_TARGET_DIR:-$(pwd)/target}/release/simd-scan

cluster_start bench "$PORT" "max_parallel_workers_per_gather = 0" "maintenance_work_mem = 512MB" \
    "shared_buffers = 2GB" "max_wal_size = 8GB" "autovacuum = off"
psql_at "$PORT" -d postgres -c "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS mih_bench" -c "CREATE DATABASE mih_bench" >/dev/null
b() { psql_at "$PORT" -d mih_bench -tA "$@"; }
b -c "CREATE EXTENSION ics_hash" >/dev/null


{
    echo "# mih benchmark: $ROWS rows per kind"
    echo
    echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $("$floor_bin" uniform --bits 64 --rows 1 --queries 1 --k 1 --radius 0 | awk '/^kernel/ { print $2 }'), $(awk '/model name/ { $1=$2=$3=""; print; exit }' /proc/cpuinfo | sed 's/^ *//'); PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }'); one connection, prepared statements, no parallel workers, shared_buffers 2GB; latencies in ms (client round trip, median / p95). Sequential scans: $SEQ_QUERIES queries per form; index: $QUERIES. Size: the index against the packed codes + 6-byte TIDs. Build memory: the building backend's peak resident set (VmHWM; maintenance_work_mem = 512MB)."
    echo
} >"$report"

for kind in $KINDS; do
    bits=${kind//[a-z]/}
    dist=${kind//[0-9]/}
    nb=$((bits / 8))
    case $dist in
        clustered) genopts=(--centres 40 --flip 0.125) radii="2 8" ;;
        multilabel) genopts=(--centres 80 --flip 0.1) radii="2 8" ;;
        *) genopts=() radii="4 8" ;;
    esac
    radii=${MIH_BENCH_RADII:-$radii}
    forms="knn10 knn100"
    for r in $radii; do forms="$forms r$r"; done
    step "$kind: $ROWS rows"
    b >/dev/null <<SQL
DROP TABLE IF EXISTS $kind, q_$kind, new_$kind;
CREATE TABLE $kind (id int, code hashcode($bits));
CREATE TABLE q_$kind (qid int PRIMARY KEY, code hashcode($bits));
CREATE TABLE new_$kind (id int, code hashcode($bits));
SQL
    "$gen" "$dist" --bits "$bits" --rows "$ROWS" "${genopts[@]}" | b -c "\\copy $kind FROM stdin"
    "$gen" "$dist" --bits "$bits" --rows 1000 --first $((ROWS + 1)) "${genopts[@]}" |
        awk -v r="$ROWS" -F '\t' '{ print $1 - r "\t" $2 }' | b -c "\\copy q_$kind FROM stdin"
    "$gen" "$dist" --bits "$bits" --rows 100000 --first $((ROWS + 1001)) "${genopts[@]}" | b -c "\\copy new_$kind FROM stdin"
    b -c "VACUUM ANALYZE $kind" -c "VACUUM ANALYZE q_$kind" >/dev/null
    # The data's shape (a count of distinct codes and ten sequential k-NN scans: minutes at
    # 100M rows, so MIH_BENCH_STATS=0 leaves it out).
    shape="(shape not measured: MIH_BENCH_STATS=0)"
    if [ "${MIH_BENCH_STATS:-1}" = 1 ]; then
        distinct=$(b -c "SELECT count(DISTINCT code) FROM $kind")
        read -r d10 d100 < <(b -F ' ' <<SQL
SET enable_indexscan = off;
SELECT round(avg(d10), 1), round(avg(d100), 1) FROM (
  SELECT (SELECT max(d) FROM (SELECT code <~> q.code AS d FROM $kind ORDER BY code <~> q.code LIMIT 10) s) AS d10,
         (SELECT max(d) FROM (SELECT code <~> q.code AS d FROM $kind ORDER BY code <~> q.code LIMIT 100) s) AS d100
  FROM q_$kind q WHERE qid <= 10) x
SQL
        )
        shape="$distinct distinct codes of $ROWS. Mean distance of the 10th / 100th neighbour (10 queries): $d10 / $d100."
    fi
    {
        echo "## $kind"
        echo
        echo "$shape"
        echo
        header="| index | build s (peak memory) | size (x codes+TIDs) | k=10 median / p95 | k=100 median / p95 |"
        rule="|---|---|---|---|---|"
        for r in $radii; do
            header="$header r=$r median / p95 |"
            rule="$rule---|"
        done
        echo "$header"
        echo "$rule"
    } >>"$report"

    # The floor: the same codes (the generator's stream), scanned in memory.
    floor=$("$floor_bin" "$dist" --bits "$bits" --rows "$ROWS" "${genopts[@]}" --queries "$QUERIES" \
        --k 10,100 --radius "$(tr ' ' , <<<"$radii")")
    floor_of() { awk -v f="$1" '$1 == f { print $2, $3 }' <<<"$floor"; }
    declare -A floor_median=()
    row="| SIMD scan in memory (the floor) | | |"
    for form in $forms; do
        case $form in
            r*) key=radius${form#r} ;;
            *) key=$form ;;
        esac
        read -r m p < <(floor_of "$key")
        floor_median[$form]=$m
        row="$row $m / $p |"
    done
    echo "$row" >>"$report"
    info "floor: $(tr '\n' ' ' <<<"$floor")"

    # The sequential scan first (its row in the table), then each index variant.
    variants="seqscan auto"
    case $kind in clustered64 | multilabel64 | uniform64) variants="seqscan auto other" ;; esac
    variants=${MIH_BENCH_VARIANTS:-$variants}
    chosen=""
    for variant in $variants; do
        row=""
        opts=""
        n=$QUERIES
        if [ "$variant" = seqscan ]; then
            opts="-c enable_indexscan=off -c enable_bitmapscan=off"
            n=$SEQ_QUERIES
            row="| sequential scan | | |"
        else
            with=""
            if [ "$variant" = other ]; then
                other=substrings
                [ "$chosen" = substrings ] && other=lists
                with="WITH (strategy = $other)"
            fi
            b -c "DROP INDEX IF EXISTS ${kind}_mih" >/dev/null
            # The build in one session that then reads its own peak memory; its progress
            # from another, every 15 seconds.
            (
                sleep 15
                while true; do
                    p=$(b -c "SELECT phase || ': ' || tuples_done || ' of ' || tuples_total || ' tuples' FROM pg_stat_progress_create_index WHERE datname = 'mih_bench'" 2>/dev/null) || break
                    [ -n "$p" ] && info "building: $p"
                    sleep 15
                done
            ) &
            progress=$!
            t0=$(date +%s%N)
            hwm=$(b -v ON_ERROR_STOP=1 <<SQL | tail -n 1
SELECT pg_backend_pid() AS pid \gset
\setenv MIH_BUILD_PID :pid
CREATE INDEX ${kind}_mih ON $kind USING mih (code) $with;
\! awk '/VmHWM/ { printf "%.0f MB\\n", \$2 / 1024 }' /proc/\$MIH_BUILD_PID/status
SQL
            )
            build_ms=$(ms_since "$t0")
            kill "$progress" 2>/dev/null || true
            wait "$progress" 2>/dev/null || true
            size=$(b -c "SELECT pg_relation_size('${kind}_mih')")
            strategy=$(b -c "SELECT strategy FROM mih_verify('${kind}_mih', false)")
            [ "$variant" = auto ] && chosen=$strategy
            label="$strategy"
            [ "$variant" = auto ] && label="$strategy (auto)"
            ratio=$(awk -v s="$size" -v n="$ROWS" -v nb="$nb" 'BEGIN { printf "%.2f", s / (n * (nb + 6)) }')
            build_s=$(awk -v ms="$build_ms" 'BEGIN { printf "%.1f", ms / 1000 }')
            row="| mih: $label | $build_s ($hwm) | $((size / 1024 / 1024)) MB (${ratio}x) |"
            info "mih $label: built in $build_s s (peak $hwm), $((size / 1024 / 1024)) MB (${ratio}x)"
        fi
        for form in $forms; do
            file=$out/$kind-$form.sql
            r=${form#r}
            {
                echo '\set qi random(1, 1000)'
                case $form in
                    knn10) echo "SELECT id FROM $kind ORDER BY hamming(code, (SELECT code FROM q_$kind WHERE qid = :qi)) LIMIT 10;" ;;
                    knn100) echo "SELECT id FROM $kind ORDER BY hamming(code, (SELECT code FROM q_$kind WHERE qid = :qi)) LIMIT 100;" ;;
                    *) echo "SELECT id FROM $kind WHERE hamming_within(code, (SELECT code FROM q_$kind WHERE qid = :qi), $r);" ;;
                esac
            } >"$file"
            latency "$PORT" mih_bench "$file" 5 "$opts" >/dev/null # warm the cache
            read -r m p < <(latency "$PORT" mih_bench "$file" "$n" "$opts")
            x=$(awk -v m="$m" -v f="${floor_median[$form]}" 'BEGIN { r = m / f; printf (r < 0.1 ? "%.3f" : "%.1f"), r }')
            row="$row $m / $p (x$x) |"
            info "$variant $form: $m / $p ms (x$x the floor)"
        done
        echo "$row" >>"$report"
    done

    if [ "${MIH_BENCH_INSERT:-1}" = 0 ]; then
        echo >>"$report"
        [ "${MIH_BENCH_KEEP:-0}" = 1 ] || b -c "DROP TABLE $kind, q_$kind, new_$kind" >/dev/null
        continue
    fi
    step "$kind: INSERT ... SELECT of 100k rows, without and with the index ($chosen, as auto chose)"
    b -c "DROP INDEX IF EXISTS ${kind}_mih" -c "CREATE INDEX ${kind}_mih ON $kind USING mih (code)" \
        -c "CREATE TABLE ${kind}_plain AS SELECT * FROM $kind" -c "CHECKPOINT" >/dev/null
    t0=$(date +%s%N)
    b -c "INSERT INTO ${kind}_plain SELECT * FROM new_$kind" >/dev/null
    plain_ms=$(ms_since "$t0")
    b -c "CHECKPOINT" >/dev/null
    t0=$(date +%s%N)
    b -c "INSERT INTO $kind SELECT * FROM new_$kind" >/dev/null
    indexed_ms=$(ms_since "$t0")
    # What a query costs with those rows in the tail, and after VACUUM merges them.
    file=$out/$kind-knn10.sql
    read -r tail_m _ < <(latency "$PORT" mih_bench "$file" "$QUERIES")
    t0=$(date +%s%N)
    b -c "VACUUM $kind" >/dev/null
    vacuum_ms=$(ms_since "$t0")
    read -r merged_m _ < <(latency "$PORT" mih_bench "$file" "$QUERIES")
    ok "without index $plain_ms ms, with mih $indexed_ms ms"
    {
        echo
        echo "INSERT ... SELECT of 100,000 rows: $plain_ms ms without an index, $indexed_ms ms with the mih index ($chosen): $(awk -v p="$plain_ms" -v i="$indexed_ms" 'BEGIN { printf "%.0f%%", 100 * p / i }') of the rate without it. k=10 median right after: $tail_m ms; VACUUM $vacuum_ms ms; k=10 median after it: $merged_m ms. mih_verify ok = $(b -c "SELECT ok FROM mih_verify('${kind}_mih', false)")."
        echo
    } >>"$report"
    b -c "DROP TABLE ${kind}_plain" >/dev/null
    [ "${MIH_BENCH_KEEP:-0}" = 1 ] || b -c "DROP TABLE $kind, q_$kind, new_$kind" >/dev/null
done

step "report: $report"
cat "$report"
cluster_stop bench

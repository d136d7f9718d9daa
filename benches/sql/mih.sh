#!/usr/bin/env bash
# SQL benchmark of the mih index against a sequential scan, in one run.
#
# Data (reproducible, seeded): N hash-like 64-bit codes (40 centres, each bit flipped with
# probability 1/8: clusters with many exact duplicates, as learned codes look) and N uniform
# random codes; 1,000 query codes drawn from the same distributions (not in the table).
# Measured per data set: build time, index size (against the packed codes + TIDs, 14 bytes a
# row), query latency over one connection with prepared statements (pgbench -M prepared,
# per-query log: median and p95) for k-NN k=10 and k=100 and radius r=2 and r=8, the same
# queries by sequential scan, the distance of the 10th and 100th neighbour, and
# INSERT ... SELECT of 100k rows with and without the index.
# Usage: benches/sql/mih.sh [rows] [queries per form]      (defaults 1000000, 300)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/common.sh

ROWS=${1:-1000000}
QUERIES=${2:-300}
SEQ_QUERIES=${SEQ_QUERIES:-10}
PORT=${ICS_BENCH_PORT:-28817}
out=$(pwd)/target/bench-sql
mkdir -p "$out"
report=$out/mih.md

cluster_start bench "$PORT" "max_parallel_workers_per_gather = 0" "maintenance_work_mem = 512MB"
psql_at "$PORT" -d postgres -c "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS mih_bench" -c "CREATE DATABASE mih_bench" >/dev/null
b() { psql_at "$PORT" -d mih_bench -tA "$@"; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

step "data: $ROWS hash-like and $ROWS uniform 64-bit codes"
b >/dev/null <<SQL
CREATE EXTENSION ics_hash;
SELECT setseed(0.2024);
CREATE FUNCTION rand64() RETURNS bigint LANGUAGE sql VOLATILE
    RETURN ((random() * 4294967295)::bigint << 32) # (random() * 4294967295)::bigint;
CREATE TABLE centres AS SELECT g, rand64() AS c FROM generate_series(0, 39) g;
CREATE FUNCTION hashlike() RETURNS hashcode LANGUAGE sql VOLATILE
    RETURN ((ARRAY(SELECT c FROM centres ORDER BY g))[1 + floor(random() * 40)::int] # (rand64() & rand64() & rand64()))::hashcode;
CREATE TABLE hashlike (id int, code hashcode(64));
INSERT INTO hashlike SELECT i, hashlike() FROM generate_series(1, $ROWS) i;
CREATE TABLE uniform (id int, code hashcode(64));
INSERT INTO uniform SELECT i, rand64()::hashcode FROM generate_series(1, $ROWS) i;
CREATE TABLE q_hashlike (qid int PRIMARY KEY, code hashcode(64));
INSERT INTO q_hashlike SELECT i, hashlike() FROM generate_series(1, 1000) i;
CREATE TABLE q_uniform (qid int PRIMARY KEY, code hashcode(64));
INSERT INTO q_uniform SELECT i, rand64()::hashcode FROM generate_series(1, 1000) i;
-- 100k new rows per data set for the bulk-insert measurement.
CREATE TABLE new_hashlike AS SELECT $ROWS + i AS id, hashlike() AS code FROM generate_series(1, 100000) i;
CREATE TABLE new_uniform AS SELECT $ROWS + i AS id, rand64()::hashcode AS code FROM generate_series(1, 100000) i;
VACUUM ANALYZE;
SQL
ok "$(b -c "SELECT count(DISTINCT code) FROM hashlike") distinct hash-like codes of $ROWS"

# latency FILE COUNT [PGOPTIONS]: "median p95" in ms, from pgbench's per-query log.
latency() {
    local file=$1 count=$2 opts=${3:-}
    local dir
    dir=$(mktemp -d)
    (cd "$dir" && PGOPTIONS="$opts" "$PG_BIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -n \
        -M prepared -c 1 -t "$count" -l -f "$file" mih_bench >/dev/null 2>"$dir/err") ||
        die "pgbench failed: $(cat "$dir/err")"
    cat "$dir"/pgbench_log.* | awk '{ print $3 / 1000 }' | sort -n |
        awk '{ v[NR] = $1 } END { printf "%.3f %.3f\n", v[int((NR + 1) / 2)], v[int(NR * 0.95 + 0.999)] }'
    rm -rf "$dir"
}

{
    echo "# mih benchmark: $ROWS rows of 64-bit codes"
    echo
    echo "Machine: $(nproc) cores, $(awk '/model name/ { $1=$2=$3=""; print; exit }' /proc/cpuinfo | sed 's/^ *//'); PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }'); one connection, prepared statements, no parallel workers; latencies in ms (client round trip, median / p95). Sequential scans: $SEQ_QUERIES queries per form; index: $QUERIES."
    echo
} >"$report"

for data in hashlike uniform; do
    step "$data: build"
    t0=$(date +%s%N)
    b -c "CREATE INDEX ${data}_mih ON $data USING mih (code)" >/dev/null
    build_ms=$(ms_since "$t0")
    size=$(b -c "SELECT pg_relation_size('${data}_mih')")
    read -r lists nonempty radius < <(b -F ' ' -c "SELECT lists, nonempty_lists, max_radius FROM mih_verify('${data}_mih', false)")
    ok "built in $build_ms ms; $((size / 1024 / 1024)) MB; $lists lists ($nonempty non-empty), largest radius $radius"

    read -r d10 d100 < <(b -F ' ' <<SQL
SELECT round(avg(d10), 1), round(avg(d100), 1) FROM (
  SELECT (SELECT max(d) FROM (SELECT code <~> q.code AS d FROM $data ORDER BY code <~> q.code LIMIT 10) s) AS d10,
         (SELECT max(d) FROM (SELECT code <~> q.code AS d FROM $data ORDER BY code <~> q.code LIMIT 100) s) AS d100
  FROM q_$data q WHERE qid <= 50) x
SQL
    )
    declare -A rows_r=()
    for r in 2 8; do
        rows_r[$r]=$(b -c "SELECT round(avg((SELECT count(*) FROM $data WHERE hamming_within(code, q.code, $r))), 1) FROM q_$data q WHERE qid <= 50")
    done

    {
        echo "## $data"
        echo
        echo "Build: $build_ms ms. Index: $((size / 1024)) kB = $(awk -v s="$size" -v n="$ROWS" 'BEGIN { printf "%.2f", s / (n * 14) }')x the packed codes + TIDs ($(awk -v n="$ROWS" 'BEGIN { printf "%d", n * 14 / 1024 }') kB); $lists lists, $nonempty non-empty, largest covering radius $radius. Mean distance of the 10th / 100th neighbour: $d10 / $d100. Mean rows within r=2: ${rows_r[2]}, r=8: ${rows_r[8]}."
        echo
        echo "| query | mih median | mih p95 | seq scan median | seq scan p95 | speed-up (median) |"
        echo "|---|---|---|---|---|---|"
    } >>"$report"

    for form in knn10 knn100 r2 r8; do
        file=$out/$data-$form.sql
        {
            echo '\set qi random(1, 1000)'
            case $form in
                knn10) echo "SELECT id FROM $data ORDER BY hamming(code, (SELECT code FROM q_$data WHERE qid = :qi)) LIMIT 10;" ;;
                knn100) echo "SELECT id FROM $data ORDER BY hamming(code, (SELECT code FROM q_$data WHERE qid = :qi)) LIMIT 100;" ;;
                r2) echo "SELECT id FROM $data WHERE hamming_within(code, (SELECT code FROM q_$data WHERE qid = :qi), 2);" ;;
                r8) echo "SELECT id FROM $data WHERE hamming_within(code, (SELECT code FROM q_$data WHERE qid = :qi), 8);" ;;
            esac
        } >"$file"
        latency "$file" 20 >/dev/null # warm the cache
        read -r im ip < <(latency "$file" "$QUERIES")
        read -r sm sp < <(latency "$file" "$SEQ_QUERIES" "-c enable_indexscan=off -c enable_bitmapscan=off")
        speed=$(awk -v s="$sm" -v i="$im" 'BEGIN { printf "%.0fx", s / i }')
        info "$form: mih $im / $ip ms, seq scan $sm / $sp ms ($speed)"
        echo "| $form | $im | $ip | $sm | $sp | $speed |" >>"$report"
    done

    step "$data: INSERT ... SELECT of 100k rows, with and without the index"
    b -c "CREATE TABLE ${data}_plain AS SELECT * FROM $data" -c "CHECKPOINT" >/dev/null
    t0=$(date +%s%N)
    b -c "INSERT INTO ${data}_plain SELECT * FROM new_$data" >/dev/null
    plain_ms=$(ms_since "$t0")
    b -c "CHECKPOINT" >/dev/null
    t0=$(date +%s%N)
    b -c "INSERT INTO $data SELECT * FROM new_$data" >/dev/null
    indexed_ms=$(ms_since "$t0")
    ok "without index $plain_ms ms, with mih $indexed_ms ms"
    {
        echo
        echo "INSERT ... SELECT of 100,000 rows: $plain_ms ms without an index ($((100000000 / (plain_ms + 1))) rows/s), $indexed_ms ms with the mih index ($((100000000 / (indexed_ms + 1))) rows/s): $(awk -v p="$plain_ms" -v i="$indexed_ms" 'BEGIN { printf "%.0f%%", 100 * p / i }') of the rate without it. After the inserts: mih_verify ok = $(b -c "SELECT ok FROM mih_verify('${data}_mih', false)")."
        echo
    } >>"$report"
done

step "report: $report"
cat "$report"
cluster_stop bench

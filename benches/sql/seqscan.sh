#!/usr/bin/env bash
# SQL benchmark: k-NN by sequential scan, ics_hash against PostgreSQL's own bit operations.
#
#   ours:     SELECT id FROM t ORDER BY hamming(code, q) LIMIT 10          (code hashcode(64))
#   built-in: SELECT id FROM t ORDER BY bit_count(b # q) LIMIT 10          (b bit(64))
# and the same distances in a filter (count(*) WHERE distance <= 20), where no sort step
# dilutes the difference.
#
# Same 1M random 64-bit values in both columns of one table, same random query per run,
# prepared statements over one connection (pgbench -M prepared), one backend, no parallel
# workers (a per-core comparison), both measured in the same run in alternating rounds;
# reported as the ratio of the median latencies.
# Usage: benches/sql/seqscan.sh [rows] [transactions per query form]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/common.sh

ROWS=${1:-1000000}
TX=${2:-30}
PORT=${ICS_BENCH_PORT:-28817}
out=$(pwd)/target/bench-sql
mkdir -p "$out"

step "cluster and data: $ROWS random 64-bit codes"
cluster_start bench "$PORT"
psql_at "$PORT" -d postgres -c "SET client_min_messages = warning" \
    -c "DROP DATABASE IF EXISTS ics_bench" -c "CREATE DATABASE ics_bench"
psql_at "$PORT" -d ics_bench <<SQL
CREATE EXTENSION ics_hash;
CREATE TABLE t (id int, code hashcode(64), b bit(64));
INSERT INTO t
SELECT i, v::hashcode, v::bit(64)
FROM generate_series(1, $ROWS) i,
     LATERAL (SELECT ((random() * 4294967295)::bigint << 32) # (random() * 4294967295)::bigint + i * 0 AS v) r;
VACUUM ANALYZE t;
SQL
ok "$(psql_at "$PORT" -d ics_bench -tA -c "SELECT pg_size_pretty(pg_table_size('t'))")"

# The k-NN form users write, and a filter form (no sort: the per-row distance alone).
q_ours="(SELECT ((:hi::bigint << 32) | :lo)::hashcode)"
q_builtin="(SELECT ((:hi::bigint << 32) | :lo)::bit(64))"
for form in knn filter; do
    for side in ours builtin; do
        if [ $side = ours ]; then d="hamming(code, $q_ours)"; else d="bit_count(b # $q_builtin)"; fi
        {
            echo '\set hi random(0, 4294967295)'
            echo '\set lo random(0, 4294967295)'
            if [ $form = knn ]; then
                echo "SELECT id FROM t ORDER BY $d LIMIT 10;"
            else
                echo "SELECT count(*) FROM t WHERE $d <= 20;"
            fi
        } >"$out/$form-$side.sql"
    done
done

# Per-query latencies in ms of one query form (pgbench, one client, prepared statements),
# appended to a file: the query code is computed once per query (an InitPlan), so what
# differs between the forms is the per-row distance.
latencies() {
    local dir
    dir=$(mktemp -d)
    (cd "$dir" && PGOPTIONS="-c max_parallel_workers_per_gather=0" "$PG_BIN/pgbench" -h 127.0.0.1 \
        -p "$PORT" -U postgres -n -M prepared -c 1 -t "$2" -l -f "$1" ics_bench >/dev/null 2>&1)
    awk '{ print $3 / 1000 }' "$dir"/pgbench_log.* >>"$3"
    rm -rf "$dir"
}
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

step "exactness: both forms return the same distances"
psql_at "$PORT" -d ics_bench -tA <<'SQL' | sed 's/^/    /'
SELECT CASE WHEN count(*) = 0 THEN 'same 10 distances for 20 random queries'
            ELSE count(*) || ' queries differ' END
FROM generate_series(1, 20) g,
     LATERAL (SELECT ((random() * 4294967295)::bigint << 32) # (random() * 4294967295)::bigint + g * 0 AS v) r,
     LATERAL (SELECT array_agg(d ORDER BY d) AS ours FROM
                (SELECT hamming(code, v::hashcode) AS d FROM t ORDER BY 1 LIMIT 10) x) o,
     LATERAL (SELECT array_agg(d ORDER BY d) AS builtin FROM
                (SELECT bit_count(b # v::bit(64))::int AS d FROM t ORDER BY 1 LIMIT 10) y) bi
WHERE ours <> builtin;
SQL

step "latency: $TX queries per form, in alternating rounds (the machine's load drifts)"
rounds=5
{
    echo "rows=$ROWS, $TX queries per form, median latency in ms"
    for form in knn filter; do
        latencies "$out/$form-ours.sql" 3 /dev/null # warm-up
        latencies "$out/$form-builtin.sql" 3 /dev/null
        rm -f "$out/$form-ours.ms" "$out/$form-builtin.ms"
        for _ in $(seq 1 $rounds); do
            latencies "$out/$form-ours.sql" $((TX / rounds)) "$out/$form-ours.ms"
            latencies "$out/$form-builtin.sql" $((TX / rounds)) "$out/$form-builtin.ms"
        done
        ours=$(median "$out/$form-ours.ms")
        builtin=$(median "$out/$form-builtin.ms")
        case $form in
            knn) label="ORDER BY <distance> LIMIT 10" ;;
            filter) label="count(*) WHERE <distance> <= 20" ;;
        esac
        awk -v o="$ours" -v b="$builtin" -v l="$label" \
            'BEGIN { printf "%s: hamming(code, q) %s ms, bit_count(b # q) %s ms: %.2fx\n", l, o, b, b / o }'
    done
} | tee "$out/seqscan.txt" | sed 's/^/    /'
cluster_stop bench

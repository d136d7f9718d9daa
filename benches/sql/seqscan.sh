#!/usr/bin/env bash
# SQL benchmark: k-NN by sequential scan, ics_hash against PostgreSQL's own bit operations.
#
#   ours:     SELECT id FROM t ORDER BY hamming(code, q) LIMIT 10          (code hashcode(64))
#   built-in: SELECT id FROM t ORDER BY bit_count(b # q) LIMIT 10          (b bit(64))
#
# Same 1M random 64-bit values in both columns of one table, same random query per run,
# prepared statements over one connection (pgbench -M prepared), one backend, no parallel
# workers (a per-core comparison), both measured in the same run; reported as a ratio.
# Usage: benches/sql/seqscan.sh [rows] [transactions per query form]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/common.sh

ROWS=${1:-1000000}
TX=${2:-30}
PORT=${ICS_BENCH_PORT:-28817}
out=target/bench-sql
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

cat >"$out/ours.sql" <<'SQL'
\set hi random(0, 4294967295)
\set lo random(0, 4294967295)
SELECT id FROM t ORDER BY hamming(code, ((:hi::bigint << 32) | :lo)::hashcode) LIMIT 10;
SQL
cat >"$out/builtin.sql" <<'SQL'
\set hi random(0, 4294967295)
\set lo random(0, 4294967295)
SELECT id FROM t ORDER BY bit_count(b # ((:hi::bigint << 32) | :lo)::bit(64)) LIMIT 10;
SQL

# Average latency in ms of one query form (pgbench, one client, prepared statements).
latency() {
    PGOPTIONS="-c max_parallel_workers_per_gather=0" "$PG_BIN/pgbench" -h 127.0.0.1 -p "$PORT" \
        -U postgres -n -M prepared -c 1 -t "$TX" -f "$1" ics_bench 2>/dev/null |
        awk '/latency average/ { print $4 }'
}

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

step "latency, $TX queries each (warm-up first)"
latency "$out/ours.sql" >/dev/null
latency "$out/builtin.sql" >/dev/null
ours=$(latency "$out/ours.sql")
builtin=$(latency "$out/builtin.sql")
{
    echo "rows=$ROWS transactions=$TX"
    echo "ORDER BY hamming(code, q) LIMIT 10 (hashcode): $ours ms"
    echo "ORDER BY bit_count(b # q) LIMIT 10 (bit(64)):  $builtin ms"
    awk -v o="$ours" -v b="$builtin" 'BEGIN { printf "speed-up of ics_hash over the built-in expression: %.2fx\n", b / o }'
} | tee "$out/seqscan.txt" | sed 's/^/    /'
cluster_stop bench

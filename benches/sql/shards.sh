#!/usr/bin/env bash
# SQL benchmark of sharded exact k-NN on this machine: three shards and a coordinator over
# postgres_fdw (scripts/shards.sh), against one table holding every row.
#
# Data (seeded): 3 x ROWS hash-like 64-bit codes (40 centres, each bit flipped with
# probability 1/8, as learned codes look), loaded through the coordinator (hash partitioning on
# id), each shard's mih index built afterwards; the same rows in one local table with its own
# mih index on the coordinator's cluster; 1,000 query codes from the same distribution.
# Forms, k = 10 (pgbench over one connection to the coordinator, -M prepared, per-query log:
# median / p95 in ms; the query code is an initplan, as (SELECT ics_encode($1)) would be):
#   sharded          ORDER BY code <~> q LIMIT 10 on the partitioned table: each shard's mih
#                    index scan (remote ORDER BY), merged by Merge Append on the coordinator
#   sharded fetch 10 the same with the servers' fetch_size at 10 (= k) instead of 100
#   sharded union    a UNION ALL of one ORDER BY ... LIMIT 10 per shard (the LIMIT ships too,
#                    and the async Append queries the shards concurrently), then the top 10
#   single           one table of 3 x ROWS rows with a mih index
#   sharded no index the sharded query with the shards' indexes off (each shard sorts its rows)
#   coordinator seq  nothing pushed down (the server lacks extensions 'ics_hash'): every row
#                    comes to the coordinator, which sorts them
#   single seq       one table, sequential scan (top-N sort)
# Usage: benches/sql/shards.sh [rows per shard] [queries]      (defaults 1000000, 200)
# Ports 28856-28859 (ICS_BENCH_SHARDS_PORT); the report goes to target/bench-sql/shards.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${1:-1000000}
QUERIES=${2:-200}
SEQ_QUERIES=${SEQ_QUERIES:-10}
export ICS_SHARDS_PORT=${ICS_BENCH_SHARDS_PORT:-28856} ICS_SHARDS_NAME=shardb ICS_SHARDS_COORD=coordb
source scripts/shards.sh
source benches/sql/lib.sh
PORT=$SHARDS_PORT
out=$(pwd)/target/bench-sql
mkdir -p "$out"
report=$out/shards.md
c() { psql_at "$PORT" -d "$SHARDS_DB" -tA "$@"; }
on_shards() { local i; for i in 1 2 3; do psql_at $((PORT + i)) -d "$SHARDS_DB" -tA "$@"; done; }

step "three shards and a coordinator (ports $PORT-$((PORT + 3)))"
shards_start 3 64 "max_parallel_workers_per_gather = 0" "maintenance_work_mem = 512MB"
on_shards -c "DROP INDEX images_code_idx" >/dev/null

step "data: 3 x $ROWS hash-like codes through the coordinator"
t0=$(date +%s%N)
c >/dev/null <<SQL
SELECT setseed(0.2024);
\i tests/fixtures/sql/hashlike.sql
INSERT INTO images SELECT i, hashlike(3) FROM generate_series(1, 3 * $ROWS) i;
CREATE TABLE q (qid int PRIMARY KEY, code hashcode(64));
INSERT INTO q SELECT i, hashlike(3) FROM generate_series(1, 1000) i;
SQL
load_ms=$(ms_since "$t0")
ok "loaded in $load_ms ms; per shard: $(on_shards -c "SELECT count(*) FROM images" | tr '\n' ' ')"
t0=$(date +%s%N)
for i in 1 2 3; do
    psql_at $((PORT + i)) -d "$SHARDS_DB" -c "CREATE INDEX images_code_idx ON images USING mih (code)" -c "VACUUM ANALYZE images" >/dev/null &
done
wait
ok "shard indexes built (concurrently) in $(ms_since "$t0") ms"
t0=$(date +%s%N)
c -c "CREATE TABLE single AS SELECT id, code FROM images" >/dev/null
c -c "CREATE INDEX single_code_idx ON single USING mih (code)" -c "VACUUM ANALYZE single" -c "ANALYZE images, q" >/dev/null
ok "single table of $(c -c "SELECT count(*) FROM single") rows indexed in $(ms_since "$t0") ms"

query() { # query FORM [QUERY CODE]: the SQL of one form
    local qc=${2:-'(SELECT code FROM q WHERE qid = :qi)'} i
    case $1 in
        sharded | fetch10 | nopush | noindex) echo "SELECT id FROM images ORDER BY code <~> $qc LIMIT 10" ;;
        union)
            echo "SELECT id FROM ("
            for i in 1 2 3; do
                [ "$i" = 1 ] || echo "UNION ALL"
                echo "(SELECT id, code <~> $qc AS d FROM images_$SHARDS_NAME$i ORDER BY code <~> $qc LIMIT 10)"
            done
            echo ") s ORDER BY d LIMIT 10"
            ;;
        single | singleseq) echo "SELECT id FROM single ORDER BY code <~> $qc LIMIT 10" ;;
    esac
}

step "exactness: the sharded forms return the single table's distances"
for form in sharded union; do
    bad=$(c <<SQL | tail -1
SELECT count(*) FROM q WHERE qid <= 50 AND
  (SELECT array_agg(d ORDER BY d) FROM (SELECT s.code <~> q.code AS d FROM ($(query $form q.code)) k
                                          JOIN single s USING (id)) x)
  IS DISTINCT FROM
  (SELECT array_agg(code <~> q.code ORDER BY code <~> q.code) FROM (SELECT code FROM single ORDER BY code <~> q.code LIMIT 10) s);
SQL
    )
    [ "$bad" = 0 ] || die "$form: $bad of 50 queries differ from the single table"
done
ok "50 queries: sharded and sharded union = single"

{
    echo "# Sharded k-NN benchmark: 3 shards x $ROWS rows of 64-bit codes"
    echo
    echo "Machine: $(nproc) cores, $(awk '/model name/ { $1=$2=$3=""; print; exit }' /proc/cpuinfo | sed 's/^ *//'); PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }'); the coordinator and the three shards on this one machine, connected over 127.0.0.1; one client connection to the coordinator, prepared statements, no parallel workers; k = 10; latencies in ms (client round trip, median / p95). Load through the coordinator: $load_ms ms."
    echo
    echo "| form | median | p95 | queries |"
    echo "|---|---|---|---|"
} >"$report"
declare -A median=()
for form in sharded fetch10 union single noindex nopush singleseq; do
    file=$out/shards-$form.sql
    { echo '\set qi random(1, 1000)'; echo "$(query $form);"; } >"$file"
    n=$QUERIES
    case $form in
        fetch10)
            for i in 1 2 3; do c -c "ALTER SERVER $SHARDS_NAME$i OPTIONS (ADD fetch_size '10')" >/dev/null; done ;;
        noindex)
            on_shards -c "ALTER DATABASE $SHARDS_DB SET enable_indexscan = off" >/dev/null
            n=$SEQ_QUERIES ;;
        nopush)
            for i in 1 2 3; do c -c "ALTER SERVER $SHARDS_NAME$i OPTIONS (DROP extensions)" >/dev/null; done
            n=$SEQ_QUERIES ;;
        singleseq)
            c -c "ALTER TABLE single SET (autovacuum_enabled = off)" -c "DROP INDEX single_code_idx" >/dev/null
            n=$SEQ_QUERIES ;;
    esac
    [ "$n" = "$QUERIES" ] && latency "$PORT" "$SHARDS_DB" "$file" 20 >/dev/null # warm the caches
    read -r m p < <(latency "$PORT" "$SHARDS_DB" "$file" "$n")
    median[$form]=$m
    case $form in
        fetch10) for i in 1 2 3; do c -c "ALTER SERVER $SHARDS_NAME$i OPTIONS (DROP fetch_size)" >/dev/null; done ;;
        noindex) on_shards -c "ALTER DATABASE $SHARDS_DB RESET enable_indexscan" >/dev/null ;;
        nopush) for i in 1 2 3; do c -c "ALTER SERVER $SHARDS_NAME$i OPTIONS (ADD extensions 'ics_hash')" >/dev/null; done ;;
    esac
    label=$(case $form in
        sharded) echo "sharded: per-shard mih index scans, Merge Append" ;;
        fetch10) echo "sharded as above, fetch_size 10 (default 100)" ;;
        union) echo "sharded: UNION ALL of per-shard ORDER BY ... LIMIT 10 (async Append)" ;;
        single) echo "one table of $((3 * ROWS)) rows, mih index" ;;
        noindex) echo "sharded, shards without their index (each sorts its rows)" ;;
        nopush) echo "through the coordinator, nothing pushed down (every row fetched and sorted)" ;;
        singleseq) echo "one table, sequential scan" ;;
    esac)
    info "$label: $m / $p ms"
    echo "| $label | $m | $p | $n |" >>"$report"
done
{
    echo
    echo "Ratios of medians: sharded / single $(awk -v a="${median[sharded]}" -v b="${median[single]}" 'BEGIN { printf "%.2f", a / b }'), sharded with fetch_size 10 / single $(awk -v a="${median[fetch10]}" -v b="${median[single]}" 'BEGIN { printf "%.2f", a / b }'), sharded union / single $(awk -v a="${median[union]}" -v b="${median[single]}" 'BEGIN { printf "%.2f", a / b }'); coordinator seq / sharded $(awk -v a="${median[nopush]}" -v b="${median[sharded]}" 'BEGIN { printf "%.0f", a / b }')x, shards without index / sharded $(awk -v a="${median[noindex]}" -v b="${median[sharded]}" 'BEGIN { printf "%.0f", a / b }')x."
    echo
    echo "The sharded k-NN plan:"
    echo
    echo '```'
    c -c "EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM images ORDER BY code <~> (SELECT code FROM q WHERE qid = 1) LIMIT 10"
    echo '```'
} >>"$report"
ok "report: $report"
[ "${ICS_BENCH_KEEP:-0}" = 1 ] || shards_stop 3

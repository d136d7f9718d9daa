#!/usr/bin/env bash
# Scale-out scenarios with real PostgreSQL processes (TAP-style output):
#   shards    three shard clusters and a coordinator over postgres_fdw (scripts/shards.sh):
#             rows spread by hash partitioning; k-NN (k = 10, 100; distance lists, ties
#             included) and radius results equal a sequential scan of one table holding every
#             row; EXPLAIN VERBOSE shows the operator in each shard's remote SQL and the
#             shards plan it as a mih index scan; a query code from ics_encode ships as a
#             parameter; a shard stopped in the middle of a query is an error (SQLSTATE class
#             08), never a short answer; a stopped shard is 08001; once it is back, the same
#             coordinator session answers exactly again
#   models    the model registry replicates: a streaming standby lists the primary's models
#             (loaded before and after the base backup, and a drop), encodes with them, gets
#             the primary's codes (also for a plain role, who cannot read the registry's
#             bytes), and refuses ics_model_load (read-only, 25006); pg_dump and pg_restore
#             carry the models into a new database
# Ports 28844-28849 (ICS_SHARDING_PORT moves them). Usage: tests/cluster/sharding.sh [scenario...]
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE_PORT=${ICS_SHARDING_PORT:-28844}
export ICS_SHARDS_PORT=$BASE_PORT ICS_SHARDS_NAME=shardt ICS_SHARDS_COORD=coordt
source scripts/shards.sh

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(shards models)
source tests/cluster/tap.sh
# fixtures FOLDER: encoder fixtures where the servers' OS user can read them.
fixtures() {
    install -d -m 0755 "$1"
    cp tests/fixtures/encoder/tiny_image.onnx tests/fixtures/encoder/tiny_features.onnx \
        tests/fixtures/encoder/cat.png tests/fixtures/encoder/cup.jpg "$1"/
    chmod -R a+rX "$1"
}

scenario_shards() {
    local c=$BASE_PORT s2=$((BASE_PORT + 2))
    shards_stop 3
    shards_start 3 64
    cq() { psql_at "$c" -d "$SHARDS_DB" -tA "$@"; }
    local fx=$ICS_RUN_DIR/$SHARDS_COORD/fixtures
    fixtures "$fx"
    cq >/dev/null <<'SQL'
\i tests/fixtures/sql/hashlike.sql
INSERT INTO images SELECT i, hashlike() FROM generate_series(1, 60000) i;
ANALYZE images;
-- The reference: every row in one local table, read by sequential scans only.
CREATE TABLE ref AS SELECT id, code FROM images;
CREATE TABLE probes AS
    SELECT row_number() OVER () AS qid, code
      FROM ((SELECT code FROM ref ORDER BY id LIMIT 10) UNION ALL
            SELECT hashlike() FROM generate_series(1, 10)) p;
-- Differences between the sharded table and the reference over the probes: k-NN distance
-- lists (k = 10, 100) and radius id sets (r = 0, 3, 8).
CREATE FUNCTION differences() RETURNS int LANGUAGE plpgsql AS $$
DECLARE p record; k int; r int; a text; b text; bad int := 0;
BEGIN
    FOR p IN SELECT code FROM probes ORDER BY qid LOOP
        FOREACH k IN ARRAY ARRAY[10, 100] LOOP
            SELECT array_agg(d)::text INTO a
              FROM (SELECT code <~> p.code AS d FROM images ORDER BY code <~> p.code LIMIT k) s;
            SELECT array_agg(d)::text INTO b
              FROM (SELECT code <~> p.code AS d FROM ref ORDER BY code <~> p.code LIMIT k) s;
            IF a IS DISTINCT FROM b THEN bad := bad + 1; END IF;
        END LOOP;
        FOREACH r IN ARRAY ARRAY[0, 3, 8] LOOP
            SELECT array_agg(id ORDER BY id)::text INTO a FROM images WHERE hamming_within(code, p.code, r);
            SELECT array_agg(id ORDER BY id)::text INTO b FROM ref WHERE hamming_within(code, p.code, r);
            IF a IS DISTINCT FROM b THEN bad := bad + 1; END IF;
        END LOOP;
    END LOOP;
    RETURN bad;
END $$;
SQL
    local i counts="" total=0 cnt spread=t
    for i in 1 2 3; do
        cnt=$(psql_at $((c + i)) -d "$SHARDS_DB" -tA -c "SELECT count(*) FROM images")
        counts="$counts $cnt"
        total=$((total + cnt))
        { [ "$cnt" -gt 15000 ] && [ "$cnt" -lt 25000 ]; } || spread=f
    done
    check "shards: 60000 rows spread by hash partitioning (per shard:$counts)" "60000 t" "$total $spread"

    local q knn radius
    q=$(cq -c "SELECT code FROM probes WHERE qid = 11")
    knn=$(cq -c "EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM images ORDER BY code <~> '$q' LIMIT 10")
    check "shards: k-NN plan merges the shards' ordered scans (Merge Append)" 1 "$(grep -c 'Merge Append' <<<"$knn")"
    check "shards: k-NN remote SQL orders by the operator on every shard" 3 \
        "$(grep -c "Remote SQL: SELECT id, code FROM public.images ORDER BY (code OPERATOR(public.<~>) '$q') ASC NULLS LAST" <<<"$knn")"
    radius=$(cq -c "EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM images WHERE hamming_within(code, '$q', 3)")
    check "shards: radius condition in every shard's remote WHERE" 3 \
        "$(grep -c "WHERE (public.hamming_within(code, '$q'::public.hashcode, 3))" <<<"$radius")"
    check "shards: no filter left on the coordinator for a radius query" 0 "$(grep -c 'Filter:' <<<"$radius")"
    # What a shard does with that remote SQL (postgres_fdw reads it through a cursor).
    local remote
    remote=$(grep -m1 -o 'SELECT id, code FROM public.images ORDER BY .*' <<<"$knn")
    check "shards: a shard runs the k-NN remote SQL as a mih index scan" 1 \
        "$(psql_at $((c + 1)) -d "$SHARDS_DB" -tA -c "EXPLAIN DECLARE c1 CURSOR FOR $remote" | grep -c 'Index Scan using images_code_idx')"
    remote=$(grep -m1 -o 'SELECT id FROM public.images WHERE .*' <<<"$radius")
    check "shards: a shard runs the radius remote SQL as a mih index scan" 1 \
        "$(psql_at $((c + 1)) -d "$SHARDS_DB" -tA -c "EXPLAIN $remote" | grep -c 'Index Cond: (code <@ hamming_ball')"

    check "shards: k-NN and radius equal one table's sequential scan (20 probes x 5 queries)" 0 \
        "$(cq -c "SELECT differences()")"
    check "shards: every k-NN row is a real row at its real distance" "200 t" "$(cq -F ' ' -c "
        SELECT count(*), bool_and(s.d = (r.code <~> p.code)) FROM probes p,
               LATERAL (SELECT id, code <~> p.code AS d FROM images ORDER BY code <~> p.code LIMIT 10) s
          JOIN ref r USING (id)")"

    # The query code from the encoder: computed once on the coordinator, shipped as $1.
    cq -c "SELECT name FROM ics_model_load('tiny', pg_read_binary_file('$fx/tiny_image.onnx'))" >/dev/null
    local enc="(SELECT ics_encode(pg_read_binary_file('$fx/cat.png'), 'tiny'))"
    check "shards: (SELECT ics_encode(...)) ships as a parameter of the remote ORDER BY" 3 \
        "$(cq -c "EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM images ORDER BY code <~> $enc LIMIT 10" |
            grep -c 'ORDER BY (code OPERATOR(public.<~>) $1::public.hashcode)')"
    check "shards: k-NN of an encoded image equals the reference" t "$(cq -c "
        SELECT (SELECT array_agg(d) FROM (SELECT code <~> $enc AS d FROM images ORDER BY 1 LIMIT 100) s)
             = (SELECT array_agg(d) FROM (SELECT code <~> $enc AS d FROM ref ORDER BY 1 LIMIT 100) s)")"

    # A shard stopped in the middle of a query: a slow consumer (pg_sleep per row on the
    # coordinator) reads a k-NN over every row while shard 2 is stopped (immediate mode: as a
    # crash would).
    local log=$ICS_RUN_DIR/$SHARDS_COORD/midquery.log
    "$PG_BIN/psql" -h 127.0.0.1 -p "$c" -U postgres -X -tA -v VERBOSITY=verbose -d "$SHARDS_DB" \
        -c "SELECT 'rows: ' || count(*) FROM (SELECT id FROM images ORDER BY code <~> '$q' LIMIT 60000) s
             WHERE pg_sleep(0.0005) IS NOT NULL" >"$log" 2>&1 &
    local client=$! rc=0
    sleep 2
    cluster_stop "${SHARDS_NAME}2" immediate
    wait $client || rc=$?
    check "shards: a shard stopped mid-query fails the query (no result row)" "1 0" "$rc $(grep -c '^rows: ' "$log")"
    check "shards: ... with a connection error (SQLSTATE class 08)" 1 "$(grep -cE '^ERROR:  08[0-9A-Z]{3}: ' "$log")"
    # The coordinator session that saw it keeps working: shard down is 08001, then back.
    local out
    out=$("$PG_BIN/psql" -h 127.0.0.1 -p "$c" -U postgres -X -tA -v VERBOSITY=sqlstate -d "$SHARDS_DB" 2>&1 <<SQL || true
SELECT 'down: ' || count(*) FROM images;
\\! bash -c 'source scripts/common.sh && cluster_start ${SHARDS_NAME}2 $s2'
SELECT 'after: ' || count(*) FROM images;
SELECT 'differences: ' || differences();
SQL
)
    check "shards: while it is down, a query fails with 08001 (no partial count)" "1 0" \
        "$(grep -c '08001' <<<"$out") $(grep -c '^down: ' <<<"$out")"
    check "shards: the same session answers once the shard is back" "after: 60000" "$(grep '^after: ' <<<"$out")"
    check "shards: and exactly (k-NN and radius equal the reference)" "differences: 0" "$(grep '^differences: ' <<<"$out")"
    shards_stop 3
}

scenario_models() {
    local p=$((BASE_PORT + 4)) s=$((BASE_PORT + 5))
    cluster_destroy shardprimary
    cluster_destroy shardstandby
    cluster_start shardprimary "$p" "wal_level = replica" "max_wal_senders = 4" "hot_standby = on"
    local fx=$ICS_RUN_DIR/shardprimary/fixtures
    fixtures "$fx"
    pq() { psql_at "$p" -d models -tA "$@"; }
    sq() { psql_at "$s" -d models -tA "$@"; }
    psql_at "$p" -d postgres -c "CREATE DATABASE models" >/dev/null
    pq -c "CREATE EXTENSION ics_hash" \
        -c "SELECT name FROM ics_model_load('early', pg_read_binary_file('$fx/tiny_image.onnx'))" \
        -c "SELECT name FROM ics_model_load('doomed', pg_read_binary_file('$fx/tiny_features.onnx'))" >/dev/null
    install -d -m 0700 -o "$PG_OS_USER" "$ICS_RUN_DIR/shardstandby" 2>/dev/null || mkdir -p "$ICS_RUN_DIR/shardstandby"
    as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$p" -U postgres -D "$ICS_RUN_DIR/shardstandby/data" -R -X stream -c fast >/dev/null
    printf '%s\n' "port = $s" "unix_socket_directories = '$ICS_RUN_DIR/shardstandby'" |
        as_pg tee -a "$ICS_RUN_DIR/shardstandby/data/postgresql.conf" >/dev/null
    cluster_start shardstandby "$s"
    # Registry changes after the base backup reach the standby through the WAL stream.
    pq -c "SELECT name FROM ics_model_load('late', pg_read_binary_file('$fx/tiny_image.onnx'))" \
        -c "SELECT ics_model_drop('doomed')" >/dev/null
    # A plain role, and images it may read (it cannot read server files).
    pq -c "CREATE ROLE ics_models_plain" \
        -c "CREATE TABLE images AS SELECT f, pg_read_binary_file('$fx/' || f) AS img FROM unnest(ARRAY['cat.png', 'cup.jpg']) f" \
        -c "GRANT SELECT ON images TO PUBLIC" >/dev/null
    local target
    target=$(pq -c "SELECT pg_current_wal_lsn()")
    for _ in $(seq 1 100); do
        [ "$(sq -c "SELECT pg_last_wal_replay_lsn() >= '$target'::pg_lsn")" = t ] && break
        sleep 0.2
    done
    local list="SELECT string_agg(name || ':' || sha256, ',' ORDER BY name) FROM ics_models"
    check "models: the standby lists the primary's models (early, late; doomed dropped)" \
        "$(pq -c "$list")" "$(sq -c "$list")"
    check "models: ... which are early and late" "early,late" "$(sq -c "SELECT string_agg(name, ',' ORDER BY name) FROM ics_models")"
    local code="SELECT ics_encode(pg_read_binary_file('$fx/cat.png'), 'late') || ' ' || ics_encode(pg_read_binary_file('$fx/cup.jpg'), 'early')"
    check "models: the standby encodes with them (the trainer's golden codes)" \
        "237cd006bb5a66cc a378c40e3a1a658c" "$(sq -c "$code")"
    check "models: ... equal to the primary's codes" "$(pq -c "$code")" "$(sq -c "$code")"
    # A fresh standby backend (no cached session): the role reads no registry bytes itself,
    # ics_encode reads them on its behalf.
    local plain="SET ROLE ics_models_plain; SELECT string_agg(ics_encode(img, CASE f WHEN 'cat.png' THEN 'late' ELSE 'early' END)::text, ' ' ORDER BY f) FROM images"
    check "models: a plain role encodes on the standby" \
        "237cd006bb5a66cc a378c40e3a1a658c" "$(sq -c "$plain")"
    check "models: ... and cannot read the registry's bytes there (42501)" 1 \
        "$("$PG_BIN/psql" -h 127.0.0.1 -p "$s" -U postgres -X -d models -tA -v VERBOSITY=sqlstate \
            -c "SET ROLE ics_models_plain" -c "SELECT onnx FROM ics_hash_private.ics_model_registry" 2>&1 | grep -c '42501')"
    # pg_dump saves the registry's rows (an extension configuration table) and pg_restore
    # puts them back under a new CREATE EXTENSION.
    psql_at "$p" -d postgres -c "CREATE DATABASE models_restored" >/dev/null
    "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$p" -U postgres -d models -Fc -f "$ICS_RUN_DIR/shardprimary/models.dump"
    "$PG_BIN/pg_restore" -h 127.0.0.1 -p "$p" -U postgres -d models_restored "$ICS_RUN_DIR/shardprimary/models.dump"
    check "models: pg_dump and pg_restore carry the models" "$(pq -c "$list")" \
        "$(psql_at "$p" -d models_restored -tA -c "$list")"
    check "models: ... which encode in the restored database" "$(pq -c "$code")" \
        "$(psql_at "$p" -d models_restored -tA -c "$code")"
    check "models: ics_model_load on the standby is refused (read-only, 25006)" 1 \
        "$("$PG_BIN/psql" -h 127.0.0.1 -p "$s" -U postgres -X -d models -tA -v VERBOSITY=sqlstate \
            -c "SELECT ics_model_load('nope', pg_read_binary_file('$fx/tiny_features.onnx'))" 2>&1 | grep -c '25006')"
    cluster_destroy shardstandby
    cluster_destroy shardprimary
}

echo "TAP version 13"
for s in "${scenarios[@]}"; do
    "scenario_$s"
done
tap_finish "sharding scenario"

#!/usr/bin/env bash
# Cluster scenarios for the mih index, with real PostgreSQL processes (TAP-style output):
#   replica      a physical streaming standby returns what the primary returns after
#                insert / delete / VACUUM cycles (the index is WAL-logged)
#   crash        an immediate-mode stop during concurrent inserts, then restart: the index
#                equals a sequential scan and holds every committed row; then a crash in
#                the middle of VACUUM (bulk delete; substring tables: the merge); an
#                unlogged table's index, reset from its init fork, takes inserts and equals
#                a sequential scan
#   concurrency  pgbench, 8 clients inserting while 4 others query and VACUUM runs: every
#                committed row is found through the index
#   vacuum       VACUUM after deleting most rows: less work (pages; radii or the merge),
#                exact results, retired pages recycled and reused by later inserts
# The index scenarios run once per strategy (ICS_MIH_STRATEGIES, default "lists substrings").
#   security     what needs several sessions or the server's environment: pg_cancel_backend
#                and pg_terminate_backend stop a long network run and a long batch (decoding
#                pipelined with the runs); concurrent loads of one
#                model name give one success and 42710s; with RUST_BACKTRACE=1 in the
#                server's environment no backtrace reaches a client
# Usage: tests/cluster/scenarios.sh [scenario...]   (all by default; ICS_PG_MAJOR picks the
# PostgreSQL major, default 15)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/common.sh

BASE_PORT=${ICS_SCENARIO_PORT:-28830}
read -r -a strategies <<<"${ICS_MIH_STRATEGIES:-lists substrings}"
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(replica crash concurrency vacuum security)
source tests/cluster/tap.sh
q() { local port=$1; shift; psql_at "$port" -d scen -tA "$@"; }

# Schema and helpers every scenario uses.
setup_db() {
    local port=$1
    psql_at "$port" -d postgres -c "SET client_min_messages = warning" \
        -c "DROP DATABASE IF EXISTS scen" -c "CREATE DATABASE scen" >/dev/null
    q "$port" >/dev/null <<'SQL'
CREATE EXTENSION ics_hash;
\i tests/fixtures/sql/hashlike.sql
CREATE TABLE t (id bigserial PRIMARY KEY, code hashcode(64));
-- Differences between the index and a sequential scan over 20 queries:
-- k-NN distances (k = 10, 100) and radius results (r = 0, 3, 8).
CREATE FUNCTION differences() RETURNS int LANGUAGE plpgsql AS $$
DECLARE qc hashcode; k int; r int; a text; b text; bad int := 0;
BEGIN
    FOR qc IN (SELECT code FROM t WHERE code IS NOT NULL ORDER BY id LIMIT 10)
              UNION ALL SELECT hashlike() FROM generate_series(1, 10) LOOP
        FOREACH k IN ARRAY ARRAY[10, 100] LOOP
            PERFORM set_config('enable_seqscan', 'off', true);
            SELECT array_agg(d)::text INTO a FROM (SELECT code <~> qc AS d FROM t ORDER BY code <~> qc LIMIT k) s;
            PERFORM set_config('enable_seqscan', 'on', true);
            PERFORM set_config('enable_indexscan', 'off', true);
            SELECT array_agg(d)::text INTO b FROM (SELECT code <~> qc AS d FROM t ORDER BY code <~> qc LIMIT k) s;
            PERFORM set_config('enable_indexscan', 'on', true);
            IF a IS DISTINCT FROM b THEN bad := bad + 1; END IF;
        END LOOP;
        FOREACH r IN ARRAY ARRAY[0, 3, 8] LOOP
            PERFORM set_config('enable_seqscan', 'off', true);
            SELECT array_agg(id ORDER BY id)::text INTO a FROM t WHERE hamming_within(code, qc, r);
            PERFORM set_config('enable_seqscan', 'on', true);
            PERFORM set_config('enable_indexscan', 'off', true);
            PERFORM set_config('enable_bitmapscan', 'off', true);
            SELECT array_agg(id ORDER BY id)::text INTO b FROM t WHERE hamming_within(code, qc, r);
            PERFORM set_config('enable_indexscan', 'on', true);
            PERFORM set_config('enable_bitmapscan', 'on', true);
            IF a IS DISTINCT FROM b THEN bad := bad + 1; END IF;
        END LOOP;
    END LOOP;
    RETURN bad;
END $$;
-- Rows the index cannot find by their own code (should be none).
CREATE FUNCTION unfindable() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE missing bigint;
BEGIN
    PERFORM set_config('enable_seqscan', 'off', true);
    PERFORM set_config('enable_bitmapscan', 'off', true);
    SELECT count(*) INTO missing FROM t a WHERE a.code IS NOT NULL AND NOT EXISTS
        (SELECT 1 FROM t b WHERE hamming_within(b.code, a.code, 0) AND b.id = a.id);
    RETURN missing;
END $$;
SQL
}

verify_ok() { q "$1" -c "SELECT ok AND tids = heap_rows FROM mih_verify('t_code_idx')"; }
# The index's strategy, as mih_verify reports it.
strategy_of() { q "$1" -c "SELECT strategy FROM mih_verify('t_code_idx')"; }

scenario_replica() {
    local strategy=$1 p=$((BASE_PORT)) s=$((BASE_PORT + 1))
    cluster_destroy primary
    cluster_destroy standby
    cluster_start primary "$p" "wal_level = replica" "max_wal_senders = 4" "hot_standby = on"
    setup_db "$p"
    q "$p" -c "INSERT INTO t (code) SELECT hashlike() FROM generate_series(1, 20000)" \
        -c "CREATE INDEX t_code_idx ON t USING mih (code) WITH (strategy = $strategy)" >/dev/null
    # Base backup into the standby's data directory; it streams from the primary.
    install -d -m 0700 -o "$PG_OS_USER" "$ICS_RUN_DIR/standby" 2>/dev/null || mkdir -p "$ICS_RUN_DIR/standby"
    as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$p" -U postgres -D "$ICS_RUN_DIR/standby/data" -R -X stream -c fast >/dev/null
    echo "port = $s" | as_pg tee -a "$ICS_RUN_DIR/standby/data/postgresql.conf" >/dev/null
    echo "unix_socket_directories = '$ICS_RUN_DIR/standby'" | as_pg tee -a "$ICS_RUN_DIR/standby/data/postgresql.conf" >/dev/null
    cluster_start standby "$s"
    check "replica[$strategy]: the index uses $strategy" "$strategy" "$(strategy_of "$p")"
    for cycle in 1 2 3; do
        q "$p" >/dev/null <<SQL
INSERT INTO t (code) SELECT hashlike() FROM generate_series(1, 5000);
DELETE FROM t WHERE id % 7 = $cycle;
UPDATE t SET code = hashlike() WHERE id % 13 = $cycle;
VACUUM t;
SQL
    done
    # Wait until the standby has replayed everything.
    local target
    target=$(q "$p" -c "SELECT pg_current_wal_lsn()")
    local replayed=f
    for _ in $(seq 1 300); do
        replayed=$(q "$s" -c "SELECT pg_last_wal_replay_lsn() >= '$target'::pg_lsn")
        [ "$replayed" = t ] && break
        sleep 0.2
    done
    check "replica[$strategy]: the standby replayed the primary's WAL within 60 s" t "$replayed"
    local sig
    sig=$(cat <<'SQL'
SELECT count(*) || ' ' || md5(string_agg(r, ',' ORDER BY n)) FROM (
    SELECT row_number() OVER () AS n,
           -- The 25 nearest: ids inside the 25th distance in (distance, id) order, and only the
           -- distance of rows at it (which of several rows tied there come back is free).
           (SELECT string_agg(CASE WHEN d < m THEN id::text ELSE 'd' || d END, ',' ORDER BY d, id)
              FROM (SELECT id, d, max(d) OVER () AS m
                      FROM (SELECT id, code <~> c.code AS d FROM t ORDER BY code <~> c.code LIMIT 25) s0) s) ||
           (SELECT array_agg(id ORDER BY id)::text FROM t WHERE hamming_within(code, c.code, 4)) AS r
    FROM (SELECT code FROM t WHERE code IS NOT NULL ORDER BY id LIMIT 30) c) x
SQL
)
    local on_primary on_standby
    on_primary=$(q "$p" -c "SET enable_seqscan = off" -c "$sig" | tail -1)
    on_standby=$(q "$s" -c "SET enable_seqscan = off" -c "$sig" | tail -1)
    case "$on_primary" in 30\ *) ;; *) on_primary="no result ($on_primary)" ;; esac
    check "replica[$strategy]: standby returns the primary's k-NN and radius results" "$on_primary" "$on_standby"
    check "replica[$strategy]: index on the standby equals a sequential scan" 0 "$(q "$s" -c "SELECT differences()")"
    check "replica[$strategy]: mih_verify on the standby" t "$(verify_ok "$s")"
    cluster_destroy standby
    cluster_destroy primary
}

scenario_crash() {
    local strategy=$1 p=$((BASE_PORT + 2))
    cluster_destroy crash
    cluster_start crash "$p"
    setup_db "$p"
    q "$p" -c "INSERT INTO t (code) SELECT hashlike() FROM generate_series(1, 20000)" \
        -c "CREATE INDEX t_code_idx ON t USING mih (code) WITH (strategy = $strategy)" -c "CHECKPOINT" >/dev/null
    # An unlogged table: recovery resets it and its index from their init forks (ambuildempty).
    q "$p" -c "CREATE UNLOGGED TABLE u (id bigserial PRIMARY KEY, code hashcode(64))" \
        -c "CREATE INDEX u_code_idx ON u USING mih (code) WITH (strategy = $strategy)" \
        -c "INSERT INTO u (code) SELECT hashlike() FROM generate_series(1, 1000)" >/dev/null
    local script=$ICS_RUN_DIR/crash/insert.sql
    echo "INSERT INTO t (code) SELECT hashlike() FROM generate_series(1, 50);" >"$script"
    "$PG_BIN/pgbench" -h 127.0.0.1 -p "$p" -U postgres -n -c 4 -j 2 -T 60 -f "$script" scen >/dev/null 2>&1 &
    local bench=$!
    sleep 2
    cluster_stop crash immediate
    wait $bench || true
    cluster_start crash "$p"
    local rows
    rows=$(q "$p" -c "SELECT count(*) FROM t")
    if [ "$rows" -gt 20000 ]; then ok_ "crash[$strategy]: inserts were running at the crash ($rows rows survive)"; else not_ok "crash[$strategy]: no concurrent inserts survived ($rows rows)"; fi
    check "crash[$strategy]: every committed row is found through the index" 0 "$(q "$p" -c "SELECT unfindable()")"
    check "crash[$strategy]: index equals a sequential scan after recovery" 0 "$(q "$p" -c "SELECT differences()")"
    # Transactions cut off by the crash may have written index entries before their commit
    # record: dead entries, as for any index, which VACUUM removes (INDEX_CLEANUP ON: with
    # so few dead rows VACUUM would otherwise skip the index).
    check "crash[$strategy]: mih_verify after recovery (every committed row indexed)" t \
        "$(q "$p" -c "SELECT ok FROM mih_verify('t_code_idx')")"
    q "$p" -c "VACUUM (INDEX_CLEANUP ON) t" >/dev/null
    check "crash[$strategy]: after VACUUM the index holds exactly the table's rows" t "$(verify_ok "$p")"
    check "crash[$strategy]: the unlogged table is empty after recovery" 0 "$(q "$p" -c "SELECT count(*) FROM u")"
    q "$p" -c "INSERT INTO u (code) SELECT hashlike() FROM generate_series(1, 3000)" >/dev/null
    check "crash[$strategy]: its index, reset from the init fork, takes inserts and verifies" "t $strategy" \
        "$(q "$p" -F ' ' -c "SELECT ok AND tids = heap_rows AND tids = 3000, strategy FROM mih_verify('u_code_idx')")"
    local knn="SELECT array_agg(d ORDER BY d)::text FROM (SELECT code <~> (SELECT code FROM u ORDER BY id LIMIT 1) AS d
                 FROM u ORDER BY code <~> (SELECT code FROM u ORDER BY id LIMIT 1) LIMIT 50) s"
    local by_seq by_index
    by_seq=$(q "$p" -c "SET enable_indexscan = off" -c "$knn")
    by_index=$(q "$p" -c "SET enable_seqscan = off" -c "$knn")
    case "$by_seq" in "{"*) ;; *) by_seq="no result ($by_seq)" ;; esac
    check "crash[$strategy]: and equals a sequential scan" "$by_seq" "$by_index"
    # A crash in the middle of VACUUM (its bulk delete, then for substring tables the merge of
    # a large tail): the counts in the metapage agree with the pages after recovery, the old
    # tables stay in force, the next VACUUM finishes the work and reclaims what the cut-off
    # one wrote. Dead rows and NULL codes give the bulk delete work on every structure.
    q "$p" -c "INSERT INTO t (code) SELECT CASE WHEN i % 97 = 0 THEN NULL ELSE hashlike() END FROM generate_series(1, 300000) i" \
        -c "DELETE FROM t WHERE id % 50 = 0" -c "CHECKPOINT" >/dev/null
    local gen_before
    gen_before=$(q "$p" -c "SELECT generation FROM mih_verify('t_code_idx')")
    q "$p" -c "VACUUM t" >/dev/null 2>&1 &
    local vac=$!
    sleep 0.4
    cluster_stop crash immediate
    wait $vac || true
    cluster_start crash "$p"
    check "crash[$strategy]: index equals a sequential scan after a crash during VACUUM" 0 "$(q "$p" -c "SELECT differences()")"
    check "crash[$strategy]: every row is found after a crash during VACUUM" 0 "$(q "$p" -c "SELECT unfindable()")"
    check "crash[$strategy]: mih_verify after a crash during VACUUM" t "$(q "$p" -c "SELECT ok FROM mih_verify('t_code_idx')")"
    check "crash[$strategy]: k-NN through the index returns every row (NULL codes last)" \
        "$(q "$p" -c "SELECT count(*) FROM t")" \
        "$(q "$p" -c "SET enable_seqscan = off" -c "SELECT count(*) FROM (SELECT id FROM t ORDER BY code <~> hashlike()) s" | tail -1)"
    q "$p" -c "VACUUM t" >/dev/null
    if [ "$strategy" = substrings ]; then
        local gen_after
        gen_after=$(q "$p" -c "SELECT generation FROM mih_verify('t_code_idx')")
        check "crash[$strategy]: the next VACUUM merges the tail (generation $gen_before -> $gen_after, tail rows)" 0 \
            "$(q "$p" -c "SELECT tail_rows FROM mih_verify('t_code_idx')")"
    fi
    check "crash[$strategy]: exact after the next VACUUM" 0 "$(q "$p" -c "SELECT differences()")"
    check "crash[$strategy]: mih_verify after the next VACUUM" t "$(q "$p" -c "SELECT ok AND tids = heap_rows AND nulls = heap_nulls FROM mih_verify('t_code_idx')")"
    cluster_destroy crash
}

scenario_concurrency() {
    local strategy=$1 p=$((BASE_PORT + 3))
    cluster_destroy conc
    cluster_start conc "$p" "max_connections = 50"
    setup_db "$p"
    q "$p" -c "INSERT INTO t (code) SELECT hashlike() FROM generate_series(1, 10000)" \
        -c "CREATE INDEX t_code_idx ON t USING mih (code) WITH (strategy = $strategy)" >/dev/null
    local dir=$ICS_RUN_DIR/conc
    echo "INSERT INTO t (code) SELECT hashlike() FROM generate_series(1, 20);" >"$dir/insert.sql"
    printf '%s\n' "SELECT count(*) FROM (SELECT id FROM t ORDER BY code <~> hashlike() LIMIT 10) s;" \
        "SELECT count(*) FROM t WHERE hamming_within(code, hashlike(), 3);" >"$dir/query.sql"
    "$PG_BIN/pgbench" -h 127.0.0.1 -p "$p" -U postgres -n -c 8 -j 2 -T 8 -f "$dir/insert.sql" scen >"$dir/insert.log" 2>&1 &
    local inserter=$!
    # VACUUM meanwhile (substring tables merge their tail while inserts and scans go on).
    (for _ in 1 2 3 4 5 6; do sleep 1; q "$p" -c "VACUUM t" 2>&1; done) >"$dir/vacuum.log" &
    local vacuumer=$!
    "$PG_BIN/pgbench" -h 127.0.0.1 -p "$p" -U postgres -n -c 4 -j 2 -T 8 -f "$dir/query.sql" scen >"$dir/query.log" 2>&1 || true
    wait $inserter || true
    wait $vacuumer || true
    local inserted failed
    inserted=$(awk '/number of transactions actually processed/ { split($NF, a, "/"); print a[1] }' "$dir/insert.log")
    failed=$(cat "$dir/insert.log" "$dir/query.log" "$dir/vacuum.log" | grep -c "ERROR" || true)
    check "concurrency[$strategy]: no client errors" 0 "$failed"
    check "concurrency[$strategy]: committed rows = build rows + 20 x transactions" $((10000 + 20 * inserted)) "$(q "$p" -c "SELECT count(*) FROM t")"
    check "concurrency[$strategy]: every committed row is found through the index" 0 "$(q "$p" -c "SELECT unfindable()")"
    check "concurrency[$strategy]: index equals a sequential scan" 0 "$(q "$p" -c "SELECT differences()")"
    check "concurrency[$strategy]: mih_verify" t "$(verify_ok "$p")"
    cluster_destroy conc
}

scenario_vacuum() {
    local strategy=$1 p=$((BASE_PORT + 4))
    cluster_destroy vac
    cluster_start vac "$p"
    setup_db "$p"
    q "$p" -c "INSERT INTO t (code) SELECT hashlike() FROM generate_series(1, 100000)" \
        -c "CREATE INDEX t_code_idx ON t USING mih (code) WITH (strategy = $strategy)" >/dev/null
    local pages_before entries_before radius_before size_before
    read -r pages_before entries_before radius_before < <(q "$p" -F ' ' -c "SELECT data_pages, entries, max_radius FROM mih_verify('t_code_idx')")
    size_before=$(q "$p" -c "SELECT pg_relation_size('t_code_idx')")
    # Delete about 90%: the rows of 36 of the 40 centres (whole lists empty out).
    q "$p" -c "DELETE FROM t WHERE EXISTS (SELECT 1 FROM generate_series(0, 35) k
                 WHERE hamming(code, hashtextextended('centre ' || k, 0)::hashcode) <= 24)" \
        -c "VACUUM t" >/dev/null
    local pages_after entries_after radius_after
    read -r pages_after entries_after radius_after < <(q "$p" -F ' ' -c "SELECT data_pages, entries, max_radius FROM mih_verify('t_code_idx')")
    if [ "$entries_after" -lt $((entries_before / 5)) ]; then ok_ "vacuum[$strategy]: entries a search checks $entries_before -> $entries_after"; else not_ok "vacuum[$strategy]: entries did not shrink ($entries_before -> $entries_after)"; fi
    if [ "$pages_after" -lt "$pages_before" ]; then ok_ "vacuum[$strategy]: data pages $pages_before -> $pages_after"; else not_ok "vacuum[$strategy]: pages did not shrink ($pages_before -> $pages_after)"; fi
    if [ "$strategy" = lists ]; then
        if [ "$radius_after" -le "$radius_before" ]; then ok_ "vacuum[$strategy]: largest covering radius $radius_before -> $radius_after"; else not_ok "vacuum[$strategy]: radius grew ($radius_before -> $radius_after)"; fi
    else
        check "vacuum[$strategy]: the merge dropped every tombstone" "0 2" \
            "$(q "$p" -F ' ' -c "SELECT tombstones, generation FROM mih_verify('t_code_idx')")"
    fi
    check "vacuum[$strategy]: index equals a sequential scan" 0 "$(q "$p" -c "SELECT differences()")"
    check "vacuum[$strategy]: mih_verify" t "$(verify_ok "$p")"
    # A later VACUUM, once no snapshot predates the unlinking, recycles the unlinked pages;
    # inserts reuse them before growing the file.
    q "$p" -c "SELECT pg_current_xact_id()" >/dev/null
    q "$p" -c "VACUUM t" >/dev/null
    local size_mid size_after
    size_mid=$(q "$p" -c "SELECT pg_relation_size('t_code_idx')")
    q "$p" -c "INSERT INTO t (code) SELECT hashlike() FROM generate_series(1, 40000)" >/dev/null
    size_after=$(q "$p" -c "SELECT pg_relation_size('t_code_idx')")
    # (A merge writes its new tables beside the old ones, which stay readable until no
    # snapshot needs them: the file grows by the new tables once, then the old pages serve.)
    check "vacuum[$strategy]: inserts reuse recycled pages (index size $size_before -> $size_mid -> $size_after bytes)" t \
        "$(q "$p" -c "SELECT $size_after = $size_mid AND $size_after <= $size_before * 1.1")"
    check "vacuum[$strategy]: exact after reuse" 0 "$(q "$p" -c "SELECT differences()")"
    check "vacuum[$strategy]: mih_verify after reuse" t "$(verify_ok "$p")"
    cluster_destroy vac
}

# stop_long PORT WHAT STATEMENT...: a session runs the statements (the last a long one); another
# cancels it with pg_cancel_backend, then a new one is ended by pg_terminate_backend: each
# takes effect within 20 s with PostgreSQL's own error.
stop_long() {
    local p=$1 what=$2 kind
    shift 2
    local cmds=() s
    for s in "$@"; do cmds+=(-c "$s"); done
    for kind in cancel terminate; do
        local log=$ICS_RUN_DIR/sec/$kind.log start elapsed
        start=$(date +%s)
        PGAPPNAME="long_$kind" "$PG_BIN/psql" -h 127.0.0.1 -p "$p" -U postgres -X -d scen -tA \
            "${cmds[@]}" >"$log" 2>&1 &
        local client=$!
        local pid=""
        for _ in $(seq 1 100); do
            pid=$(q "$p" -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'long_$kind' AND state = 'active'")
            [ -n "$pid" ] && break
            sleep 0.1
        done
        sleep 1
        q "$p" -c "SELECT pg_${kind}_backend($pid)" >/dev/null
        wait $client || true
        elapsed=$(($(date +%s) - start))
        if [ "$kind" = cancel ]; then
            check "security: pg_cancel_backend stops $what (client error)" 1 "$(grep -c 'canceling statement due to user request' "$log")"
        else
            check "security: pg_terminate_backend ends a backend in $what" 1 "$(grep -c 'terminating connection due to administrator command' "$log")"
        fi
        if [ "$elapsed" -lt 20 ]; then ok_ "security: $kind of $what took effect in ${elapsed}s"; else not_ok "security: $kind of $what took ${elapsed}s"; fi
    done
}

scenario_security() {
    local p=$((BASE_PORT + 5))
    cluster_destroy sec
    # RUST_BACKTRACE in the postmaster's environment (every backend inherits it).
    PG_EXTRA_ENV="RUST_BACKTRACE=1" cluster_start sec "$p" "max_connections = 40"
    setup_db "$p"
    local fixtures=$ICS_RUN_DIR/sec/fixtures
    install -d -m 0755 "$fixtures" && cp tests/fixtures/encoder/*.onnx tests/fixtures/encoder/corrupt.png tests/fixtures/encoder/tiny.png "$fixtures"/ && chmod -R a+rX "$fixtures"
    # The slow model's Loop is off the operator list: a superuser allows it for this database.
    q "$p" -c "ALTER DATABASE scen SET ics_hash.extra_operators = 'Loop'" >/dev/null
    q "$p" -c "SELECT name FROM ics_model_load('slow', pg_read_binary_file('$fixtures/slow_features.onnx'))" >/dev/null

    # A run of 10^9 loop iterations (hours), stopped by pg_cancel_backend and then by
    # pg_terminate_backend from another session.
    stop_long "$p" "a long run" "SELECT ics_encode('{1e9,0,0,0}'::real[], 'slow')"
    # A long ics_encode_batch (4096 images through a model with a 3072 x 4096 MatMul, in
    # chunks of 8: the backend runs a chunk while the decoders decode the next) stops the same
    # way (tests/regress/sql/encoder_pipeline.sql: a statement timeout, then the next statement).
    q "$p" -c "SELECT name FROM ics_model_load('heavy', pg_read_binary_file('$fixtures/heavy_image.onnx'))" >/dev/null
    q "$p" -c "CREATE TABLE long_batch AS SELECT array_agg(pg_read_binary_file('$fixtures/tiny.png')) AS imgs FROM generate_series(1, 4096)" >/dev/null
    stop_long "$p" "a long batch" "SET ics_hash.batch_size = 8" "SELECT cardinality(ics_encode_batch(imgs, 'heavy')) FROM long_batch"
    check "security: the server stayed up" t "$(q "$p" -c "SELECT ics_encode('{3,-1,2,-0.5}'::real[], 'slow') = 'a5'")"

    # Twelve sessions load one name at once: one wins, eleven get 42710 (never 23505).
    local i
    for i in $(seq 1 12); do
        "$PG_BIN/psql" -h 127.0.0.1 -p "$p" -U postgres -X -d scen -tA -v VERBOSITY=sqlstate \
            -c "SELECT name FROM ics_model_load('race', pg_read_binary_file('$fixtures/tiny_features.onnx'))" \
            >"$ICS_RUN_DIR/sec/race.$i.log" 2>&1 &
    done
    wait
    check "security: concurrent loads of one name: one succeeds" 1 "$(cat "$ICS_RUN_DIR"/sec/race.*.log | grep -c '^race$')"
    check "security: concurrent loads of one name: eleven 42710" 11 "$(cat "$ICS_RUN_DIR"/sec/race.*.log | grep -c '42710')"

    # An error PostgreSQL raises inside Rust code (here: a statement timeout during a run)
    # carries no Rust backtrace to the client, though the server has RUST_BACKTRACE=1.
    local err
    err=$("$PG_BIN/psql" -h 127.0.0.1 -p "$p" -U postgres -X -d scen -tA -v VERBOSITY=verbose \
        -c "SET statement_timeout = '300ms'" -c "SELECT ics_encode('{1e9,0,0,0}'::real[], 'slow')" 2>&1 || true)
    check "security: the timeout error reached the client" 1 "$(grep -c 'canceling statement due to statement timeout' <<<"$err")"
    check "security: no Rust backtrace in what the client sees" 0 "$(grep -ciE 'backtrace|rust_begin_unwind|\.rs:[0-9]+' <<<"$err")"

    # User errors reach the client as message, detail and hint only: those ics_hash raises
    # itself (bad hashcode text, a corrupt image) and one PostgreSQL raises inside a call into
    # it from Rust (a non-integer type modifier, rejected by ArrayGetIntegerTypmods), which is
    # the kind pgrx attaches a captured backtrace to. Default verbosity shows DETAIL, where the
    # backtrace would go (verbose adds a LOCATION line naming the .rs file, no backtrace).
    q "$p" -c "SELECT name FROM ics_model_load('tiny', pg_read_binary_file('$fixtures/tiny_image.onnx'))" >/dev/null
    local what sql expected
    for what in hashcode image typmod; do
        case $what in
        hashcode)
            sql="SELECT 'zz'::hashcode"
            expected='ERROR:  invalid input syntax for type hashcode: "zz"' ;;
        image)
            sql="SELECT ics_encode(pg_read_binary_file('$fixtures/corrupt.png'), 'tiny')"
            expected='ERROR:  corrupt PNG image: ' ;;
        typmod)
            sql="SELECT NULL::hashcode('x')"
            expected='ERROR:  invalid input syntax for type integer: "x"' ;;
        esac
        err=$("$PG_BIN/psql" -h 127.0.0.1 -p "$p" -U postgres -X -d scen -tA -v VERBOSITY=default \
            -c "$sql" 2>&1 || true)
        check "security: the $what error reached the client" 1 "$(grep -cF "$expected" <<<"$err")"
        check "security: no Rust backtrace in the $what error" 0 "$(grep -ciE 'backtrace|rust_begin_unwind|\.rs:[0-9]+|^ +[0-9]+: ' <<<"$err")"
        if [ "${#err}" -lt 600 ] && [ "$(wc -l <<<"$err")" -le 6 ]; then
            ok_ "security: the $what error is short (${#err} characters)"
        else
            not_ok "security: the $what error is ${#err} characters, $(wc -l <<<"$err") lines: $(head -c 300 <<<"$err")"
        fi
    done
    cluster_destroy sec
}

echo "TAP version 13"
for s in "${scenarios[@]}"; do
    if [ "$s" = security ]; then
        scenario_security
    else
        for strategy in "${strategies[@]}"; do
            "scenario_$s" "$strategy"
        done
    fi
done
tap_finish "cluster scenarios"

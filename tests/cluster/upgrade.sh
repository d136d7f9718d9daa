#!/usr/bin/env bash
# Upgrade scenarios with real PostgreSQL processes (TAP-style output):
#   extension   on the major of ICS_PG_MAJOR (default 15), from each earlier release (0.1.0,
#               0.2.0): ics_hash installed from its script as released (sql/versions/),
#               tables with codes, mih indexes of both strategies, a model and a view over
#               ics_encode_batch made under it, then ALTER EXTENSION ics_hash UPDATE:
#               the extension's objects equal a fresh CREATE EXTENSION's (every member with
#               its definition, comment and grants, from pg_dump --binary-upgrade), every
#               index still equals a sequential scan and passes mih_verify, inserts, VACUUM
#               and REINDEX work, and ics_encode gives the codes it gave before
#   pg_upgrade  PostgreSQL 15 -> 18 with pg_upgrade, in copy and in link mode: a 15 cluster
#               that is a shard of a sharded table (scripts/shards.sh, coordinator on 15) also
#               holding indexes of both strategies and a model is upgraded; on 18 every index
#               equals a sequential scan, mih_verify is clean, ics_encode gives the codes it
#               gave on 15, and the coordinator's sharded k-NN and radius results are those it
#               had before the upgrade
# Ports 28860-28863 (ICS_UPGRADE_PORT moves them). Usage: tests/cluster/upgrade.sh [scenario...]
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE_PORT=${ICS_UPGRADE_PORT:-28860}
export ICS_SHARDS_PORT=$((BASE_PORT + 1)) ICS_SHARDS_NAME=shardu ICS_SHARDS_COORD=coordu
source scripts/shards.sh

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(extension pg_upgrade)
source tests/cluster/tap.sh
# The releases whose install scripts sql/versions/ keeps as they were released; each is
# installed, updated to this version and compared with a fresh install.
OLD_VERSIONS=(0.1.0 0.2.0)

# fixtures FOLDER: the encoder fixtures this file uses, where the servers' OS user reads them.
fixtures() {
    install -d -m 0755 "$1"
    cp tests/fixtures/encoder/tiny_features.onnx tests/fixtures/encoder/golden_features.csv "$1"/
    chmod -R a+rX "$1"
}

# fill PORT DB FIXTURES: in a database whose ics_hash is already created, tables of codes
# (with NULLs) under mih indexes of both strategies, a feature model and the codes it gives,
# and the functions the checks use.
fill() {
    psql_at "$1" -d "$2" -v fx="$3" >/dev/null <<'SQL'
-- Hash-like 64-bit codes: 40 centres, each bit flipped with probability 1/16 (many ties).
CREATE FUNCTION rand64() RETURNS bigint LANGUAGE sql VOLATILE
    RETURN ((random() * 4294967295)::bigint << 32) # (random() * 4294967295)::bigint;
CREATE FUNCTION hashlike() RETURNS hashcode LANGUAGE sql VOLATILE
    RETURN (hashtextextended('centre ' || (random() * 39)::int, 0)
            # (rand64() & rand64() & rand64() & rand64()))::hashcode;
CREATE TABLE t_lists (id bigserial PRIMARY KEY, code hashcode(64));
CREATE TABLE t_substrings (id bigserial PRIMARY KEY, code hashcode(64));
INSERT INTO t_lists (code) SELECT CASE WHEN i % 50 = 0 THEN NULL ELSE hashlike() END FROM generate_series(1, 8000) i;
INSERT INTO t_substrings (code) SELECT CASE WHEN i % 50 = 0 THEN NULL ELSE hashlike() END FROM generate_series(1, 8000) i;
CREATE INDEX t_lists_idx ON t_lists USING mih (code) WITH (strategy = lists);
CREATE INDEX t_substrings_idx ON t_substrings USING mih (code) WITH (strategy = substrings);
-- Rows after the build: the substring tables' tail, the lists' appended entries.
INSERT INTO t_lists (code) SELECT hashlike() FROM generate_series(1, 500);
INSERT INTO t_substrings (code) SELECT hashlike() FROM generate_series(1, 500);
-- Differences between a table's mih index and a sequential scan over 20 queries: k-NN
-- distances (k = 10, 100) and radius results (r = 0, 3, 8).
CREATE FUNCTION differences(tab regclass) RETURNS int LANGUAGE plpgsql AS $$
DECLARE qc hashcode; k int; r int; a text; b text; bad int := 0;
BEGIN
    FOR qc IN EXECUTE format('(SELECT code FROM %s WHERE code IS NOT NULL ORDER BY id LIMIT 10)
                              UNION ALL SELECT hashlike() FROM generate_series(1, 10)', tab) LOOP
        FOREACH k IN ARRAY ARRAY[10, 100] LOOP
            PERFORM set_config('enable_seqscan', 'off', true);
            EXECUTE format('SELECT array_agg(d)::text FROM (SELECT code <~> $1 AS d FROM %s ORDER BY code <~> $1 LIMIT %s) s', tab, k) INTO a USING qc;
            PERFORM set_config('enable_seqscan', 'on', true);
            PERFORM set_config('enable_indexscan', 'off', true);
            EXECUTE format('SELECT array_agg(d)::text FROM (SELECT code <~> $1 AS d FROM %s ORDER BY code <~> $1 LIMIT %s) s', tab, k) INTO b USING qc;
            PERFORM set_config('enable_indexscan', 'on', true);
            IF a IS DISTINCT FROM b THEN bad := bad + 1; END IF;
        END LOOP;
        FOREACH r IN ARRAY ARRAY[0, 3, 8] LOOP
            PERFORM set_config('enable_seqscan', 'off', true);
            EXECUTE format('SELECT array_agg(id ORDER BY id)::text FROM %s WHERE hamming_within(code, $1, %s)', tab, r) INTO a USING qc;
            PERFORM set_config('enable_seqscan', 'on', true);
            PERFORM set_config('enable_indexscan', 'off', true);
            PERFORM set_config('enable_bitmapscan', 'off', true);
            EXECUTE format('SELECT array_agg(id ORDER BY id)::text FROM %s WHERE hamming_within(code, $1, %s)', tab, r) INTO b USING qc;
            PERFORM set_config('enable_indexscan', 'on', true);
            PERFORM set_config('enable_bitmapscan', 'on', true);
            IF a IS DISTINCT FROM b THEN bad := bad + 1; END IF;
        END LOOP;
    END LOOP;
    RETURN bad;
END $$;
-- Whether every index is what it should be: exact, verified, of its strategy.
CREATE FUNCTION all_exact() RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(format('%s:%s/%s/%s', s, differences(('t_' || s)::regclass),
                             v.ok AND v.tids = v.heap_rows, v.strategy), ' ' ORDER BY s)
      FROM unnest(ARRAY['lists', 'substrings']) s,
           LATERAL mih_verify(('t_' || s || '_idx')::regclass) v
$$;
SELECT name FROM ics_model_load('tiny_features', pg_read_binary_file(:'fx' || '/tiny_features.onnx'));
CREATE TABLE golden (features real[], code hashcode);
\set golden :fx '/golden_features.csv'
COPY golden FROM :'golden' (FORMAT csv, HEADER);
-- What the model gives now, to compare with what it gives later.
CREATE TABLE codes_before AS SELECT features, ics_encode(features, 'tiny_features') AS code FROM golden;
SQL
}
EXACT="lists:0/t/lists substrings:0/t/substrings"
# Rows whose code the model no longer gives as it did (the golden codes, then codes_before).
ENCODE_CHANGES="SELECT count(*) FILTER (WHERE ics_encode(g.features, 'tiny_features') IS DISTINCT FROM g.code)
                     + count(*) FILTER (WHERE ics_encode(b.features, 'tiny_features') IS DISTINCT FROM b.code)
                  FROM golden g JOIN codes_before b USING (features)"

# objects PORT DB: the extension's objects, normalised: pg_dump's binary-upgrade dump, which
# (unlike a plain dump) writes every member object of the extension with its definition,
# comment and grants; without what differs between any two databases (OID assignments, OIDs,
# transaction ids, the dump's random \restrict key, comments and settings).
objects() {
    "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$1" -U postgres --schema-only --binary-upgrade --no-owner "$2" |
        grep -vE '^SELECT pg_catalog\.binary_upgrade_set_next_|^--|^$|^SET |^SELECT pg_catalog\.set_config|^\\(un)?restrict ' |
        sed -E "s/'\{[0-9,]+\}'/'{oids}'/g; s/oid = '[0-9]+'/oid = 'N'/"
}

scenario_extension() {
    local p=$BASE_PORT name=upgext$PG_MAJOR
    local default
    default=$(sed -nE "s/^default_version = '(.*)'/\1/p" "$("$PG_CONFIG" --sharedir)/extension/ics_hash.control")
    cluster_destroy "$name"
    cluster_start "$name" "$p"
    local fx=$ICS_RUN_DIR/$name/fixtures
    fixtures "$fx"
    psql_at "$p" -d postgres -c "CREATE DATABASE fresh" >/dev/null
    psql_at "$p" -d fresh -c "CREATE EXTENSION ics_hash" >/dev/null
    check "extension[pg$PG_MAJOR]: a fresh CREATE EXTENSION installs the default version" "$default" \
        "$(psql_at "$p" -d fresh -tA -c "SELECT extversion FROM pg_extension WHERE extname = 'ics_hash'")"
    local old
    for old in "${OLD_VERSIONS[@]}"; do
        extension_from "$old" "$p" "$name" "$fx" "$default"
    done
    cluster_destroy "$name"
}

# extension_from OLD PORT NAME FIXTURES DEFAULT: in the running cluster NAME, ics_hash OLD
# installed from its released script, filled, updated to DEFAULT and checked against the
# database "fresh" (a fresh CREATE EXTENSION).
extension_from() {
    local old=$1 p=$2 name=$3 fx=$4 default=$5
    local tag="extension[pg$PG_MAJOR, $old]" v=${1//./}
    local bare=bare_$v data=data_$v db
    for db in "$bare" "$data"; do
        psql_at "$p" -d postgres -c "CREATE DATABASE $db" >/dev/null
    done
    check "$tag: an update path $old -> $default" 1 \
        "$(psql_at "$p" -d fresh -tA -c "SELECT count(*) FROM pg_extension_update_paths('ics_hash') WHERE source = '$old' AND target = '$default' AND path IS NOT NULL")"

    # Every C function of the released script must still be in this library (CREATE FUNCTION
    # looks each symbol up), else neither its install nor its update could run.
    local err
    if err=$(psql_at "$p" -d "$bare" -c "CREATE EXTENSION ics_hash VERSION '$old'" 2>&1) &&
        err=$(psql_at "$p" -d "$data" -c "CREATE EXTENSION ics_hash VERSION '$old'" 2>&1); then
        ok_ "$tag: $old installs from its released script with this library"
    else
        not_ok "$tag: CREATE EXTENSION ics_hash VERSION '$old': $err"
    fi
    fill "$p" "$data" "$fx"
    local exact_before
    exact_before=$(psql_at "$p" -d "$data" -tA -c "SELECT all_exact()")
    check "$tag: under $old both indexes equal a sequential scan and verify" "$EXACT" "$exact_before"
    # A view over an ics_encode_batch form of the old version: the update must keep it (the
    # function it calls keeps its OID) and it must still work.
    psql_at "$p" -d "$data" -c "CREATE VIEW batch_view AS SELECT ics_encode_batch(NULL::bytea[], 'tiny_features') IS NULL AS codes" >/dev/null

    for db in "$bare" "$data"; do
        if err=$(psql_at "$p" -d "$db" -c "ALTER EXTENSION ics_hash UPDATE" 2>&1); then
            ok_ "$tag: ALTER EXTENSION ics_hash UPDATE ($db database)"
        else
            not_ok "$tag: ALTER EXTENSION ics_hash UPDATE ($db database): $err"
        fi
    done
    check "$tag: the update reaches the default version" "$default" \
        "$(psql_at "$p" -d "$data" -tA -c "SELECT extversion FROM pg_extension WHERE extname = 'ics_hash'")"
    local diffs=$ICS_RUN_DIR/$name.$v.objects.diff
    if diff -u <(objects "$p" fresh) <(objects "$p" "$bare") >"$diffs"; then
        ok_ "$tag: after the update the extension's objects equal a fresh install's ($(objects "$p" fresh | grep -c '^ALTER EXTENSION ics_hash ADD') members)"
    else
        not_ok "$tag: the updated extension differs from a fresh install (- fresh, + updated; $diffs):"
        head -n 40 "$diffs" | sed 's/^/#   /'
    fi
    check "$tag: a view over ics_encode_batch survives the update" t \
        "$(psql_at "$p" -d "$data" -tA -c "SELECT codes FROM batch_view")"

    check "$tag: after the update both indexes equal a sequential scan and verify" "$EXACT" \
        "$(psql_at "$p" -d "$data" -tA -c "SELECT all_exact()")"
    check "$tag: after the update the model gives the same codes" 0 \
        "$(psql_at "$p" -d "$data" -tA -c "$ENCODE_CHANGES")"
    check "$tag: after the update the model is listed" "tiny_features 32" \
        "$(psql_at "$p" -d "$data" -tA -F ' ' -c "SELECT name, bits FROM ics_models")"
    psql_at "$p" -d "$data" >/dev/null <<'SQL'
INSERT INTO t_lists (code) SELECT hashlike() FROM generate_series(1, 2000);
INSERT INTO t_substrings (code) SELECT hashlike() FROM generate_series(1, 2000);
DELETE FROM t_lists WHERE id % 5 = 0;
DELETE FROM t_substrings WHERE id % 5 = 0;
VACUUM t_lists, t_substrings;
SQL
    check "$tag: inserts, deletes and VACUUM after the update: still exact" "$EXACT" \
        "$(psql_at "$p" -d "$data" -tA -c "SELECT all_exact()")"
    psql_at "$p" -d "$data" -c "REINDEX TABLE t_lists" -c "REINDEX TABLE t_substrings" >/dev/null
    check "$tag: REINDEX after the update: still exact" "$EXACT" \
        "$(psql_at "$p" -d "$data" -tA -c "SELECT all_exact()")"
}

# One pg_upgrade run from 15 to 18 in MODE (copy or link).
scenario_pg_upgrade_mode() {
    local mode=$1
    local coord=$ICS_SHARDS_PORT shard=$((ICS_SHARDS_PORT + 1)) spare=$((ICS_SHARDS_PORT + 2))
    local old=${ICS_SHARDS_NAME}1 new=pgu18
    use_pg 15
    shards_stop 1
    cluster_destroy "$new"
    shards_start 1 64
    local fx=$ICS_RUN_DIR/$old/fixtures
    fixtures "$fx"
    # On the shard: its share of the sharded table, and a database like the extension test's.
    psql_at "$coord" -d "$SHARDS_DB" >/dev/null <<'SQL'
CREATE FUNCTION rand64() RETURNS bigint LANGUAGE sql VOLATILE
    RETURN ((random() * 4294967295)::bigint << 32) # (random() * 4294967295)::bigint;
INSERT INTO images
SELECT i, (hashtextextended('centre ' || (random() * 39)::int, 0) # (rand64() & rand64() & rand64() & rand64()))::hashcode
  FROM generate_series(1, 20000) i;
SQL
    psql_at "$shard" -d postgres -c "CREATE DATABASE scen" >/dev/null
    psql_at "$shard" -d scen -c "CREATE EXTENSION ics_hash" >/dev/null
    fill "$shard" scen "$fx"
    # The coordinator's sharded k-NN and radius results for 20 shard rows' codes.
    local sig
    sig=$(cat <<'SQL'
SELECT count(*) || ' ' || md5(string_agg(r, ',' ORDER BY n)) FROM (
    SELECT row_number() OVER () AS n,
           (SELECT array_agg(code <~> c.code)::text FROM (SELECT code FROM images ORDER BY code <~> c.code LIMIT 25) s) ||
           (SELECT array_agg(id ORDER BY id)::text FROM images WHERE hamming_within(code, c.code, 4)) AS r
    FROM (SELECT code FROM images ORDER BY id LIMIT 20) c) x
SQL
)
    local sharded_before exact_before shard_plan
    sharded_before=$(psql_at "$coord" -d "$SHARDS_DB" -tA -c "$sig")
    exact_before=$(psql_at "$shard" -d scen -tA -c "SELECT all_exact()")
    check "pg_upgrade[$mode]: on 15 both indexes equal a sequential scan and verify" "$EXACT" "$exact_before"
    local ver
    ver=$(psql_at "$shard" -d scen -tA -c "SELECT extversion FROM pg_extension WHERE extname = 'ics_hash'")
    local old_bin=$PG_BIN
    # PostgreSQL 15.20 as packaged here keeps an internal attribute option, pg_attver, on every
    # column; its own pg_dump leaves it out, but 18's pg_dump (which pg_upgrade runs) copies it
    # and 18 rejects it ("unrecognized parameter"), so any table fails the schema restore.
    # Not ics_hash's: the old cluster's user columns lose the option before the upgrade.
    local db
    for db in $(psql_at "$shard" -d postgres -tA -c "SELECT datname FROM pg_database WHERE datallowconn"); do
        psql_at "$shard" -d "$db" -c "SET allow_system_table_mods = on" -c "
            UPDATE pg_attribute SET attoptions = (SELECT array_agg(o) FROM unnest(attoptions) o WHERE o NOT LIKE 'pg_attver=%')
             WHERE attrelid >= 16384 AND attoptions::text LIKE '%pg_attver=%'" >/dev/null
    done
    cluster_stop "$old"

    use_pg 18
    # initdb of 18 turns data checksums on by default; pg_upgrade needs the old cluster's setting.
    PG_INITDB_EXTRA=--no-data-checksums cluster_init "$new" "$shard"
    local work=$ICS_RUN_DIR/$new/work
    install -d -m 0700 -o "$PG_OS_USER" "$work" 2>/dev/null || mkdir -p "$work"
    local log=$ICS_RUN_DIR/$new/pg_upgrade.log
    if (cd "$work" && as_pg "$PG_BIN/pg_upgrade" --"$mode" -U postgres \
        -b "$old_bin" -B "$PG_BIN" -d "$ICS_RUN_DIR/$old/data" -D "$ICS_RUN_DIR/$new/data" \
        -p "$shard" -P "$spare" -s "$work") >"$log" 2>&1; then
        ok_ "pg_upgrade[$mode]: pg_upgrade 15 -> 18 --$mode"
    else
        not_ok "pg_upgrade[$mode]: pg_upgrade 15 -> 18 --$mode failed ($log):"
        tail -n 20 "$log" | sed 's/^/#   /'
    fi
    if [ "$mode" = link ]; then
        # The index files are hard links into the old data directory, not copies.
        local idxfile
        idxfile=$(find "$ICS_RUN_DIR/$new/data/base" -type f -links +1 | wc -l)
        if [ "$idxfile" -gt 0 ]; then ok_ "pg_upgrade[link]: relation files are linked ($idxfile files)"; else not_ok "pg_upgrade[link]: no linked relation file"; fi
    fi
    cluster_start "$new" "$shard"
    check "pg_upgrade[$mode]: the upgraded shard runs PostgreSQL 18" 18 \
        "$(psql_at "$shard" -d scen -tA -c "SELECT current_setting('server_version_num')::int / 10000")"
    check "pg_upgrade[$mode]: the extension version is kept" "$ver" \
        "$(psql_at "$shard" -d scen -tA -c "SELECT extversion FROM pg_extension WHERE extname = 'ics_hash'")"
    check "pg_upgrade[$mode]: on 18 both indexes equal a sequential scan and verify" "$EXACT" \
        "$(psql_at "$shard" -d scen -tA -c "SELECT all_exact()")"
    check "pg_upgrade[$mode]: on 18 the model gives the codes it gave on 15" 0 \
        "$(psql_at "$shard" -d scen -tA -c "$ENCODE_CHANGES")"
    check "pg_upgrade[$mode]: the shard's index verifies on 18" t \
        "$(psql_at "$shard" -d "$SHARDS_DB" -tA -c "SELECT ok AND tids = heap_rows FROM mih_verify('images_code_idx')")"
    # The coordinator (still 15) queries the upgraded shard through postgres_fdw; the shard
    # plans the pushed-down queries with its upgraded index.
    check "pg_upgrade[$mode]: the coordinator's sharded results are those before the upgrade" "$sharded_before" \
        "$(psql_at "$coord" -d "$SHARDS_DB" -tA -c "$sig")"
    psql_at "$shard" -d scen >/dev/null <<'SQL'
INSERT INTO t_lists (code) SELECT hashlike() FROM generate_series(1, 2000);
INSERT INTO t_substrings (code) SELECT hashlike() FROM generate_series(1, 2000);
DELETE FROM t_lists WHERE id % 5 = 0;
DELETE FROM t_substrings WHERE id % 5 = 0;
VACUUM t_lists, t_substrings;
SQL
    check "pg_upgrade[$mode]: inserts, deletes and VACUUM on 18: still exact" "$EXACT" \
        "$(psql_at "$shard" -d scen -tA -c "SELECT all_exact()")"
    cluster_destroy "$new"
    use_pg 15
    shards_stop 1
}

scenario_pg_upgrade() {
    scenario_pg_upgrade_mode copy
    scenario_pg_upgrade_mode link
}

echo "TAP version 13"
for s in "${scenarios[@]}"; do "scenario_$s"; done
tap_finish "upgrade scenarios"

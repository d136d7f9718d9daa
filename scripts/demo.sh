#!/usr/bin/env bash
# The main job, end to end on a private PostgreSQL 15 cluster (the README's first command).
#
# Today: build and install the extension, start a private cluster (own data directory, port
# and OS user), CREATE EXTENSION, store 200,000 hash-like 64-bit codes (a few dozen centres
# with a few bits flipped, as learned codes look), and search them by Hamming distance.
# The trained model, ics_encode() and the mih index join this script as they land.
# The cluster is left running; a second run reuses everything and takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

PORT=${ICS_DEMO_PORT:-28816}
ROWS=${ICS_DEMO_ROWS:-200000}
started=$(date +%s)

step "build and install the extension (release; minutes the first time)"
install_extension
ok "installed into $($PG_CONFIG --pkglibdir)"

step "private PostgreSQL 15 cluster on 127.0.0.1:$PORT"
cluster_start demo "$PORT"
ok "running from $ICS_RUN_DIR/demo/data"
psql_demo() { psql_at "$PORT" -d ics_demo "$@"; }

step "CREATE EXTENSION ics_hash (in a fresh database ics_demo)"
# Re-created each run so the demo always shows the extension just built.
psql_at "$PORT" -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS ics_demo WITH (FORCE)" -c "CREATE DATABASE ics_demo"
psql_demo -c "CREATE EXTENSION ics_hash"
psql_demo -tA -c "SELECT extname || ' ' || extversion FROM pg_extension WHERE extname = 'ics_hash'" | sed 's/^/    ok /'

step "store $ROWS hash-like 64-bit codes"
t0=$(date +%s%N)
psql_demo <<SQL
CREATE TABLE codes (id bigint PRIMARY KEY, centre int NOT NULL, code hashcode(64) NOT NULL);
-- A uniformly random 64-bit word; the AND of five has each bit set with probability 1/32.
CREATE FUNCTION rand64() RETURNS bigint LANGUAGE sql VOLATILE
    RETURN ((random() * 4294967295)::bigint << 32) # (random() * 4294967295)::bigint;
-- 40 centres; each row flips each bit of its centre with probability 1/32.
INSERT INTO codes
SELECT i, i % 40,
       (hashtextextended('centre ' || (i % 40), 0) # (rand64() & rand64() & rand64() & rand64() & rand64()))::hashcode
FROM generate_series(1, $ROWS) i;
ANALYZE codes;
SQL
t1=$(date +%s%N)
ok "$ROWS rows in $(((t1 - t0) / 1000000)) ms ($(psql_demo -tA -c "SELECT pg_size_pretty(pg_table_size('codes'))") on disk)"

step "query: the 10 nearest codes to a code near centre 7"
psql_demo <<'SQL'
\timing on
SELECT id, centre, code, hamming(code, q) AS distance
FROM codes, (SELECT (code::bigint # 3)::hashcode AS q FROM codes WHERE id = 7) AS probe
ORDER BY hamming(code, q)
LIMIT 10;
SQL

step "query: every code within Hamming distance 2 of that code, by centre"
psql_demo <<'SQL'
SELECT centre, count(*) AS within_2
FROM codes, (SELECT code AS q FROM codes WHERE id = 7) AS probe
WHERE hamming_within(code, q, 2)
GROUP BY centre ORDER BY within_2 DESC;
SQL

step "done in $(($(date +%s) - started)) s"
info "The cluster keeps running. Connect:  psql -h 127.0.0.1 -p $PORT -U postgres ics_demo"
info "Stop it:                             make clean-clusters"

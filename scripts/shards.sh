#!/usr/bin/env bash
# Sharded exact Hamming search on one machine, with PostgreSQL's own distributed machinery
# (postgres_fdw): N shard clusters, each with its own table and mih index, and a coordinator
# whose partitioned table has one foreign-table partition per shard (hash partitioning on id).
# The README's "Sharding" section explains the layout and what runs where.
#
#   scripts/shards.sh start [N] [BITS]   N shards (default 3) of hashcode(BITS) (default 64)
#   scripts/shards.sh stop               stop and remove the coordinator and the shards
#
# Clusters (scripts/common.sh: private, loopback only): coord on port P, shard1..shardN on
# P+1..P+N, P = ICS_SHARDS_PORT (default 28840); database ics_shards on every one.
#   psql -h 127.0.0.1 -p 28840 -U postgres ics_shards
#   INSERT INTO images VALUES (1, '8f3a0c5e91b2d477');             -- routed to its shard
#   SELECT id, code <~> q AS d FROM images ORDER BY code <~> q LIMIT 10;   -- every shard's mih
#   SELECT id FROM images WHERE hamming_within(code, q, 3);
# Sourced (tests, benchmarks), it only defines shards_start and shards_stop; ICS_SHARDS_NAME
# (default shard) prefixes the shard clusters' names, ICS_SHARDS_COORD (default coord) names
# the coordinator.
set -euo pipefail
_shards_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$_shards_dir/common.sh"

SHARDS_PORT=${ICS_SHARDS_PORT:-28840}
SHARDS_NAME=${ICS_SHARDS_NAME:-shard}
SHARDS_COORD=${ICS_SHARDS_COORD:-coord}
SHARDS_DB=ics_shards

# shards_start N BITS [postgresql.conf lines...]: start (initialising once) the coordinator
# and N shards, and (re)create the database ics_shards on each with the layout above.
shards_start() {
    local n=${1:-3} bits=${2:-64}
    shift 2 || shift $#
    local i port
    for i in $(seq 1 "$n"); do
        port=$((SHARDS_PORT + i))
        cluster_start "$SHARDS_NAME$i" "$port" "$@"
        psql_at "$port" -d postgres -c "SET client_min_messages = warning" \
            -c "DROP DATABASE IF EXISTS $SHARDS_DB WITH (FORCE)" -c "CREATE DATABASE $SHARDS_DB" >/dev/null
        # The extension in the same schema (public) as on the coordinator: postgres_fdw
        # sends schema-qualified names (public.hashcode, OPERATOR(public.<~>)).
        psql_at "$port" -d "$SHARDS_DB" >/dev/null <<SQL
CREATE EXTENSION ics_hash SCHEMA public;
CREATE TABLE images (id bigint PRIMARY KEY, code hashcode($bits));
CREATE INDEX images_code_idx ON images USING mih (code);
SQL
    done
    cluster_start "$SHARDS_COORD" "$SHARDS_PORT" "$@"
    psql_at "$SHARDS_PORT" -d postgres -c "SET client_min_messages = warning" \
        -c "DROP DATABASE IF EXISTS $SHARDS_DB WITH (FORCE)" -c "CREATE DATABASE $SHARDS_DB" >/dev/null
    {
        cat <<SQL
CREATE EXTENSION ics_hash SCHEMA public;
CREATE EXTENSION postgres_fdw;
CREATE TABLE images (id bigint NOT NULL, code hashcode($bits)) PARTITION BY HASH (id);
SQL
        for i in $(seq 1 "$n"); do
            # extensions 'ics_hash': the shard has the same ics_hash, so its immutable
            # functions and operators (hamming_within, <~>, <@) may run there.
            # async_capable: an Append over the shards (radius queries) runs their scans
            # concurrently. batch_size: INSERTs through the coordinator go 1000 rows a trip.
            cat <<SQL
CREATE SERVER $SHARDS_NAME$i FOREIGN DATA WRAPPER postgres_fdw
    OPTIONS (host '127.0.0.1', port '$((SHARDS_PORT + i))', dbname '$SHARDS_DB',
             extensions 'ics_hash', async_capable 'true', batch_size '1000');
CREATE USER MAPPING FOR CURRENT_USER SERVER $SHARDS_NAME$i OPTIONS (user 'postgres');
CREATE FOREIGN TABLE images_$SHARDS_NAME$i PARTITION OF images
    FOR VALUES WITH (MODULUS $n, REMAINDER $((i - 1)))
    SERVER $SHARDS_NAME$i OPTIONS (schema_name 'public', table_name 'images');
SQL
        done
    } | psql_at "$SHARDS_PORT" -d "$SHARDS_DB" >/dev/null
}

# shards_stop N: stop and remove the coordinator and N shards.
shards_stop() {
    local n=${1:-3} i
    cluster_destroy "$SHARDS_COORD"
    for i in $(seq 1 "$n"); do cluster_destroy "$SHARDS_NAME$i"; done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case "${1:-}" in
        start)
            n=${2:-3}
            step "coordinator $SHARDS_COORD (port $SHARDS_PORT) and $n shards (ports $((SHARDS_PORT + 1))-$((SHARDS_PORT + n)))"
            shards_start "$n" "${3:-64}"
            echo "$n" >"$ICS_RUN_DIR/$SHARDS_COORD/shards"
            ok "psql -h 127.0.0.1 -p $SHARDS_PORT -U postgres $SHARDS_DB   (table images; scripts/shards.sh stop removes them)"
            ;;
        stop)
            n=$(cat "$ICS_RUN_DIR/$SHARDS_COORD/shards" 2>/dev/null || echo 3)
            shards_stop "$n"
            ok "removed $SHARDS_COORD and $n shards"
            ;;
        *) die "usage: scripts/shards.sh start [N] [BITS] | stop" ;;
    esac
fi

-- Sharding with postgres_fdw: which ics_hash expressions run on the shards. A loopback
-- server (this database, reached again over TCP) stands in for two shards: the partitions of
-- a hash-partitioned table are foreign tables over local tables, each with its own mih index.
-- tests/cluster/sharding.sh runs the same layout on three real shard clusters.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION postgres_fdw;
RESET client_min_messages;
-- extensions 'ics_hash': the remote side has the same extension, so its IMMUTABLE functions
-- and operators (and its types) may be sent there. pg_regress connects over 127.0.0.1.
DO $$
BEGIN
    EXECUTE format('CREATE SERVER loopback FOREIGN DATA WRAPPER postgres_fdw '
                   'OPTIONS (host %L, port %L, dbname %L, extensions %L)',
                   '127.0.0.1', current_setting('port'), current_database(), 'ics_hash');
END
$$;
CREATE USER MAPPING FOR CURRENT_USER SERVER loopback;

CREATE TABLE shard_0 (id bigint PRIMARY KEY, code hashcode(64));
CREATE TABLE shard_1 (id bigint PRIMARY KEY, code hashcode(64));
CREATE INDEX shard_0_code ON shard_0 USING mih (code);
CREATE INDEX shard_1_code ON shard_1 USING mih (code);
CREATE TABLE sharded (id bigint NOT NULL, code hashcode(64)) PARTITION BY HASH (id);
CREATE FOREIGN TABLE sharded_0 PARTITION OF sharded FOR VALUES WITH (MODULUS 2, REMAINDER 0)
    SERVER loopback OPTIONS (table_name 'shard_0');
CREATE FOREIGN TABLE sharded_1 PARTITION OF sharded FOR VALUES WITH (MODULUS 2, REMAINDER 1)
    SERVER loopback OPTIONS (table_name 'shard_1');
-- Hash-like codes (20 centres, sparse noise; many ties), inserted through the coordinator's
-- table: postgres_fdw routes each row to its partition's shard.
INSERT INTO sharded
SELECT i, (hashtextextended('centre ' || (i % 20), 0)
           # (hashtextextended(i::text, 1) & hashtextextended(i::text, 2) & hashtextextended(i::text, 3)))::hashcode
  FROM generate_series(1, 4000) i;
ANALYZE shard_0, shard_1, sharded;
SELECT (SELECT count(*) FROM shard_0) AS shard_0, (SELECT count(*) FROM shard_1) AS shard_1;
-- The reference: every row in one local table, read by sequential scans only.
CREATE TABLE unsharded AS SELECT id, code FROM sharded;
CREATE TABLE probes (qid int PRIMARY KEY, code hashcode(64));
INSERT INTO probes
SELECT q, (hashtextextended('centre ' || (q % 20), 0) # hashtextextended('probe ' || q, 4))::hashcode
  FROM generate_series(1, 8) q;

-- k-NN: each shard runs ORDER BY code <~> q (its own mih index), the coordinator merges the
-- sorted streams (Merge Append) and stops at the LIMIT.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id, code <~> '8f3a0c5e91b2d477' AS d FROM sharded ORDER BY code <~> '8f3a0c5e91b2d477' LIMIT 10;
-- hamming() is inlined to <~> first, so it ships the same way.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id FROM sharded ORDER BY hamming(code, '8f3a0c5e91b2d477') LIMIT 10;
-- Radius: the condition runs on the shards (where it becomes a mih index condition).
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id FROM sharded WHERE hamming_within(code, '8f3a0c5e91b2d477', 3);
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id FROM sharded WHERE code <@ hamming_ball('8f3a0c5e91b2d477', 3);
-- A parameter (a generic plan) ships as a parameter of the remote query.
PREPARE knn(hashcode, int) AS SELECT id FROM sharded ORDER BY code <~> $1 LIMIT $2;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE knn('8f3a0c5e91b2d477', 10);
RESET plan_cache_mode;
-- A query code computed on the coordinator: a scalar subquery (an initplan) runs once and
-- ships as a parameter.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id FROM sharded ORDER BY code <~> (SELECT code FROM probes WHERE qid = 1) LIMIT 10;
-- A STABLE function call (ics_encode is STABLE: it reads the model registry) does not ship:
-- written directly, the shards send every row and the coordinator sorts them. Write
-- (SELECT ics_encode($1)) instead (see the encoder below).
CREATE FUNCTION stable_probe() RETURNS hashcode LANGUAGE sql STABLE
    AS $$ SELECT code FROM probes WHERE qid = 1 $$;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id FROM sharded ORDER BY code <~> stable_probe() LIMIT 10;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id FROM sharded ORDER BY code <~> (SELECT stable_probe()) LIMIT 10;
-- Without extensions 'ics_hash' nothing of ics_hash ships: the coordinator filters every row.
ALTER SERVER loopback OPTIONS (DROP extensions);
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id FROM sharded WHERE hamming_within(code, '8f3a0c5e91b2d477', 3);
ALTER SERVER loopback OPTIONS (ADD extensions 'ics_hash');

-- Results equal one table's sequential scan: k-NN distance lists (ties make the ids of the
-- last distance arbitrary) for k = 10 and 100, radius id sets for r = 0, 4, 12.
CREATE FUNCTION sharded_differences() RETURNS int LANGUAGE plpgsql AS $$
DECLARE p record; k int; r int; a text; b text; bad int := 0;
BEGIN
    FOR p IN SELECT code FROM probes UNION ALL (SELECT code FROM unsharded ORDER BY id LIMIT 4) LOOP
        FOREACH k IN ARRAY ARRAY[10, 100] LOOP
            SELECT array_agg(d)::text INTO a
              FROM (SELECT code <~> p.code AS d FROM sharded ORDER BY code <~> p.code LIMIT k) s;
            SELECT array_agg(d)::text INTO b
              FROM (SELECT code <~> p.code AS d FROM unsharded ORDER BY code <~> p.code LIMIT k) s;
            IF a IS DISTINCT FROM b THEN bad := bad + 1; END IF;
        END LOOP;
        FOREACH r IN ARRAY ARRAY[0, 4, 12] LOOP
            SELECT array_agg(id ORDER BY id)::text INTO a FROM sharded WHERE hamming_within(code, p.code, r);
            SELECT array_agg(id ORDER BY id)::text INTO b FROM unsharded WHERE hamming_within(code, p.code, r);
            IF a IS DISTINCT FROM b THEN bad := bad + 1; END IF;
        END LOOP;
    END LOOP;
    RETURN bad;
END
$$;
SELECT sharded_differences() AS differences;
-- Every k-NN row is a real row with its real distance.
SELECT count(*) AS knn_rows, bool_and(s.d = hamming(u.code, p.code)) AS distances_true
  FROM probes p,
       LATERAL (SELECT id, code <~> p.code AS d FROM sharded ORDER BY code <~> p.code LIMIT 10) s
  JOIN unsharded u USING (id);
-- The shards used their indexes: the same remote query on a shard table.
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id, code FROM shard_0 ORDER BY (code OPERATOR(public.<~>) '8f3a0c5e91b2d477') ASC NULLS LAST;
EXPLAIN (COSTS OFF) SELECT id FROM shard_0 WHERE public.hamming_within(code, '8f3a0c5e91b2d477'::public.hashcode, 3);
RESET enable_seqscan;

-- The encoder: ics_encode runs once, on the coordinator; the code ships as a parameter.
-- postgres_fdw evaluates a parameter with search_path = pg_catalog (its transmission
-- settings), so what the subquery calls must not depend on search_path: ics_encode does not,
-- and tables are resolved when the query is planned; the test's fixture() function would not
-- find its table, hence the subquery over fixtures.
SELECT name FROM ics_model_load('sharding_model', fixture('tiny_image.onnx'));
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id FROM sharded
 ORDER BY code <~> (SELECT ics_encode(bytes, 'sharding_model') FROM fixtures WHERE file = 'cat.png') LIMIT 10;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id FROM sharded
 WHERE hamming_within(code, (SELECT ics_encode(bytes, 'sharding_model') FROM fixtures WHERE file = 'cat.png'), 12);
SELECT array_agg(d ORDER BY d) = (SELECT array_agg(d ORDER BY d) FROM (
            SELECT code <~> ics_encode(fixture('cat.png'), 'sharding_model') AS d
              FROM unsharded ORDER BY 1 LIMIT 10) u) AS encoded_knn_equal
  FROM (SELECT code <~> (SELECT ics_encode(bytes, 'sharding_model') FROM fixtures WHERE file = 'cat.png') AS d
          FROM sharded ORDER BY 1 LIMIT 10) s;
SELECT array_agg(id ORDER BY id) = (SELECT array_agg(id ORDER BY id) FROM unsharded
                                     WHERE hamming_within(code, ics_encode(fixture('cat.png'), 'sharding_model'), 24))
       AS encoded_radius_equal
  FROM sharded
 WHERE hamming_within(code, (SELECT ics_encode(bytes, 'sharding_model') FROM fixtures WHERE file = 'cat.png'), 24);
SELECT ics_model_drop('sharding_model');

DROP TABLE sharded, shard_0, shard_1, unsharded, probes;
DROP FUNCTION sharded_differences(), stable_probe();
DROP USER MAPPING FOR CURRENT_USER SERVER loopback;
DROP SERVER loopback;
DROP EXTENSION postgres_fdw;

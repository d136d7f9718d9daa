-- The extension installed into a schema that is not on search_path (in a database of its own):
-- every type, function, operator, cast, operator class, view and the mih index, reached through
-- qualified names only, and nothing inside the extension depending on the caller's search_path.
-- Failed before every reference inside the extension's SQL named its schema: hamming() (a SQL
-- function over <~>) and mih_verify() could not find their operator and function (42883), and
-- with a schema of look-alikes on search_path, hamming() ran the look-alike operator.
\set SHOW_CONTEXT never
\getenv fixtures ICS_FIXTURES
\if :{?fixtures}
\else
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/../fixtures/encoder'
\endif
\set regress_db :DBNAME
DROP DATABASE IF EXISTS ics_regress_extschema;
CREATE DATABASE ics_regress_extschema;
\c ics_regress_extschema
\set SHOW_CONTEXT never
CREATE SCHEMA ext;
CREATE EXTENSION ics_hash SCHEMA ext;
SET search_path = public;
SET ics_test.fixtures = :'fixtures';
CREATE FUNCTION sqlstate_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
CREATE FUNCTION fixture(name text) RETURNS bytea LANGUAGE sql STABLE
    AS $$ SELECT pg_read_binary_file(current_setting('ics_test.fixtures') || '/' || name) $$;
-- Where everything went: the extension's schema, and the registry's private one.
SELECT e.extnamespace::regnamespace AS extension_schema,
       (SELECT count(*) FROM pg_depend d
         WHERE d.refobjid = e.oid AND d.deptype = 'e' AND d.classid = 'pg_namespace'::regclass) AS own_schemas
  FROM pg_extension e WHERE e.extname = 'ics_hash';

-- The type: text and binary input and output, the typmod, the length coercion.
SELECT 'ABCD'::ext.hashcode AS text_io, '\xabcd'::ext.hashcode(16) AS typmod_io,
       pg_typeof('ab'::ext.hashcode(8)) AS type, ext.hashcode_send('abcd') AS send;
SELECT sqlstate_of($$SELECT 'abcd'::ext.hashcode(8)$$);
SELECT sqlstate_of($$SELECT 'xyz'::ext.hashcode$$);
CREATE TABLE t (id int PRIMARY KEY, code ext.hashcode(16));
INSERT INTO t SELECT i, (i * 7919 % 65536)::bit(16)::ext.hashcode FROM generate_series(1, 2000) i;
INSERT INTO t VALUES (0, 'abcd');
DO $$
BEGIN
    EXECUTE format('COPY (SELECT id, code FROM t WHERE id < 10) TO %L (FORMAT binary)',
                   current_setting('data_directory') || '/ics_regress_extschema.bin');
END $$;
CREATE TABLE t_copy (id int, code ext.hashcode(16));
DO $$
BEGIN
    EXECUTE format('COPY t_copy FROM %L (FORMAT binary)',
                   current_setting('data_directory') || '/ics_regress_extschema.bin');
END $$;
SELECT count(*) AS binary_round_trip FROM t_copy JOIN t USING (id) WHERE t_copy.code OPERATOR(ext.=) t.code;

-- Casts, all directions.
SELECT 'abcd'::ext.hashcode::bytea AS to_bytea, '\xabcd'::bytea::ext.hashcode AS from_bytea,
       'abcd'::ext.hashcode::bit(16) AS to_bit, 'abcd'::ext.hashcode::bit varying(24) AS to_varbit,
       B'1010101111001101'::ext.hashcode AS from_bit, B'10101011'::varbit::ext.hashcode AS from_varbit,
       (-1)::bigint::ext.hashcode AS from_bigint, 'ffffffffffffffff'::ext.hashcode::bigint AS to_bigint;

-- Comparison operators and the btree and hash operator classes.
SELECT 'ab'::ext.hashcode OPERATOR(ext.<) 'ac' AS lt, 'ab'::ext.hashcode OPERATOR(ext.<=) 'ab' AS le,
       'ab'::ext.hashcode OPERATOR(ext.=) 'ab' AS eq, 'ab'::ext.hashcode OPERATOR(ext.<>) 'ac' AS ne,
       'ac'::ext.hashcode OPERATOR(ext.>=) 'ab' AS ge, 'ac'::ext.hashcode OPERATOR(ext.>) 'ab' AS gt,
       ext.hashcode_cmp('ab', 'ac') AS cmp, ext.hashcode_hash('ab') = ext.hashcode_hash('ab') AS hash;
SELECT code FROM t ORDER BY code LIMIT 3;
SELECT count(DISTINCT code) AS distinct_codes FROM t;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
CREATE INDEX t_btree ON t USING btree (code ext.hashcode_ops);
EXPLAIN (COSTS OFF) SELECT id FROM t WHERE code OPERATOR(ext.=) 'abcd';
SELECT id FROM t WHERE code OPERATOR(ext.=) 'abcd';
DROP INDEX t_btree;
CREATE INDEX t_hash ON t USING hash (code ext.hashcode_ops);
EXPLAIN (COSTS OFF) SELECT id FROM t WHERE code OPERATOR(ext.=) 'abcd';
SELECT id FROM t WHERE code OPERATOR(ext.=) 'abcd';
DROP INDEX t_hash;
RESET enable_seqscan;
RESET enable_bitmapscan;

-- Distance, length and bit count.
SELECT 'abcd'::ext.hashcode OPERATOR(ext.<~>) 'abce' AS op, ext.hamming('abcd', 'abce') AS fn,
       ext.hashcode_hamming('abcd', 'abce') AS impl, ext.hamming_within('abcd', 'abce', 2) AS within,
       ext.length('abcd'::ext.hashcode) AS length, ext.bit_count('abcd'::ext.hashcode) AS bit_count;
SELECT ext.hamming_ball('abcd', 2) AS ball, 'abcd:2'::ext.hamming_ball AS ball_in,
       'abce'::ext.hashcode OPERATOR(ext.<@) ext.hamming_ball('abcd', 2) AS inside;

-- The mih index through its operator class, k-NN and radius, by qualified names: hamming() is
-- inlined to <~> and hamming_within() becomes <@, so both use the index.
CREATE INDEX t_mih ON t USING mih (code ext.hashcode_mih_ops);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM t ORDER BY ext.hamming(code, 'abcd') LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM t ORDER BY code OPERATOR(ext.<~>) 'abcd' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM t WHERE ext.hamming_within(code, 'abcd', 2);
EXPLAIN (COSTS OFF) SELECT id FROM t WHERE code OPERATOR(ext.<@) ext.hamming_ball('abcd', 2);
CREATE TABLE knn_index AS
SELECT id, ext.hamming(code, 'abcd') AS d FROM t ORDER BY ext.hamming(code, 'abcd'), id LIMIT 20;
CREATE TABLE radius_index AS SELECT id FROM t WHERE ext.hamming_within(code, 'abcd', 3);
RESET enable_seqscan;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT (SELECT array_agg(d ORDER BY d, id) FROM knn_index)
     = (SELECT array_agg(d) FROM (SELECT ext.hamming(code, 'abcd') AS d FROM t ORDER BY 1 LIMIT 20) s) AS knn_exact,
       (SELECT array_agg(id ORDER BY id) FROM radius_index)
     = (SELECT array_agg(id ORDER BY id) FROM t WHERE ext.hamming_within(code, 'abcd', 3)) AS radius_exact;
RESET enable_indexscan;
RESET enable_bitmapscan;
SELECT ok, code_bits, heap_rows FROM ext.mih_verify('t_mih');
SELECT (ext.mih_verify_json('t_mih', false)::jsonb ->> 'ok')::boolean AS json_ok;

-- Look-alikes of the extension's operator and functions on search_path (first, before the
-- extension's schema and pg_catalog) change nothing inside the extension's SQL.
CREATE SCHEMA lookalike;
CREATE FUNCTION lookalike.fake_distance(ext.hashcode, ext.hashcode) RETURNS integer
    LANGUAGE sql AS $$ SELECT 999 $$;
CREATE OPERATOR lookalike.<~> (LEFTARG = ext.hashcode, RIGHTARG = ext.hashcode,
                               FUNCTION = lookalike.fake_distance);
CREATE FUNCTION lookalike.mih_verify_json(regclass, boolean) RETURNS text
    LANGUAGE sql AS $$ SELECT '{"ok": false}' $$;
SET search_path = lookalike, ext, pg_catalog;
SELECT ext.hamming('abcd', 'abce') AS distance, 'abcd'::ext.hashcode <~> 'abce' AS lookalike_operator;
SELECT ok FROM ext.mih_verify('public.t_mih');
SET search_path = public;

-- The encoder: load, the metadata view, encode (image, default model, features, batch), the
-- plan that encodes the query image once and searches the index, info, drop.
SELECT name, bits, input_kind FROM ext.ics_model_load('tiny_image', fixture('tiny_image.onnx'));
SELECT ext.ics_encode(fixture('cat.png')) AS default_model,
       ext.ics_encode(fixture('cat.png'), 'tiny_image') AS named,
       (ext.ics_encode_batch(ARRAY[fixture('cat.png')]))[1] AS batch_default,
       (ext.ics_encode_batch(ARRAY[fixture('cat.png')], 'tiny_image'))[1] AS batch_named;
SELECT name, bits FROM ext.ics_model_load('tiny_features', fixture('tiny_features.onnx'));
SELECT ext.ics_encode('{1,2,3,4,5,6,7,8}'::real[], 'tiny_features') IS NOT NULL AS features;
SELECT name, bits, input_kind, input_size FROM ext.ics_models ORDER BY name;
SELECT count(*) AS cuda_sessions FROM ext.ics_cuda_sessions;
SELECT jsonb_array_length(ext.ics_encoder_info() -> 'sessions') >= 1 AS info_lists_sessions;
CREATE TABLE photos (id int, code ext.hashcode(64));
INSERT INTO photos SELECT i, (i::bigint * 2654435761)::ext.hashcode FROM generate_series(1, 2000) i;
CREATE INDEX photos_mih ON photos USING mih (code);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM photos ORDER BY ext.hamming(code, ext.ics_encode(fixture('cat.png'), 'tiny_image')) LIMIT 5;
RESET enable_seqscan;
SELECT ext.ics_model_drop('tiny_features'), ext.ics_model_drop('tiny_image');
SELECT count(*) AS models_left FROM ext.ics_models;

\c :regress_db
DROP DATABASE ics_regress_extschema;

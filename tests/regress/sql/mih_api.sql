-- The mih index: what users see around the exact search (plans, options, NULLs, lengths,
-- errors, REINDEX, unlogged tables, the hamming_ball type, mih_verify).
\set SHOW_CONTEXT never
SELECT setseed(0.7);
CREATE TABLE img (id int PRIMARY KEY, label text, code hashcode(64));
INSERT INTO img SELECT i, 'class ' || (i % 20),
       (hashtextextended('centre ' || (i % 20), 0) # ((random() * 15)::int)::bigint)::hashcode
  FROM generate_series(1, 20000) i;
INSERT INTO img VALUES (20001, 'no code', NULL);
CREATE INDEX img_code ON img USING mih (code);
ANALYZE img;

-- The user's query forms use the index; plain scans and large radii do not.
EXPLAIN (COSTS OFF) SELECT id FROM img ORDER BY hamming(code, '0123456789abcdef') LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM img ORDER BY code <~> '0123456789abcdef' LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM img WHERE hamming_within(code, '0123456789abcdef', 3);
EXPLAIN (COSTS OFF) SELECT id FROM img WHERE hamming_within('0123456789abcdef', code, 3);
EXPLAIN (COSTS OFF) SELECT id FROM img WHERE code <@ hamming_ball('0123456789abcdef', 3);
EXPLAIN (COSTS OFF) SELECT id FROM img WHERE label = 'class 3' ORDER BY hamming(code, '0123456789abcdef') LIMIT 10;
PREPARE knn(hashcode) AS SELECT id FROM img ORDER BY hamming(code, $1) LIMIT 10;
EXPLAIN (COSTS OFF) EXECUTE knn('0123456789abcdef');
EXPLAIN (COSTS OFF) SELECT id FROM img ORDER BY hamming(code, (SELECT code FROM img WHERE id = 5)) LIMIT 10;
EXPLAIN (COSTS OFF) SELECT * FROM img;
EXPLAIN (COSTS OFF) SELECT count(*) FROM img WHERE hamming_within(code, '0123456789abcdef', 40);
EXPLAIN (COSTS OFF) SELECT id FROM img WHERE hamming_within(code, code, 3);

-- Results: the nearest rows come first, ties by distance, NULL codes last (as without the index).
SELECT label, hamming(code, (SELECT code FROM img WHERE id = 5)) AS d
  FROM img ORDER BY hamming(code, (SELECT code FROM img WHERE id = 5)), id LIMIT 3;
SELECT count(*) AS within_0 FROM img WHERE hamming_within(code, (SELECT code FROM img WHERE id = 5), 0);
SELECT count(*) AS all_rows FROM (SELECT id FROM img ORDER BY code <~> '0000000000000000') s;
SELECT count(*) AS ordered_by_null FROM (SELECT id FROM img ORDER BY code <~> NULL LIMIT 5) s;
SELECT count(*) AS within_null FROM img WHERE hamming_within(code, NULL, 3);

-- Lengths: the index holds the column's declared length; query codes of another length are
-- refused.
CREATE TABLE anylen (id int, code hashcode(16));
CREATE INDEX anylen_code ON anylen USING mih (code);
INSERT INTO anylen VALUES (1, '0123'), (2, NULL), (3, 'ffff');
SELECT sqlstate_of($$INSERT INTO anylen VALUES (4, '01234567')$$);
SELECT id FROM anylen ORDER BY code <~> '0000' LIMIT 5;
SELECT sqlstate_of($$SELECT id FROM anylen ORDER BY code <~> '00000000' LIMIT 5$$);
SELECT sqlstate_of($$SELECT id FROM anylen WHERE hamming_within(code, '00000000', 1)$$);
SELECT sqlstate_of($$SELECT id FROM anylen WHERE hamming_within(code, '0000', -1)$$);
SELECT code_bits, tids, ok FROM mih_verify('anylen_code');
-- A hashcode column without a declared length is refused (22023); the hint is the ALTER
-- TABLE to run, with the length of the table's first code when it has one.
CREATE TABLE mixed (code hashcode);
CREATE INDEX ON mixed USING mih (code);
INSERT INTO mixed VALUES (NULL), ('00'), ('0000');
CREATE INDEX ON mixed USING mih (code);
CREATE INDEX ON mixed USING mih (hashcode(code::bytea));
SELECT sqlstate_of($$CREATE INDEX ON mixed USING mih (code)$$);
ALTER TABLE mixed ALTER COLUMN code TYPE hashcode(8) USING hashcode(substring(code::bytea FOR 1));
CREATE INDEX mixed_code ON mixed USING mih (code);
SELECT code_bits, tids, nulls, ok FROM mih_verify('mixed_code');

-- Options: the strategy (measured by default; an option of one strategy implies it).
SELECT strategy IN ('lists', 'substrings') AS measured, ok FROM mih_verify('img_code');
CREATE INDEX img_code_5 ON img USING mih (code) WITH (lists = 5);
SELECT strategy, lists, ok FROM mih_verify('img_code_5');
DROP INDEX img_code_5;
CREATE INDEX img_code_s4 ON img USING mih (code) WITH (substrings = 4);
SELECT strategy, substrings, generation, ok, tids = heap_rows AS all_rows FROM mih_verify('img_code_s4');
DROP INDEX img_code_s4;
CREATE INDEX img_code_l ON img USING mih (code) WITH (strategy = lists);
SELECT strategy, lists > 1 AS lists, substrings, ok FROM mih_verify('img_code_l');
DROP INDEX img_code_l;
CREATE INDEX img_code_s ON img USING mih (code) WITH (strategy = substrings);
SELECT strategy, substrings, lists, ok FROM mih_verify('img_code_s');
DROP INDEX img_code_s;
SELECT sqlstate_of($$CREATE INDEX ON img USING mih (code) WITH (strategy = clusters)$$);
SELECT sqlstate_of($$CREATE INDEX ON img USING mih (code) WITH (strategy = lists, substrings = 2)$$);
SELECT sqlstate_of($$CREATE INDEX ON img USING mih (code) WITH (strategy = substrings, lists = 2)$$);
SELECT sqlstate_of($$CREATE INDEX ON img USING mih (code) WITH (substrings = 17)$$);
SELECT sqlstate_of($$CREATE INDEX ON img USING mih (code) WITH (lists = 5000)$$);
SELECT sqlstate_of($$CREATE INDEX ON img USING mih (code) WITH (lists = -1)$$);
SELECT sqlstate_of($$CREATE INDEX ON img USING mih (code) WITH (pages = 3)$$);
CREATE INDEX ON img USING mih (code) WITH (strategy = clusters);
CREATE INDEX ON img USING mih (code) WITH (strategy = lists, substrings = 2);

-- REINDEX, REINDEX CONCURRENTLY: same results.
CREATE TEMP TABLE before AS SELECT id FROM img ORDER BY code <~> '0123456789abcdef', id LIMIT 50;
REINDEX INDEX img_code;
REINDEX INDEX CONCURRENTLY img_code;
SELECT count(*) AS same_rows FROM before JOIN
  (SELECT id FROM img ORDER BY code <~> '0123456789abcdef', id LIMIT 50) a USING (id);
SELECT ok, tids, heap_rows FROM mih_verify('img_code');

-- Empty tables and unlogged tables.
CREATE TABLE empty (code hashcode(128));
CREATE INDEX empty_code ON empty USING mih (code);
SELECT count(*) FROM empty WHERE hamming_within(code, repeat('00', 16)::hashcode, 3);
SELECT code_bits, strategy, lists, substrings, tids, ok FROM mih_verify('empty_code');
CREATE UNLOGGED TABLE scratch (code hashcode(16));
CREATE INDEX scratch_code ON scratch USING mih (code);
INSERT INTO scratch SELECT ((i * 2654435761) % 65536)::bit(16)::hashcode FROM generate_series(1, 500) i;
SELECT count(*) FROM scratch WHERE hamming_within(code, '0000', 4);
SELECT ok, tids FROM mih_verify('scratch_code');

-- hamming_ball
SELECT hamming_ball('8f3a', 2), '8f3a:2'::hamming_ball, '8f3a'::hashcode <@ '8f3b:1'::hamming_ball AS within;
SELECT sqlstate_of($$SELECT '8f3a'::hamming_ball$$);
SELECT sqlstate_of($$SELECT '8f3a:x'::hamming_ball$$);
SELECT sqlstate_of($$SELECT 'zz:1'::hamming_ball$$);
SELECT sqlstate_of($$SELECT hamming_ball('8f3a', -2)$$);
SELECT sqlstate_of($$SELECT '8f3a'::hashcode <@ '8f:1'::hamming_ball$$);

-- mih_verify on something else.
SELECT sqlstate_of($$SELECT * FROM mih_verify('img_pkey')$$);

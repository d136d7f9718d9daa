-- Ordering, equality, hashing: btree and hash operator classes.
\set SHOW_CONTEXT never

SELECT '00'::hashcode < '01'::hashcode AS lt, '01'::hashcode <= '01'::hashcode AS le,
       '01'::hashcode = '01'::hashcode AS eq, '01'::hashcode <> '02'::hashcode AS ne,
       'ff'::hashcode >= 'fe'::hashcode AS ge, '80'::hashcode > '7f'::hashcode AS gt;
-- A code sorts before a longer code it prefixes; bytes compare bit 0 first.
SELECT code FROM unnest(ARRAY['ff', '00ff', '00', '0000', '7f', '80']::hashcode[]) AS code ORDER BY code;
SELECT '00'::hashcode = '0000'::hashcode AS different_lengths_differ;

-- The order agrees with bit(n)'s on random codes, in both directions.
CREATE TABLE cmp AS
  SELECT i, hashcode(decode(md5(i::text), 'hex')) AS a, hashcode(decode(md5((i * 7)::text), 'hex')) AS b
  FROM generate_series(1, 2000) i;
SELECT count(*) FILTER (WHERE (a < b) <> (a::bit(128) < b::bit(128))) AS lt_mismatch,
       count(*) FILTER (WHERE (a = b) <> (a::bit(128) = b::bit(128))) AS eq_mismatch,
       count(*) FILTER (WHERE (a > b) <> (a::bit(128) > b::bit(128))) AS gt_mismatch,
       count(*) FILTER (WHERE sign(hashcode_cmp(a, b)) <> CASE WHEN a < b THEN -1 WHEN a = b THEN 0 ELSE 1 END) AS cmp_mismatch
  FROM cmp;

-- btree: index scans, UNIQUE, ORDER BY through the index.
CREATE TABLE uniq (code hashcode PRIMARY KEY);
INSERT INTO uniq SELECT DISTINCT a FROM cmp;
INSERT INTO uniq VALUES ((SELECT a FROM cmp WHERE i = 1));
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM uniq WHERE code = '00112233445566778899aabbccddeeff';
SELECT count(*) FROM uniq WHERE code = (SELECT a FROM cmp WHERE i = 42);
SELECT (SELECT array_agg(code ORDER BY code) FROM uniq) = (SELECT array_agg(DISTINCT a ORDER BY a) FROM cmp) AS index_order_ok;
RESET enable_seqscan;

-- hash: GROUP BY, DISTINCT, hash joins, hash indexes, hash partitioning.
SELECT count(*) AS groups FROM (SELECT a FROM cmp UNION ALL SELECT a FROM cmp) t GROUP BY a HAVING count(*) <> 2;
SET enable_sort = off;
EXPLAIN (COSTS OFF) SELECT DISTINCT a FROM cmp;
SELECT count(DISTINCT a) AS distinct_codes FROM cmp;
RESET enable_sort;
SET enable_mergejoin = off;
SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM cmp x JOIN cmp y ON x.a = y.a;
SELECT count(*) AS hash_join_rows FROM cmp x JOIN cmp y ON x.a = y.a;
RESET enable_mergejoin;
RESET enable_nestloop;
CREATE INDEX cmp_hash ON cmp USING hash (a);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT i FROM cmp WHERE a = 'c4ca4238a0b923820dcc509a6f75849b';
SELECT i FROM cmp WHERE a = 'c4ca4238a0b923820dcc509a6f75849b';
RESET enable_seqscan;
-- Hash values are part of the on-disk format of hash indexes and partitions: pinned.
SELECT hashcode_hash('8f3a'::hashcode), hashcode_hash_extended('8f3a'::hashcode, 42);
SELECT hashcode_hash('8f3a'::hashcode) = hashcode_hash('\x8f3a'::hashcode) AS hash_stable,
       hashcode_hash_extended('8f3a'::hashcode, 0) = hashcode_hash_extended('8f3a'::hashcode, 0) AS hash_ext_stable,
       hashcode_hash_extended('8f3a'::hashcode, 0) <> hashcode_hash_extended('8f3a'::hashcode, 1) AS seed_matters;
CREATE TABLE parts (code hashcode) PARTITION BY HASH (code);
CREATE TABLE parts0 PARTITION OF parts FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE parts1 PARTITION OF parts FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO parts SELECT a FROM cmp;
SELECT (SELECT count(*) FROM parts0) > 0 AND (SELECT count(*) FROM parts1) > 0 AS both_partitions_used,
       (SELECT count(*) FROM parts) AS rows;

-- NULLs
SELECT NULL::hashcode = '00'::hashcode AS null_eq, hashcode_cmp(NULL, '00') AS null_cmp;

-- Hamming distance, hamming_within, length, bit_count.
\set SHOW_CONTEXT never

SELECT '00'::hashcode <~> 'ff'::hashcode AS d8, hamming('8f3a'::hashcode, '8f3b'::hashcode) AS d1,
       hamming('8f3a0c5e91b2d477', '8f3a0c5e91b2d477') AS d0;
SELECT length('8f3a'::hashcode), bit_count('8f3a'::hashcode), bit_count('00'::hashcode),
       bit_count(repeat('ff', 512)::hashcode), length(repeat('ff', 512)::hashcode);
SELECT hamming_within('00', '07', 3) AS d3_r3, hamming_within('00', '07', 2) AS d3_r2,
       hamming_within('00', '00', 0) AS d0_r0;

-- Agrees with PostgreSQL's own bit_count(a # b) on random codes of several lengths.
CREATE TABLE dist AS
  SELECT i, n, hashcode(substring(decode(md5(i::text) || md5((i + 1)::text) || md5((i + 2)::text) || md5((i + 3)::text), 'hex') FOR n)) AS a,
               hashcode(substring(decode(md5((-i)::text) || md5((-i - 1)::text) || md5((-i - 2)::text) || md5((-i - 3)::text), 'hex') FOR n)) AS b
  FROM generate_series(1, 500) i, unnest(ARRAY[1, 2, 4, 8, 16, 24, 32, 64]) n;
SELECT n * 8 AS bits, count(*) AS pairs,
       count(*) FILTER (WHERE a <~> b <> bit_count(a::varbit # b::varbit)) AS distance_mismatch,
       count(*) FILTER (WHERE hamming(a, b) <> a <~> b) AS hamming_mismatch,
       count(*) FILTER (WHERE hamming_within(a, b, n * 4) <> (a <~> b <= n * 4)) AS within_mismatch,
       count(*) FILTER (WHERE bit_count(a) <> bit_count(a::varbit)) AS bit_count_mismatch,
       min(a <~> b) >= 0 AND max(a <~> b) <= n * 8 AS in_range
  FROM dist GROUP BY n ORDER BY n;
-- Symmetric, zero on itself, triangle inequality.
SELECT count(*) FILTER (WHERE a <~> b <> b <~> a) AS asymmetric,
       count(*) FILTER (WHERE a <~> a <> 0) AS nonzero_self
  FROM dist;
SELECT count(*) AS triangle_violations
  FROM dist x JOIN dist y ON x.n = y.n AND y.i = x.i + 1
  WHERE x.a <~> y.b > (x.a <~> x.b) + (x.b <~> y.b);

-- Different lengths: 22000 naming both; negative radius: 22023.
SELECT '00'::hashcode <~> '0000'::hashcode;
SELECT sqlstate_of($$SELECT hamming('00', '0000')$$);
SELECT sqlstate_of($$SELECT hamming_within('00', '0000', 1)$$);
SELECT hamming_within('00', '00', -1);
SELECT sqlstate_of($$SELECT hamming_within('00', '00', -1)$$);

-- NULLs (all STRICT).
SELECT hamming(NULL, '00') IS NULL AS h, (NULL::hashcode <~> '00') IS NULL AS op,
       hamming_within('00', NULL, 1) IS NULL AS w, hamming_within('00', '00', NULL) IS NULL AS r,
       length(NULL::hashcode) IS NULL AS l, bit_count(NULL::hashcode) IS NULL AS c;

-- The planner inlines hamming() to <~>, so an index on <~> also serves hamming().
EXPLAIN (VERBOSE, COSTS OFF) SELECT i FROM dist ORDER BY hamming(a, '00'::hashcode) LIMIT 3;

-- Properties users rely on: volatility, strictness, parallel safety. The exceptions are
-- intended: the planner's selectivity function reads statistics (STABLE), the AM handler
-- is what PostgreSQL expects, mih_verify reads the current table (VOLATILE, PARALLEL
-- RESTRICTED: it writes the backend's buffered inserts first), the encoder
-- reads its model registry (STABLE) or writes it (VOLATILE, PARALLEL UNSAFE).
SELECT p.proname, p.provolatile, p.proisstrict, p.proparallel
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'ics_hash'
  WHERE p.provolatile <> 'i' OR NOT p.proisstrict OR p.proparallel <> 's'
  ORDER BY 1, 2, 3, 4;
-- Every object of the extension has a comment.
SELECT count(*) AS functions_without_comment
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'ics_hash'
  WHERE obj_description(p.oid, 'pg_proc') IS NULL;

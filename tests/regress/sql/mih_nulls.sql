-- Rows whose code is NULL: a k-NN index scan returns them last (NULLS LAST), exactly as a
-- sequential scan of ORDER BY code <~> q does, in every query shape and for both strategies;
-- (alone in its schedule line: VACUUM must be able to remove the rows it deletes).
-- a radius condition never matches them. And pg_stat_user_indexes.idx_scan counts mih scans.
SET client_min_messages = warning;
CREATE TABLE nul (id int, code hashcode(16), grp int);
INSERT INTO nul VALUES (1, 'aabb', 1), (2, NULL, 1), (3, 'aabc', 2), (4, NULL, 2);
CREATE INDEX nul_lists ON nul USING mih (code) WITH (strategy = lists);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM nul ORDER BY code <~> 'aabb';
SELECT id, code <~> 'aabb' AS d FROM nul ORDER BY code <~> 'aabb', id;
SELECT array_agg(id) FROM (SELECT id FROM nul ORDER BY code <~> 'aabb' LIMIT 3) s;
RESET enable_seqscan;
RESET enable_bitmapscan;

-- Index result vs sequential scan for one query: distances in order, and the rows returned.
CREATE FUNCTION nul_check(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE a text; b text; plan text := ''; line text;
BEGIN
    PERFORM set_config('enable_seqscan', 'off', true);
    PERFORM set_config('enable_bitmapscan', 'off', true);
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP plan := plan || line; END LOOP;
    -- Distances in order; the rows themselves unless a LIMIT cuts among NULL distances (ties).
    EXECUTE format('SELECT count(*) || '' '' || md5(array_agg(d)::text) || '' '' || CASE WHEN %L LIKE ''%%LIMIT%%'' THEN '''' ELSE md5(array_agg(id ORDER BY id)::text) END FROM (%s) s', q, q) INTO a;
    PERFORM set_config('enable_seqscan', 'on', true);
    PERFORM set_config('enable_indexscan', 'off', true);
    EXECUTE format('SELECT count(*) || '' '' || md5(array_agg(d)::text) || '' '' || CASE WHEN %L LIKE ''%%LIMIT%%'' THEN '''' ELSE md5(array_agg(id ORDER BY id)::text) END FROM (%s) s', q, q) INTO b;
    PERFORM set_config('enable_indexscan', 'on', true);
    PERFORM set_config('enable_bitmapscan', 'on', true);
    IF position('Index Scan using' IN plan) = 0 THEN
        RETURN 'no index scan: ' || plan;
    END IF;
    RETURN CASE WHEN a = b THEN 'same ' || split_part(a, ' ', 1) || ' rows' ELSE 'DIFFERENT: index ' || a || ', seq ' || b END;
END $$;

-- 300 rows, 60 NULL codes; more rows (NULL ones too) inserted after the build.
CREATE TABLE nul2 (id int, code hashcode(32), grp int);
INSERT INTO nul2 SELECT i, CASE WHEN i % 5 = 0 THEN NULL ELSE hashcode(substring(decode(md5(i::text), 'hex') FOR 4)) END, i % 7
    FROM generate_series(1, 300) i;
CREATE INDEX nul2_lists ON nul2 USING mih (code) WITH (strategy = lists);
CREATE INDEX nul2_subs ON nul2 USING mih (code) WITH (strategy = substrings);
INSERT INTO nul2 SELECT i, CASE WHEN i % 4 = 0 THEN NULL ELSE hashcode(substring(decode(md5(i::text), 'hex') FOR 4)) END, i % 7
    FROM generate_series(301, 340) i;
-- Each strategy in turn (the other index dropped inside a rolled-back transaction).
CREATE FUNCTION nul_shapes(keep text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE q text;
BEGIN
    FOREACH q IN ARRAY ARRAY[
        -- no LIMIT
        $q$SELECT id, code <~> 'deadbeef' AS d FROM nul2 ORDER BY code <~> 'deadbeef'$q$,
        -- a LIMIT above the number of non-NULL codes
        $q$SELECT id, code <~> 'deadbeef' AS d FROM nul2 ORDER BY code <~> 'deadbeef' LIMIT 330$q$,
        -- a selective filter on another column
        $q$SELECT id, code <~> '01234567' AS d FROM nul2 WHERE grp = 3 ORDER BY code <~> '01234567' LIMIT 50$q$,
        -- a radius condition: never a NULL code
        $q$SELECT id, code <~> 'deadbeef' AS d FROM nul2 WHERE hamming_within(code, 'deadbeef', 14) ORDER BY code <~> 'deadbeef'$q$
    ] LOOP
        RETURN NEXT keep || ': ' || nul_check(q);
    END LOOP;
END $$;
BEGIN;
DROP INDEX nul2_subs;
SELECT nul_shapes('lists');
ROLLBACK;
BEGIN;
DROP INDEX nul2_lists;
SELECT nul_shapes('substrings');
-- A cursor read to the end through the index: every row.
SET LOCAL enable_seqscan = off;
DECLARE c CURSOR FOR SELECT id FROM nul2 ORDER BY code <~> 'deadbeef';
MOVE FORWARD ALL IN c;
SELECT count(*) AS rows_in_table FROM nul2;
CLOSE c;
ROLLBACK;
BEGIN;
SET LOCAL enable_seqscan = off;
DROP INDEX nul2_subs;
DECLARE c CURSOR FOR SELECT id FROM nul2 ORDER BY code <~> 'deadbeef';
MOVE FORWARD ALL IN c;
ROLLBACK;

-- mih_verify counts them; VACUUM removes the dead ones; a rolled-back insert leaves none.
SELECT ok, nulls, heap_nulls, tids = heap_rows AS all_codes FROM mih_verify('nul2_lists');
SELECT ok, nulls, heap_nulls, tids = heap_rows AS all_codes FROM mih_verify('nul2_subs');
DELETE FROM nul2 WHERE code IS NULL AND id % 3 = 0;
BEGIN;
INSERT INTO nul2 VALUES (1000, NULL, 0);
SAVEPOINT s;
INSERT INTO nul2 VALUES (1001, NULL, 0);
ROLLBACK TO s;
COMMIT;
VACUUM nul2;
SELECT ok, nulls, heap_nulls FROM mih_verify('nul2_lists');
SELECT ok, nulls, heap_nulls FROM mih_verify('nul2_subs');
SELECT nul_check($q$SELECT id, code <~> 'deadbeef' AS d FROM nul2 ORDER BY code <~> 'deadbeef'$q$);

-- A table of NULL codes only (an index without codes), then codes.
CREATE TABLE nul3 (id int, code hashcode(8));
INSERT INTO nul3 SELECT i, NULL FROM generate_series(1, 5) i;
CREATE INDEX nul3_idx ON nul3 USING mih (code);
SELECT nul_check($q$SELECT id, code <~> 'ff' AS d FROM nul3 ORDER BY code <~> 'ff'$q$);
INSERT INTO nul3 VALUES (6, 'f0'), (7, NULL);
SELECT nul_check($q$SELECT id, code <~> 'ff' AS d FROM nul3 ORDER BY code <~> 'ff'$q$);
SELECT ok, code_bits, tids, nulls FROM mih_verify('nul3_idx');

-- idx_scan counts index scans (stats are flushed explicitly, as they would be later).
CREATE TABLE nul_stat (code hashcode(16));
INSERT INTO nul_stat SELECT hashcode(substring(decode(md5(i::text), 'hex') FOR 2)) FROM generate_series(1, 100) i;
CREATE INDEX nul_stat_idx ON nul_stat USING mih (code);
SELECT pg_stat_force_next_flush();
SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'nul_stat_idx';
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT code FROM nul_stat ORDER BY code <~> 'abcd' LIMIT 3) s;
SELECT count(*) > 0 AS found FROM nul_stat WHERE hamming_within(code, 'abcd', 16);
RESET enable_seqscan;
SELECT pg_stat_force_next_flush();
SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'nul_stat_idx';

DROP TABLE nul, nul2, nul3, nul_stat;
DROP FUNCTION nul_check(text), nul_shapes(text);

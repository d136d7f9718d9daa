-- mih returns exactly what a sequential scan returns: k-NN (k = 1, 10, 100, ties included:
-- the same distances in the same order) and radius (r = 0..16, the same rows), for uniform
-- and hash-like (clustered, duplicated) codes of 16 to 256 bits and a mix of both, with
-- either strategy,
-- through index scans and bitmap scans, with extra filters, and after inserts, updates,
-- deletes and VACUUM (for substring tables: rows in the tail, tombstones, merges).
\set SHOW_CONTEXT never
SELECT setseed(0.42);

-- A random code of n bytes, and a code with each bit flipped with probability 1/2^m.
CREATE FUNCTION rnd_code(nbytes int) RETURNS hashcode LANGUAGE sql VOLATILE AS $$
    SELECT hashcode(substring(decode(string_agg(md5(random()::text), ''), 'hex') FROM 1 FOR nbytes))
    FROM generate_series(1, (nbytes + 15) / 16)
$$;
CREATE FUNCTION noisy(c hashcode, m int) RETURNS hashcode LANGUAGE sql VOLATILE AS $$
    SELECT (c::varbit # (SELECT bit_and(rnd_code(length(c) / 8)::varbit) FROM generate_series(1, m)))::hashcode
$$;

-- The plan a statement gets, in one line.
CREATE FUNCTION plan_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; plan text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || statement LOOP plan := plan || line || ' '; END LOOP;
    RETURN plan;
END $$;

-- Runs `statement` (returning one array) through the index (plain or bitmap scan) and through
-- a sequential scan; returns a description of any difference, or NULL.
CREATE FUNCTION compare_plans(statement text, q hashcode, scan text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE via_index text; via_seq text; plan text; wanted text;
BEGIN
    PERFORM set_config('enable_seqscan', 'off', true);
    PERFORM set_config('enable_indexscan', (scan = 'index')::text, true);
    PERFORM set_config('enable_bitmapscan', (scan = 'bitmap')::text, true);
    plan := plan_of(replace(statement, '$1', quote_literal(q::text) || '::hashcode'));
    wanted := CASE scan WHEN 'index' THEN 'Index Scan using' ELSE 'Bitmap Index Scan on' END;
    IF position(wanted IN plan) = 0 THEN
        RETURN 'index not used: ' || plan;
    END IF;
    EXECUTE statement INTO via_index USING q;
    PERFORM set_config('enable_seqscan', 'on', true);
    PERFORM set_config('enable_indexscan', 'off', true);
    PERFORM set_config('enable_bitmapscan', 'off', true);
    EXECUTE statement INTO via_seq USING q;
    PERFORM set_config('enable_indexscan', 'on', true);
    PERFORM set_config('enable_bitmapscan', 'on', true);
    IF via_index IS DISTINCT FROM via_seq THEN
        RETURN format('%s: index %s, seq scan %s', statement, left(via_index, 200), left(via_seq, 200));
    END IF;
    RETURN NULL;
END $$;

-- Every check for one table and query code; returns the differences found.
CREATE FUNCTION check_table(tbl text, q hashcode) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE k int; r int; d text;
BEGIN
    FOREACH k IN ARRAY ARRAY[1, 10, 100] LOOP
        d := compare_plans(format('SELECT array_agg(d)::text FROM (SELECT code <~> $1 AS d FROM %I ORDER BY code <~> $1 LIMIT %s) s', tbl, k), q, 'index');
        IF d IS NOT NULL THEN RETURN NEXT d; END IF;
        -- hamming() is inlined to <~>, so the user's form takes the same path.
        d := compare_plans(format('SELECT array_agg(d)::text FROM (SELECT hamming(code, $1) AS d FROM %I ORDER BY hamming(code, $1) LIMIT %s) s', tbl, k), q, 'index');
        IF d IS NOT NULL THEN RETURN NEXT d; END IF;
        -- An extra filter: the scan keeps producing rows until the LIMIT is met.
        d := compare_plans(format('SELECT array_agg(d)::text FROM (SELECT code <~> $1 AS d FROM %I WHERE id %% 7 = 3 ORDER BY code <~> $1 LIMIT %s) s', tbl, k), q, 'index');
        IF d IS NOT NULL THEN RETURN NEXT d; END IF;
    END LOOP;
    FOR r IN 0..16 LOOP
        FOREACH d IN ARRAY ARRAY['index', 'bitmap'] LOOP
            d := compare_plans(format('SELECT array_agg(id ORDER BY id)::text FROM %I WHERE hamming_within(code, $1, %s)', tbl, r), q, d);
            IF d IS NOT NULL THEN RETURN NEXT d; END IF;
        END LOOP;
    END LOOP;
    -- Radius and k-NN together, and a radius with another filter.
    d := compare_plans(format('SELECT array_agg(d)::text FROM (SELECT code <~> $1 AS d FROM %I WHERE hamming_within(code, $1, 6) ORDER BY code <~> $1 LIMIT 50) s', tbl), q, 'index');
    IF d IS NOT NULL THEN RETURN NEXT d; END IF;
    d := compare_plans(format('SELECT array_agg(id ORDER BY id)::text FROM %I WHERE hamming_within(code, $1, 5) AND id %% 2 = 0', tbl), q, 'bitmap');
    IF d IS NOT NULL THEN RETURN NEXT d; END IF;
END $$;

-- Queries: 4 stored codes (distance 0 exists), 2 of them perturbed, 2 random codes.
CREATE FUNCTION check_all(tbl text) RETURNS TABLE (queries int, differences text[]) LANGUAGE plpgsql AS $$
DECLARE q hashcode; n int := 0; diffs text[] := '{}'; nb int;
BEGIN
    EXECUTE format('SELECT length(code) / 8 FROM %I WHERE code IS NOT NULL LIMIT 1', tbl) INTO nb;
    FOR q IN EXECUTE format('(SELECT code FROM %I WHERE code IS NOT NULL ORDER BY id LIMIT 4) UNION ALL (SELECT noisy(code, 2) FROM %I WHERE code IS NOT NULL ORDER BY id DESC LIMIT 2) UNION ALL SELECT rnd_code(%s) FROM generate_series(1, 2)', tbl, tbl, nb) LOOP
        n := n + 1;
        diffs := diffs || ARRAY(SELECT check_table(tbl, q));
    END LOOP;
    RETURN QUERY SELECT n, diffs;
END $$;

-- Tables: uniform and hash-like codes at 16, 32, 64, 128 and 256 bits, indexed with each
-- strategy (named <kind><bits>_<strategy>).
DO $$
DECLARE nb int; kind text; strategy text; t text;
BEGIN
    FOREACH nb IN ARRAY ARRAY[2, 4, 8, 16, 32] LOOP
        FOREACH kind IN ARRAY ARRAY['uniform', 'hashlike'] LOOP
            t := kind || nb * 8 || '_lists';
            EXECUTE format('CREATE TABLE %I (id int, code hashcode(%s))', t, nb * 8);
            IF kind = 'uniform' THEN
                EXECUTE format('INSERT INTO %I SELECT i, rnd_code(%s) FROM generate_series(1, 1500) i', t, nb);
            ELSE
                -- 12 centres, bits flipped with probability 1/32: many exact duplicates.
                DROP TABLE IF EXISTS centres;
                EXECUTE format('CREATE TEMP TABLE centres AS SELECT g, rnd_code(%s) AS code FROM generate_series(0, 11) g', nb);
                EXECUTE format('INSERT INTO %I SELECT i, noisy(c.code, 5) FROM generate_series(1, 1500) i JOIN centres c ON c.g = i %% 12', t);
            END IF;
            EXECUTE format('CREATE TABLE %I AS SELECT * FROM %I', kind || nb * 8 || '_substrings', t);
            FOREACH strategy IN ARRAY ARRAY['lists', 'substrings'] LOOP
                t := kind || nb * 8 || '_' || strategy;
                EXECUTE format('CREATE INDEX %I ON %I USING mih (code) WITH (strategy = %s)', t || '_idx', t, strategy);
                EXECUTE format('ANALYZE %I', t);
            END LOOP;
        END LOOP;
    END LOOP;
END $$;
SELECT count(DISTINCT code) < 1500 AS hashlike_has_duplicates FROM hashlike16_lists;
-- Mixed: half clustered, half uniform 64-bit codes in one index.
CREATE TABLE mixed64_lists AS
    SELECT id, code FROM hashlike64_lists WHERE id <= 750
    UNION ALL SELECT 750 + i, rnd_code(8)::hashcode(64) FROM generate_series(1, 750) i;
CREATE TABLE mixed64_substrings AS SELECT * FROM mixed64_lists;
CREATE INDEX mixed64_lists_idx ON mixed64_lists USING mih (code) WITH (strategy = lists);
CREATE INDEX mixed64_substrings_idx ON mixed64_substrings USING mih (code) WITH (strategy = substrings);
ANALYZE mixed64_lists;
ANALYZE mixed64_substrings;

SELECT t, c.queries, c.differences FROM unnest(ARRAY['uniform16', 'hashlike16', 'uniform32', 'hashlike32',
    'uniform64', 'hashlike64', 'mixed64', 'uniform128', 'hashlike128', 'uniform256', 'hashlike256']) k,
    unnest(ARRAY[k || '_lists', k || '_substrings']) t, check_all(t) c;
SELECT t, v.strategy, v.ok, v.tids FROM unnest(ARRAY['uniform16_lists', 'hashlike64_lists', 'uniform256_lists',
    'uniform16_substrings', 'hashlike64_substrings', 'uniform256_substrings']) t, mih_verify((t || '_idx')::regclass) v;

-- After inserts (new codes far from the build's centroids too), updates, deletes, VACUUM
-- (substring tables: the rows wait in the tail, dead ones leave tombstones, VACUUM merges).
CREATE FUNCTION churn(t text) RETURNS TABLE (step text, queries int, differences text[]) LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('INSERT INTO %I SELECT 1500 + i, CASE WHEN i %% 5 = 0 THEN rnd_code(8) ELSE noisy(code, 3) END
                    FROM %I, generate_series(1, 2) i WHERE id <= 600', t, t);
    EXECUTE format('UPDATE %I SET code = noisy(code, 2) WHERE id %% 11 = 0', t);
    EXECUTE format('DELETE FROM %I WHERE id %% 3 = 0', t);
    EXECUTE format('INSERT INTO %I VALUES (100000, NULL), (100001, NULL)', t);
    RETURN QUERY SELECT 'after writes', c.queries, c.differences FROM check_all(t) c;
END $$;
SELECT * FROM churn('hashlike64_lists');
SELECT * FROM churn('hashlike64_substrings');
SELECT strategy, tail_rows > 0 AS rows_in_the_tail, tombstones > 0 AS tombstones FROM mih_verify('hashlike64_substrings_idx');
VACUUM hashlike64_lists;
VACUUM hashlike64_substrings;
SELECT t, c.queries, c.differences FROM unnest(ARRAY['hashlike64_lists', 'hashlike64_substrings']) t, check_all(t) c;
SELECT strategy, generation, tail_rows, tombstones, ok, tids = heap_rows AS all_rows_indexed, problems
  FROM unnest(ARRAY['hashlike64_lists', 'hashlike64_substrings']) t, mih_verify((t || '_idx')::regclass);
-- Most rows deleted: VACUUM shrinks the index's work and results stay exact.
DELETE FROM uniform64_lists WHERE id > 100;
DELETE FROM uniform64_substrings WHERE id > 100;
VACUUM uniform64_lists;
VACUUM uniform64_substrings;
SELECT strategy, ok, tids, heap_rows, tombstones, problems
  FROM unnest(ARRAY['uniform64_lists', 'uniform64_substrings']) t, mih_verify((t || '_idx')::regclass);
SELECT t, c.queries, c.differences FROM unnest(ARRAY['uniform64_lists', 'uniform64_substrings']) t, check_all(t) c;

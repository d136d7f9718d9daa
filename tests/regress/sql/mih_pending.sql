-- Inserted rows are buffered per backend and written in batches: every path that could need
-- them must see them, and rows that roll back or get rebuilt must not linger.
\set SHOW_CONTEXT never
CREATE TABLE pend (id int, code hashcode(32));
INSERT INTO pend SELECT i, hashcode(substring(decode(md5(i::text), 'hex') FOR 4)) FROM generate_series(1, 2000) i;
CREATE INDEX pend_code ON pend USING mih (code);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
CREATE FUNCTION found(i int) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM pend WHERE hamming_within(code, hashcode(substring(decode(md5(i::text), 'hex') FOR 4)), 0) AND id = i
$$;

-- The inserting transaction finds its own rows through the index, in later statements.
BEGIN;
INSERT INTO pend SELECT i, hashcode(substring(decode(md5(i::text), 'hex') FOR 4)) FROM generate_series(2001, 2100) i;
SELECT found(2050) AS own_row_found, (SELECT count(*) FROM (SELECT id FROM pend ORDER BY code <~> '00000000' LIMIT 5000) s) AS knn_rows;
COMMIT;
SELECT ok, tids, heap_rows FROM mih_verify('pend_code');

-- Rolled-back subtransactions leave nothing behind; committed ones stay with their parent.
BEGIN;
INSERT INTO pend VALUES (3001, '30013001');
SAVEPOINT a;
INSERT INTO pend VALUES (3002, '30023002');
ROLLBACK TO a;
SAVEPOINT b;
INSERT INTO pend VALUES (3003, '30033003');
RELEASE b;
SAVEPOINT c;
SAVEPOINT d;
INSERT INTO pend VALUES (3004, '30043004');
RELEASE d;
ROLLBACK TO c;
COMMIT;
SELECT id FROM pend WHERE id > 3000 ORDER BY id;
SELECT ok, tids, heap_rows FROM mih_verify('pend_code');
-- An error rolls the whole transaction's rows back.
BEGIN;
INSERT INTO pend VALUES (3005, '30053005');
SELECT 1 / 0;
COMMIT;
SELECT ok, tids, heap_rows FROM mih_verify('pend_code');

-- A trigger reading the index during the insert sees the rows inserted so far.
CREATE FUNCTION pend_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'trigger sees % new rows through the index',
        (SELECT count(*) FROM pend WHERE hamming_within(code, 'abababab', 0));
    RETURN NULL;
END $$;
CREATE TRIGGER pend_after AFTER INSERT ON pend FOR EACH STATEMENT EXECUTE FUNCTION pend_check();
INSERT INTO pend SELECT 4000 + i, 'abababab' FROM generate_series(1, 30) i;
DROP TRIGGER pend_after ON pend;
COPY pend FROM STDIN;
5001	cdcdcdcd
5002	cdcdcdcd
\.
SELECT count(*) AS copied_rows_found FROM pend WHERE hamming_within(code, 'cdcdcdcd', 0);

-- Rebuilds in the same transaction: no stale or doubled entries.
BEGIN;
INSERT INTO pend SELECT 6000 + i, 'efefefef' FROM generate_series(1, 10) i;
REINDEX INDEX pend_code;
COMMIT;
SELECT ok, tids, heap_rows, problems FROM mih_verify('pend_code');
BEGIN;
INSERT INTO pend SELECT 7000 + i, '12121212' FROM generate_series(1, 10) i;
TRUNCATE pend;
INSERT INTO pend VALUES (1, '34343434');
COMMIT;
SELECT ok, tids, heap_rows, problems FROM mih_verify('pend_code');
BEGIN;
INSERT INTO pend VALUES (2, '56565656');
DROP INDEX pend_code;
COMMIT;

-- Buffers are written when they reach work_mem.
CREATE INDEX pend_code ON pend USING mih (code);
SET work_mem = '64kB';
INSERT INTO pend SELECT i, hashcode(substring(decode(md5(i::text), 'hex') FOR 4)) FROM generate_series(10, 20000) i;
SELECT ok, tids, heap_rows FROM mih_verify('pend_code');
SELECT found(12345) AS found_after_flushes;
RESET work_mem;
RESET enable_seqscan;
RESET enable_bitmapscan;

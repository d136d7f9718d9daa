-- What a hostile user (or a careless model) must not be able to do: read server files through
-- a model, exhaust memory or threads, outlive a statement timeout, read another owner's index
-- statistics, flood the log. Each block failed before the fix it tests. Uses encoder.sql's
-- fixture table. Two cases need more than one session (pg_cancel_backend, pg_terminate_backend,
-- concurrent loads) or a server environment (RUST_BACKTRACE): tests/cluster/scenarios.sh security.
\set SHOW_CONTEXT never
\getenv fixtures ICS_FIXTURES
\if :{?fixtures}
\else
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/../fixtures/encoder'
\endif
SET ics_test.fixtures = :'fixtures';
INSERT INTO fixtures
SELECT f, pg_read_binary_file(current_setting('ics_test.fixtures') || '/' || f)
  FROM unnest(ARRAY['slow_features.onnx', 'wide_image.onnx', 'heavy_image.onnx', 'external_data.onnx']) f;
-- /proc/self is the backend itself: its peak resident size and thread count.
CREATE FUNCTION proc_status(field text) RETURNS bigint LANGUAGE sql VOLATILE SECURITY DEFINER AS $$
    SELECT (regexp_match(pg_read_file('/proc/self/status'), field || ':\s+(\d+)'))[1]::bigint $$;
-- SQLSTATE and whether it came within within_s seconds (20 unless given) of the start.
CREATE FUNCTION timed_out_after(statement text, within_s int = 20) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE started timestamptz := clock_timestamp();
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS OR query_canceled THEN
    RETURN SQLSTATE || CASE WHEN clock_timestamp() - started < make_interval(secs => within_s)
                            THEN ' within ' || within_s || ' s' ELSE ' too late' END;
END $$;

-- 1. A model whose weight "lives" in the data directory's pg_authid file (ONNX external data,
-- resolved against the server's working directory) is refused before ONNX Runtime sees it.
SELECT position('global/1260'::bytea IN fixture('external_data.onnx')) > 0 AS points_at_pg_authid;
SELECT sqlstate_of($$SELECT ics_model_load('leak', fixture('external_data.onnx'))$$);
SELECT count(*) AS loaded FROM ics_models WHERE name = 'leak';

-- 2. A JPEG whose header declares 7000x7000 pixels over the data of a 96x80 image: refused
-- from its structure, before the decoder allocates 49 megapixels.
CREATE TABLE lying AS
SELECT overlay(j PLACING '\x1b581b58'::bytea FROM position('\xffc0'::bytea IN j) + 5) AS img
  FROM (SELECT fixture('cat.jpg') AS j) s;
SELECT sqlstate_of($$SELECT ics_encode((SELECT img FROM lying), 'tiny_image')$$);
SELECT ics_encode(fixture('cat.jpg'), 'tiny_image') IS NOT NULL AS honest_jpeg_ok;

-- 3. Memory outside PostgreSQL's accounting: the limit is a superuser's; batches are sized to
-- fit it. A model with a megabyte of activations per image, 256 images in one call with
-- batch_size 4096: under a 64 MB limit the backend's peak resident size grows by well under
-- the 256 MB one run of everything would take, and the codes are the same as image by image.
SELECT name, bits FROM ics_model_load('wide', fixture('wide_image.onnx'));
SELECT (s ->> 'run_bytes_per_item')::bigint >= 1 << 20 AS megabyte_per_image
  FROM jsonb_array_elements(ics_encoder_info() -> 'sessions') s WHERE s ->> 'model' = 'wide';
CREATE TABLE many AS SELECT array_agg(fixture('cup.jpg')) AS imgs FROM generate_series(1, 256);
SET ics_hash.encoder_memory_limit = '64MB';
SET ics_hash.batch_size = 4096;
CREATE TABLE peak AS SELECT proc_status('VmHWM') * 1024 AS before;
CREATE TABLE codes AS SELECT ics_encode_batch(imgs, 'wide') AS c FROM many;
SELECT proc_status('VmHWM') * 1024 - before < 128 * 1024 * 1024 AS peak_within_bounds,
       (ics_encoder_info() ->> 'onnxruntime_peak_bytes')::bigint <= 64 * 1024 * 1024 AS counted_peak_within_limit
  FROM peak;
-- The smallest limit still encodes everything, in more runs.
CREATE TABLE runs AS SELECT (s ->> 'runs')::int AS before
  FROM jsonb_array_elements(ics_encoder_info() -> 'sessions') s WHERE s ->> 'model' = 'wide';
SET ics_hash.encoder_memory_limit = '16MB';
SELECT (SELECT c FROM codes) = ics_encode_batch(imgs, 'wide') AS same_codes_at_16mb FROM many;
-- (at most 16 images of a megabyte each per run)
SELECT (s ->> 'runs')::int - before >= 256 / 16 AS in_small_runs
  FROM runs, jsonb_array_elements(ics_encoder_info() -> 'sessions') s WHERE s ->> 'model' = 'wide';
SET ics_hash.batch_size = 1;
SELECT (SELECT c FROM codes) = ics_encode_batch(imgs, 'wide') AS same_codes_one_by_one FROM many;
RESET ics_hash.batch_size;
RESET ics_hash.encoder_memory_limit;
SELECT ics_model_drop('wide');
-- A call that cannot fit the limit with even one image fails with 53200 and says why: a real
-- 1500x1500 BMP (24-bit, uncompressed: a 54-byte header, then grey pixels) needs 19.3 MB to
-- decode, more than all of the smallest limit (16 MB). Under the default limit it encodes.
CREATE TABLE big AS
SELECT '\x424d66ff6600000000003600000028000000dc050000dc050000010018000000000030ff6600130b0000130b00000000000000000000'::bytea
       || decode(repeat('80', 1500 * 1500 * 3), 'hex') AS img;
SET ics_hash.encoder_memory_limit = '16MB';
SELECT left(r, 5) AS error, r LIKE '%the encoder''s memory limit of 16.0 MB leaves' AS says_why
  FROM sqlstate_of($$SELECT ics_encode((SELECT img FROM big), 'tiny_image')$$) r;
SELECT left(r, 5) AS error, r LIKE '53200: image [2] of the batch: encoding this image needs %' AS names_the_image
  FROM sqlstate_of($$SELECT ics_encode_batch(ARRAY[fixture('cat.png'), (SELECT img FROM big)], 'tiny_image')$$) r;
RESET ics_hash.encoder_memory_limit;
SELECT ics_encode((SELECT img FROM big), 'tiny_image') IS NOT NULL AS fits_the_default_limit;
DROP TABLE big;

-- 4. Threads are capped for ordinary roles; the cache keeps one session per model however
-- many thread counts are asked for.
CREATE ROLE ics_plain LOGIN;
GRANT USAGE ON SCHEMA public TO ics_plain;
SET ROLE ics_plain;
SELECT sqlstate_of($$SET ics_hash.encoder_memory_limit = '100GB'$$);
SELECT sqlstate_of($$SET ics_hash.max_intra_op_threads = 256$$);
SELECT sqlstate_of($$SET ics_hash.max_image_pixels = 2000000000$$);
SET ics_hash.intra_op_threads = 256;
SELECT (ics_encoder_info() ->> 'intra_op_threads')::int = (ics_encoder_info() ->> 'max_intra_op_threads')::int AS capped,
       (ics_encoder_info() ->> 'intra_op_threads_setting')::int AS asked;
DO $$
BEGIN
    FOR t IN 1..16 LOOP
        PERFORM set_config('ics_hash.intra_op_threads', t::text, false);
        PERFORM ics_encode(fixture('cat.png'), 'tiny_image');
    END LOOP;
END $$;
SELECT count(*) AS tiny_image_sessions
  FROM jsonb_array_elements(ics_encoder_info() -> 'sessions') s WHERE s ->> 'model' = 'tiny_image';
-- ONNX Runtime's pool, the decoding pool and the run watcher: a few threads per CPU, not 500.
SELECT proc_status('Threads') <= 3 * (ics_encoder_info() ->> 'max_intra_op_threads')::int + 4 AS threads_bounded;
RESET ics_hash.intra_op_threads;

-- 5. A statement timeout stops a run whose work the input chooses (10^9 loop iterations, hours
-- of work) within seconds, and the backend is fine afterwards. The model's Loop is not on the
-- operator list (security_models): a superuser allows it for this session.
RESET ROLE;
SET ics_hash.extra_operators = 'Loop';
SELECT name FROM ics_model_load('slow', fixture('slow_features.onnx'));
SET ROLE ics_plain;
SELECT ics_encode('{3,-1,2,-0.5}'::real[], 'slow') AS quick_run;
SET statement_timeout = '1s';
SELECT timed_out_after($$SELECT ics_encode('{1e9,0,0,0}'::real[], 'slow')$$);
RESET statement_timeout;
-- Decoding a long batch stops too (each image checks for the interrupt): 20,000 images take
-- several seconds to decode.
CREATE TEMP TABLE long_batch AS SELECT array_agg(fixture('cup.jpg')) AS imgs FROM generate_series(1, 20000);
SET statement_timeout = '500ms';
SELECT timed_out_after($$SELECT ics_encode_batch(imgs, 'tiny_image') FROM long_batch$$);
RESET statement_timeout;
DROP TABLE long_batch;
-- One node whose time grows with the batch (a MatMul with a constant 3072 x 4096 weight,
-- 12.6 million multiply-adds an image) over 4096 images in one batch, the most
-- ics_hash.batch_size allows any role: a run is capped at the images the model's trial runs
-- say take about a quarter second, so a 1 s timeout stops the statement within 2 s (uncapped,
-- that one node ran for seconds and the timeout waited for it).
RESET ROLE;
SELECT name FROM ics_model_load('heavy', fixture('heavy_image.onnx'));
SET ROLE ics_plain;
CREATE TEMP TABLE heavy_batch AS SELECT array_agg(fixture('tiny.png')) AS imgs FROM generate_series(1, 4096);
SET ics_hash.batch_size = 4096;
SELECT ics_encode(fixture('tiny.png'), 'heavy') IS NOT NULL AS heavy_encodes;
SET statement_timeout = '1s';
SELECT timed_out_after($$SELECT ics_encode_batch(imgs, 'heavy') FROM heavy_batch$$, 2);
RESET statement_timeout;
RESET ics_hash.batch_size;
DROP TABLE heavy_batch;
SELECT ics_encode('{3,-1,2,-0.5}'::real[], 'slow') AS after_timeout;

-- 6. mih_verify is the table owner's (or a superuser's): row and entry counts ignore grants and
-- row-level security. Unknown OIDs are a user error, not an internal one.
RESET ROLE;
CREATE TABLE secret (id int, code hashcode(16));
INSERT INTO secret SELECT i, (i * 7919 % 65536)::bit(16)::hashcode FROM generate_series(1, 5000) i;
CREATE INDEX secret_code ON secret USING mih (code);
ALTER TABLE secret ENABLE ROW LEVEL SECURITY;
CREATE POLICY few ON secret FOR SELECT USING (id <= 500);
GRANT SELECT ON secret TO ics_plain;
SET ROLE ics_plain;
SELECT count(*) AS visible_rows FROM secret;
SELECT sqlstate_of($$SELECT * FROM mih_verify('secret_code')$$);
SELECT sqlstate_of($$SELECT * FROM mih_verify(0)$$);
SELECT sqlstate_of($$SELECT * FROM mih_verify(99999)$$);
RESET ROLE;
SELECT ok, heap_rows FROM mih_verify('secret_code');
ALTER TABLE secret OWNER TO ics_plain;
SET ROLE ics_plain;
SELECT ok, tids FROM mih_verify('secret_code');
RESET ROLE;

-- 7. Errors echo at most 80 characters of a bad input.
SELECT length(sqlstate_of(format($$SELECT %L::hamming_ball$$, repeat('z', 1000000)))) < 400 AS short_message;
SELECT length(sqlstate_of(format($$SELECT %L::hamming_ball$$, '8f3a:' || repeat('9', 1000000)))) < 400 AS short_radius_message;

-- 8. An index made on a hashcode column without a length before such columns were refused
-- (the catalog edited to stand for one): scans keep working; inserts fail with the ALTER
-- TABLE to run, which rebuilds the index.
CREATE TABLE untyped (id serial, code hashcode(16));
INSERT INTO untyped (code) VALUES ('0102'), (NULL), ('ff02');
CREATE INDEX untyped_code ON untyped USING mih (code);
UPDATE pg_attribute SET atttypmod = -1
    WHERE attrelid IN ('untyped'::regclass, 'untyped_code'::regclass) AND attname = 'code';
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT id FROM untyped WHERE hamming_within(code, '0102', 1);
SELECT id FROM untyped ORDER BY code <~> '0000';
RESET enable_seqscan;
RESET enable_bitmapscan;
INSERT INTO untyped (code) VALUES ('0304');
INSERT INTO untyped (code) VALUES (NULL);
ALTER TABLE untyped ALTER COLUMN code TYPE hashcode(16);
INSERT INTO untyped (code) VALUES ('0304'), (NULL);
SELECT ok, code_bits, tids, nulls FROM mih_verify('untyped_code');

DROP TABLE secret;
SELECT ics_model_drop('slow');
RESET ics_hash.extra_operators;
REVOKE USAGE ON SCHEMA public FROM ics_plain;
DROP ROLE ics_plain;

-- The encoder: models stored in the database, ics_encode of images and feature vectors, codes
-- equal to the golden codes of the trainer's own inference path, the registry, privileges,
-- plans. Fixtures: tests/fixtures/encoder/, made by
--     cargo run -p ics-train --example make_encoder_fixtures
-- (scripts/test.sh copies them where the server can read them and sets ICS_FIXTURES).
\set SHOW_CONTEXT never
\getenv fixtures ICS_FIXTURES
\if :{?fixtures}
\else
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/../fixtures/encoder'
\endif
SET ics_test.fixtures = :'fixtures';
CREATE TABLE fixtures (file text PRIMARY KEY, bytes bytea);
INSERT INTO fixtures
SELECT f, pg_read_binary_file(current_setting('ics_test.fixtures') || '/' || f)
  FROM unnest(ARRAY['cat.png', 'cat.jpg', 'cat.bmp', 'cat.gif', 'cat.webp', 'tall.jpg', 'cup.jpg',
                    'grey.png', 'rgba.png', 'tiny.png', 'truncated.jpg', 'truncated.png',
                    'corrupt.png', 'tiny_image.onnx', 'tiny_features.onnx', 'nan_features.onnx',
                    'wrong_bits.onnx', 'no_contract.onnx', 'bad_graph.onnx']) f;
GRANT SELECT ON fixtures TO PUBLIC;
CREATE FUNCTION fixture(name text) RETURNS bytea LANGUAGE sql STABLE
    AS $$ SELECT bytes FROM fixtures WHERE file = name $$;
CREATE TABLE golden_images (file text, code hashcode);
\set golden :fixtures '/golden_images.csv'
COPY golden_images FROM :'golden' (FORMAT csv, HEADER);
GRANT SELECT ON golden_images TO PUBLIC;
CREATE TABLE golden_features (features real[], code hashcode);
\set golden :fixtures '/golden_features.csv'
COPY golden_features FROM :'golden' (FORMAT csv, HEADER);

-- Nothing loaded: ics_encode says so.
SELECT count(*) AS models FROM ics_models;
SELECT sqlstate_of($$SELECT ics_encode(fixture('cat.png'))$$);

-- Loading returns the ics_models row.
SELECT name, bits, input_kind, input_size, size_bytes = length(fixture('tiny_image.onnx')) AS size_ok,
       sha256 = encode(sha256(fixture('tiny_image.onnx')), 'hex') AS sha256_ok, backbone
  FROM ics_model_load('tiny_image', fixture('tiny_image.onnx'));
SELECT contract ->> 'resize' AS resize, contract -> 'norm_mean' AS mean, contract -> 'norm_std' AS std,
       jsonb_array_length(contract -> 'centres') AS centres, created_by
  FROM ics_models WHERE name = 'tiny_image';

-- The only model is the default.
SELECT ics_encode(fixture('cat.png')) AS code, ics_encode(fixture('cat.png')) = code AS matches
  FROM golden_images WHERE file = 'cat.png';

-- Every format gives the trainer's golden code.
SELECT file, code AS golden, ics_encode(fixture(file), 'tiny_image') = code AS matches
  FROM golden_images ORDER BY file;

-- The batch form: the same codes in the same order, whatever the batch size and threads.
SELECT ics_encode_batch(array_agg(fixture(file) ORDER BY file), 'tiny_image')
       = array_agg(code ORDER BY file) AS batch_matches FROM golden_images;
SET ics_hash.batch_size = 3;
SET ics_hash.intra_op_threads = 2;
SELECT ics_encode_batch(array_agg(fixture(file) ORDER BY file), 'tiny_image')
       = array_agg(code ORDER BY file) AS batch_matches FROM golden_images;
SELECT ics_encode_batch(array_agg(fixture(file) ORDER BY file))
       = array_agg(code ORDER BY file) AS default_model_batch_matches FROM golden_images;
RESET ics_hash.batch_size;
RESET ics_hash.intra_op_threads;
SELECT ics_encode_batch(ARRAY[fixture('cat.png'), NULL, fixture('cup.jpg')], 'tiny_image') AS with_null;
SELECT ics_encode_batch('{}'::bytea[], 'tiny_image') AS empty;
SELECT ics_encode_batch(NULL::bytea[], 'tiny_image') AS null_array, ics_encode(NULL::bytea, 'tiny_image') AS null_image;
SELECT array_lower(c, 1), array_upper(c, 1)
  FROM (SELECT ics_encode_batch(('[5:6]=' || ARRAY[fixture('cat.png'), fixture('tiny.png')]::text)::bytea[], 'tiny_image') c) s;

-- Feature-input models.
SELECT name, bits, input_kind, input_size FROM ics_model_load('tiny_features', fixture('tiny_features.onnx'));
SELECT features, code AS golden, ics_encode(features, 'tiny_features') = code AS matches
  FROM golden_features ORDER BY features::text;
SELECT name, bits, input_kind, input_size, created_by FROM ics_models ORDER BY name;

-- Two models: the default needs ics_hash.model.
SELECT sqlstate_of($$SELECT ics_encode(fixture('cat.png'))$$);
SET ics_hash.model = 'tiny_image';
SELECT ics_encode(fixture('cup.jpg')) = (SELECT code FROM golden_images WHERE file = 'cup.jpg') AS by_setting;
SET ics_hash.model = 'no_such_model';
SELECT sqlstate_of($$SELECT ics_encode(fixture('cat.png'))$$);
RESET ics_hash.model;
SELECT sqlstate_of($$SET ics_hash.no_such_setting = 1$$);

-- What the backend runs on (the CPU here) and why; DEBUG1 says it when a session is built.
SELECT info ->> 'onnxruntime_loaded' AS loaded, info ->> 'onnxruntime_version' ~ '^1\.\d+' AS version,
       info -> 'available_providers' ? 'CPUExecutionProvider' AS has_cpu,
       info ->> 'execution_provider_setting' AS setting, info ->> 'intra_op_threads' AS threads
  FROM (SELECT ics_encoder_info() AS info) s;
-- One session per model and provider: the run with two threads replaced the one-thread
-- session, and the later one-thread run replaced it back.
SELECT s ->> 'model' AS model, s ->> 'execution_provider' AS provider, s ->> 'setting' AS setting,
       s ->> 'intra_op_threads' AS threads, (s ->> 'runs')::int > 0 AS ran
  FROM jsonb_array_elements(ics_encoder_info() -> 'sessions') s ORDER BY 1, 4;
SET ics_hash.execution_provider = cpu;
SET client_min_messages = debug1;
SELECT ics_encode(fixture('tiny.png'), 'tiny_image') AS code;
RESET client_min_messages;
RESET ics_hash.execution_provider;

-- Registry errors.
SELECT sqlstate_of($$SELECT ics_model_load('tiny_image', fixture('tiny_image.onnx'))$$);
SELECT name, bits FROM ics_model_load('tiny_image', fixture('tiny_image.onnx'), replace => true);
SELECT sqlstate_of($$SELECT ics_model_load('', fixture('tiny_image.onnx'))$$);
SELECT sqlstate_of($$SELECT ics_model_load(repeat('x', 64), fixture('tiny_image.onnx'))$$);
SELECT sqlstate_of($$SELECT ics_model_load('garbage', '\xdeadbeef')$$);
SELECT sqlstate_of($$SELECT ics_model_load('empty', '')$$);
SELECT sqlstate_of($$SELECT ics_model_load('null', NULL)$$);
SELECT sqlstate_of($$SELECT ics_model_load('no_contract', fixture('no_contract.onnx'))$$);
SELECT sqlstate_of($$SELECT ics_model_load('bad_graph', fixture('bad_graph.onnx'))$$);
SELECT sqlstate_of($$SELECT ics_model_load('wrong_bits', fixture('wrong_bits.onnx'))$$);
SELECT sqlstate_of($$SELECT ics_model_drop('no_such_model')$$);
SELECT ics_model_drop('no_such_model', missing_ok => true);
SELECT name FROM ics_models ORDER BY name;

-- Privileges: encoding is for everyone, loading for superusers and ics_hash_admin.
CREATE ROLE regress_ics_user;
CREATE ROLE regress_ics_loader IN ROLE ics_hash_admin;
SET ROLE regress_ics_user;
SELECT ics_encode(fixture('cat.jpg'), 'tiny_image') = (SELECT code FROM golden_images WHERE file = 'cat.jpg') AS user_encodes;
SELECT count(*) AS user_sees_models FROM ics_models;
SELECT sqlstate_of($$SELECT ics_model_load('mine', fixture('tiny_features.onnx'))$$);
SELECT sqlstate_of($$SELECT ics_model_drop('tiny_image')$$);
SELECT sqlstate_of($$DELETE FROM ics_hash_private.ics_model_registry$$);
RESET ROLE;
SET ROLE regress_ics_loader;
SELECT name, created_by FROM ics_model_load('loaded_by_admin', fixture('tiny_features.onnx'));
SELECT ics_model_drop('loaded_by_admin');
RESET ROLE;
DROP ROLE regress_ics_user;
DROP ROLE regress_ics_loader;

-- The registry is dumped with the database.
SELECT extconfig::regclass[] FROM pg_extension WHERE extname = 'ics_hash';

-- ics_encode is STABLE: a k-NN query encodes its image once and uses the mih index.
CREATE TABLE photos (id int PRIMARY KEY, code hashcode(64));
INSERT INTO photos SELECT i, hashtextextended('photo ' || i, 0)::hashcode FROM generate_series(1, 5000) i;
INSERT INTO photos SELECT 10000 + row_number() OVER (ORDER BY file), ics_encode(fixture(file), 'tiny_image')
  FROM golden_images;
CREATE INDEX photos_code ON photos USING mih (code);
ANALYZE photos;
SET plan_cache_mode = force_generic_plan;
PREPARE knn(bytea) AS
    SELECT id, hamming(code, ics_encode($1, 'tiny_image')) AS d FROM photos
     ORDER BY hamming(code, ics_encode($1, 'tiny_image')) LIMIT 10;
EXPLAIN (COSTS OFF) EXECUTE knn('\x00');
PREPARE near(bytea) AS SELECT id FROM photos WHERE hamming_within(code, ics_encode($1, 'tiny_image'), 3);
EXPLAIN (COSTS OFF) EXECUTE near('\x00');
CREATE FUNCTION encoder_runs() RETURNS bigint LANGUAGE sql
    AS $$ SELECT coalesce(sum((s ->> 'runs')::bigint), 0) FROM jsonb_array_elements(ics_encoder_info() -> 'sessions') s $$;
-- Executed: the 10 fixture images are the nearest; the network ran once for the whole query
-- (for the ORDER BY key at the index scan's start; the select list reuses the code).
SELECT encoder_runs() AS runs_before \gset
SELECT id, d FROM (
    SELECT id, hamming(code, ics_encode(fixture('cat.png'), 'tiny_image')) AS d FROM photos
     ORDER BY hamming(code, ics_encode(fixture('cat.png'), 'tiny_image')) LIMIT 10) s
 ORDER BY d, id;
SELECT encoder_runs() - :runs_before AS network_runs;
-- A sequential scan evaluates the expression per row; the backend remembers its last image.
SET enable_indexscan = off;
DEALLOCATE knn;
PREPARE knn(bytea) AS
    SELECT id FROM photos ORDER BY hamming(code, ics_encode($1, 'tiny_image')) LIMIT 10;
EXPLAIN (COSTS OFF) EXECUTE knn('\x00');
SELECT encoder_runs() AS runs_before \gset
SELECT count(*) AS rows FROM (
    SELECT id FROM photos ORDER BY hamming(code, ics_encode(fixture('cup.jpg'), 'tiny_image')) LIMIT 10) s;
SELECT encoder_runs() - :runs_before AS network_runs;
RESET enable_indexscan;
RESET plan_cache_mode;

-- Encoding a table row by row and in batches gives the same codes.
SELECT count(*) FILTER (WHERE ics_encode(bytes, 'tiny_image') = g.code) AS row_by_row
  FROM fixtures f JOIN golden_images g USING (file);
SELECT count(*) AS in_batches FROM (
    SELECT unnest(ics_encode_batch(array_agg(bytes ORDER BY file), 'tiny_image')) AS c,
           unnest(array_agg(g.code ORDER BY file)) AS g
      FROM fixtures f JOIN golden_images g USING (file)) s WHERE c = g;

-- Dropping a model.
SELECT ics_model_drop('tiny_features');
SELECT sqlstate_of($$SELECT ics_encode('{1,2,3,4,5,6,7,8}'::real[], 'tiny_features')$$);
SELECT name FROM ics_models ORDER BY name;

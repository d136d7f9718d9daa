-- What a model file must not get past (README, Security): ONNX Runtime's own format hidden in
-- valid ONNX bytes, and operators a run cannot be stopped inside; who may widen the operator
-- list. Each block failed before the fix it tests. Uses encoder.sql's fixture table.
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
  FROM unnest(ARRAY['ort_format_features.onnx', 'nms_features.onnx', 'runtime_matmul_features.onnx',
                    'slow_features.onnx', 'wide_image.onnx']) f
ON CONFLICT (file) DO NOTHING;
-- SQLSTATE, message and hint of the error a statement raises.
CREATE FUNCTION error_of(statement text, OUT state text, OUT message text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    state := 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            hint = PG_EXCEPTION_HINT;
END $$;
\x on

-- 1. Bytes that are a valid ONNX model and carry ONNX Runtime's format marker ("ORTM" at offset
-- 4, after two unknown protobuf fields): ONNX Runtime, left to guess, would run an ORT-format
-- graph nothing checked. Refused at load (and every session forces the ONNX format).
SELECT substr(fixture('ort_format_features.onnx'), 5, 4) = convert_to('ORTM', 'UTF8') AS ortm_at_offset_4;
SELECT * FROM error_of($$SELECT ics_model_load('ortm', fixture('ort_format_features.onnx'))$$);

-- 2. Operators a run cannot be stopped inside are refused at load, even for a superuser, until
-- a superuser names them: NonMaxSuppression (quadratic in its boxes), a MatMul of two run-time
-- tensors (the input by its own transpose), a Loop whose trip count the input picks.
SELECT * FROM error_of($$SELECT ics_model_load('nms', fixture('nms_features.onnx'))$$);
SELECT * FROM error_of($$SELECT ics_model_load('gram', fixture('runtime_matmul_features.onnx'))$$);
SELECT * FROM error_of($$SELECT ics_model_load('loop', fixture('slow_features.onnx'))$$);
\x off
SELECT count(*) AS refused_models_loaded FROM ics_models WHERE name IN ('ortm', 'nms', 'gram', 'loop');
-- The product's own models load: the trainer's exports (a backbone merged with a hash head, a
-- feature head) and the encoder's convolution test model.
SELECT name, bits FROM ics_model_load('own_image', fixture('tiny_image.onnx'));
SELECT name, bits FROM ics_model_load('own_features', fixture('tiny_features.onnx'));
SELECT name, bits FROM ics_model_load('own_wide', fixture('wide_image.onnx'));
SELECT ics_encode(fixture('cat.png'), 'own_image') IS NOT NULL AS own_image_encodes;
SELECT ics_model_drop('own_image'), ics_model_drop('own_features'), ics_model_drop('own_wide');

-- 3. A superuser widens the list: the named operator loads and runs (its codes are the plain
-- feature model's); a listed operator named there loses its structural rule too.
SET ics_hash.extra_operators = 'NonMaxSuppression, MatMul';
SELECT name FROM ics_model_load('nms', fixture('nms_features.onnx'));
SELECT name FROM ics_model_load('gram', fixture('runtime_matmul_features.onnx'));
SELECT ics_encode('{3,-1,2,-0.5}'::real[], 'nms') AS nms_code,
       ics_encode('{3,-1,2,-0.5}'::real[], 'gram') AS gram_code;
-- Narrowed again: the cached sessions are dropped and building them again is refused, so a
-- registry row is checked whenever a backend builds its session, not only at load.
RESET ics_hash.extra_operators;
SELECT left(r, 5) AS error, r LIKE '%NonMaxSuppression%' AS names_the_operator
  FROM sqlstate_of($$SELECT ics_encode('{3,-1,2,-0.5}'::real[], 'nms')$$) r;
SELECT left(r, 5) AS error, r LIKE '%MatMul%' AS names_the_operator
  FROM sqlstate_of($$SELECT ics_encode('{3,-1,2,-0.5}'::real[], 'gram')$$) r;
SELECT ics_model_drop('nms'), ics_model_drop('gram');

-- 4. Only a superuser may widen it: neither a plain role nor a member of ics_hash_admin (who
-- may load models, within the list only).
CREATE ROLE ics_models_plain;
CREATE ROLE ics_models_admin IN ROLE ics_hash_admin;
SET ROLE ics_models_plain;
SELECT sqlstate_of($$SET ics_hash.extra_operators = 'Loop'$$);
SELECT sqlstate_of($$SELECT set_config('ics_hash.extra_operators', 'Loop', false)$$);
SET ROLE ics_models_admin;
SELECT sqlstate_of($$SET ics_hash.extra_operators = 'Loop'$$);
SELECT left(sqlstate_of($$SELECT ics_model_load('loop', fixture('slow_features.onnx'))$$), 5) AS admin_load;
RESET ROLE;
SHOW ics_hash.extra_operators;
DROP ROLE ics_models_plain;
DROP ROLE ics_models_admin;
DROP FUNCTION error_of(text);

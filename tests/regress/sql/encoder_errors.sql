-- Bad input to the encoder: every case is an ERROR with its own SQLSTATE, and the backend
-- stays usable (each error is followed by a good call). Uses the tables of encoder.sql.
\set SHOW_CONTEXT never
CREATE FUNCTION cat_ok() RETURNS boolean LANGUAGE sql AS $$
    SELECT ics_encode(fixture('cat.png'), 'tiny_image') = code FROM golden_images WHERE file = 'cat.png' $$;

-- Images that are not images.
SELECT sqlstate_of($$SELECT ics_encode(''::bytea, 'tiny_image')$$);
SELECT sqlstate_of($$SELECT ics_encode('hello, world'::bytea, 'tiny_image')$$);
SELECT sqlstate_of($$SELECT ics_encode(fixture('truncated.jpg'), 'tiny_image')$$);
SELECT sqlstate_of($$SELECT ics_encode(fixture('truncated.png'), 'tiny_image')$$);
SELECT sqlstate_of($$SELECT ics_encode(fixture('corrupt.png'), 'tiny_image')$$);
SELECT cat_ok();
-- A format that is recognised but not decoded (TIFF).
SELECT sqlstate_of($$SELECT ics_encode('\x49492a0008000000'::bytea, 'tiny_image')$$);
-- Too many pixels (the limit is checked from the header).
SET ics_hash.max_image_pixels = 1000;
SELECT sqlstate_of($$SELECT ics_encode(fixture('cat.png'), 'tiny_image')$$);
SELECT ics_encode(fixture('tiny.png'), 'tiny_image') IS NOT NULL AS small_image_ok;
RESET ics_hash.max_image_pixels;
SELECT cat_ok();
-- A bad image in a batch names its subscript.
SELECT sqlstate_of($$SELECT ics_encode_batch(ARRAY[fixture('cat.png'), fixture('truncated.jpg')], 'tiny_image')$$);
SELECT sqlstate_of($$SELECT ics_encode_batch(ARRAY[[fixture('cat.png')]], 'tiny_image')$$);
SELECT cat_ok();

-- Wrong model: unknown name, the wrong kind of input.
SELECT sqlstate_of($$SELECT ics_encode(fixture('cat.png'), 'no_such_model')$$);
SELECT sqlstate_of($$SELECT ics_encode_batch(ARRAY[fixture('cat.png')], 'no_such_model')$$);
SELECT (ics_model_load('features', fixture('tiny_features.onnx'))).name AS loaded;
SELECT sqlstate_of($$SELECT ics_encode(fixture('cat.png'), 'features')$$);
SELECT sqlstate_of($$SELECT ics_encode('{1,2,3}'::real[], 'tiny_image')$$);
SELECT cat_ok();

-- Features of the wrong shape or value.
SELECT sqlstate_of($$SELECT ics_encode('{1,2,3}'::real[], 'features')$$);
SELECT sqlstate_of($$SELECT ics_encode('{}'::real[], 'features')$$);
SELECT sqlstate_of($$SELECT ics_encode('{{1,2,3,4},{5,6,7,8}}'::real[], 'features')$$);
SELECT sqlstate_of($$SELECT ics_encode('{1,2,3,4,5,6,7,NULL}'::real[], 'features')$$);
SELECT sqlstate_of($$SELECT ics_encode('{1,2,3,4,5,6,7,NaN}'::real[], 'features')$$);
SELECT sqlstate_of($$SELECT ics_encode('{1,2,3,4,5,6,7,Infinity}'::real[], 'features')$$);
SELECT ics_encode('{1,2,3,4,5,6,7,8}'::real[], 'features') IS NOT NULL AS features_ok;

-- A model whose network produces NaN (sqrt of a negative feature): no sign, no code.
SELECT name, bits FROM ics_model_load('nan', fixture('nan_features.onnx'));
SELECT ics_encode('{1,2,3,4,5,6,7,8}'::real[], 'nan') AS positive_features;
SELECT sqlstate_of($$SELECT ics_encode('{1,2,3,-4,5,6,7,8}'::real[], 'nan')$$);
SELECT cat_ok();

-- A model whose output is not its declared length (its graph says N x K, it computes N x 8):
-- ics_model_load refuses it, and so does a backend building a session for one that was
-- written into the table behind the loader's back.
SELECT sqlstate_of($$SELECT ics_model_load('wrong_bits', fixture('wrong_bits.onnx'))$$);
INSERT INTO ics_hash_private.ics_model_registry (name, onnx, sha256, bits, input_kind, contract)
SELECT 'wrong_bits', fixture('wrong_bits.onnx'), encode(sha256(fixture('wrong_bits.onnx')), 'hex'),
       16, 'features', '{}';
SELECT sqlstate_of($$SELECT ics_encode('{1,2,3,4,5,6,7,8}'::real[], 'wrong_bits')$$);
-- The table checks the sha256 of what is written into it.
SELECT sqlstate_of($$INSERT INTO ics_hash_private.ics_model_registry (name, onnx, sha256, bits, input_kind, contract)
                     VALUES ('forged', '\x00', 'abc', 8, 'features', '{}')$$);
DELETE FROM ics_hash_private.ics_model_registry WHERE name = 'wrong_bits';

-- Still healthy.
SELECT cat_ok();
SELECT ics_model_drop('nan'), ics_model_drop('features');

-- A read-only transaction (a standby's are all read-only) cannot change the registry: 25006
-- before any work (tests/cluster/sharding.sh checks a real standby).
BEGIN READ ONLY;
SELECT sqlstate_of($$SELECT ics_model_load('read_only', fixture('tiny_features.onnx'))$$);
SELECT sqlstate_of($$SELECT ics_model_drop('read_only', true)$$);
COMMIT;

-- The encoding pipeline of ics_encode_batch (ics_hash.decode_threads threads decode chunk k+1
-- while chunk k runs through the network) and the on_error argument of ics_encode_batch and
-- ics_encode. Uses encoder.sql's tables
-- and its model tiny_image; names the model everywhere (encoder_errors, beside it, loads more).
\set SHOW_CONTEXT never

-- ics_hash.decode_threads: a superuser's; 0 means the CPU count, at most 16.
SELECT (ics_encoder_info() ->> 'decode_threads')::int BETWEEN 1 AND 16 AS from_the_machine;
SHOW ics_hash.decode_threads;
SET ics_hash.decode_threads = 3;
SELECT (ics_encoder_info() ->> 'decode_threads')::int AS decode_threads;
CREATE ROLE regress_ics_pipe;
SET ROLE regress_ics_pipe;
SELECT sqlstate_of($$SET ics_hash.decode_threads = 64$$);
RESET ROLE;
DROP ROLE regress_ics_pipe;

-- 100 images of every format; the codes of a batch of many chunks, in order, equal those of
-- row-by-row ics_encode, whatever the chunk size and the decoding threads.
CREATE TABLE pipe AS
SELECT i, fixture((ARRAY['cat.png', 'cat.jpg', 'cat.bmp', 'cat.gif', 'cat.webp', 'tall.jpg', 'cup.jpg',
                         'grey.png', 'rgba.png', 'tiny.png'])[(i * 7) % 10 + 1]) AS img
  FROM generate_series(1, 100) i;
CREATE TABLE pipe_codes AS SELECT i, ics_encode(img, 'tiny_image') AS code FROM pipe;
CREATE FUNCTION pipe_matches() RETURNS boolean LANGUAGE sql AS $$
    SELECT ics_encode_batch(array_agg(img ORDER BY i), 'tiny_image')
           = (SELECT array_agg(code ORDER BY i) FROM pipe_codes) FROM pipe $$;
SELECT count(DISTINCT code) AS distinct_codes FROM pipe_codes;
SELECT b AS batch_size, t AS decode_threads, set_config('ics_hash.batch_size', b::text, false) IS NOT NULL
           AND set_config('ics_hash.decode_threads', t::text, false) IS NOT NULL AND pipe_matches() AS matches
  FROM unnest(ARRAY[1, 3, 7, 32]) b, unnest(ARRAY[1, 2, 5]) t ORDER BY 1, 2;
RESET ics_hash.decode_threads;
RESET ics_hash.batch_size;

-- The memory bound: the smallest limit still encodes the batch (chunks that cannot overlap run
-- one after the other); an image that cannot fit even alone is 53200, naming it.
SET ics_hash.encoder_memory_limit = '16MB';
SET ics_hash.batch_size = 4096;
SELECT pipe_matches() AS matches_at_16mb;
CREATE TABLE big AS
SELECT '\x424d66ff6600000000003600000028000000dc050000dc050000010018000000000030ff6600130b0000130b00000000000000000000'::bytea
       || decode(repeat('80', 1500 * 1500 * 3), 'hex') AS img;
SELECT left(r, 5) AS error, r LIKE '53200: image [3] of the batch: encoding this image needs %' AS names_the_image
  FROM sqlstate_of($$SELECT ics_encode_batch(ARRAY[fixture('cat.png'), fixture('cup.jpg'), (SELECT img FROM big)], 'tiny_image')$$) r;
-- (the memory limit is not the image's fault: on_error 'null' does not hide it)
SELECT left(r, 5) AS error
  FROM sqlstate_of($$SELECT ics_encode_batch(ARRAY[fixture('cat.png'), (SELECT img FROM big)], 'tiny_image', 'null')$$) r;
RESET ics_hash.batch_size;
RESET ics_hash.encoder_memory_limit;
SELECT pipe_matches() AS matches_after;

-- A statement timeout cancels a long batch of many chunks (57014, PostgreSQL's own error), and
-- the next statement works.
CREATE FUNCTION sqlstate_with_cancel(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS OR query_canceled THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE TEMP TABLE long_batch AS SELECT array_agg(fixture('cup.jpg')) AS imgs FROM generate_series(1, 20000);
SET ics_hash.batch_size = 8;
SET statement_timeout = '300ms';
SELECT sqlstate_with_cancel($$SELECT ics_encode_batch(imgs, 'tiny_image') FROM long_batch$$);
RESET statement_timeout;
SELECT pipe_matches() AS works_after_the_cancel;
RESET ics_hash.batch_size;
DROP TABLE long_batch;

-- on_error 'null': an undecodable image (corrupt, truncated, not an image, refused from its
-- header) gets a NULL code in its place, and a NOTICE says how many; NULL images stay NULL.
SELECT ics_encode_batch(ARRAY[fixture('cat.png'), fixture('truncated.jpg'), NULL, fixture('cup.jpg'),
                              '\x00'::bytea, fixture('corrupt.png')], 'tiny_image', 'null') AS codes;
SELECT ics_encode_batch(ARRAY[fixture('cat.png'), fixture('truncated.jpg'), NULL, fixture('cup.jpg')], 'tiny_image', 'null')
       = ARRAY[(SELECT code FROM golden_images WHERE file = 'cat.png'), NULL, NULL,
               (SELECT code FROM golden_images WHERE file = 'cup.jpg')] AS in_place;
-- Mixed good and bad images over many chunks keep their order.
SET ics_hash.batch_size = 3;
SELECT ics_encode_batch(array_agg(CASE WHEN i % 3 = 0 THEN fixture('truncated.png') ELSE img END ORDER BY i), 'tiny_image', 'null')
       = (SELECT array_agg(CASE WHEN i % 3 = 0 THEN NULL ELSE code END ORDER BY i) FROM pipe_codes) AS mixed_in_order
  FROM pipe;
RESET ics_hash.batch_size;
-- Refused from the header (too many pixels) is undecodable too.
SET ics_hash.max_image_pixels = 1000;
SELECT c[1] IS NULL AS large_is_null, c[2] IS NOT NULL AS small_is_coded
  FROM ics_encode_batch(ARRAY[fixture('cat.png'), fixture('tiny.png')], 'tiny_image', 'null') c;
RESET ics_hash.max_image_pixels;
-- Every image undecodable: all NULL. No bad image: no NOTICE.
SELECT ics_encode_batch(ARRAY['\x00'::bytea, ''::bytea], 'tiny_image', 'null') AS all_null;
SELECT ics_encode_batch(ARRAY[fixture('cat.png')], 'tiny_image', 'null')
       = ARRAY[(SELECT code FROM golden_images WHERE file = 'cat.png')] AS no_notice;
-- 'error' (any case) is the two-argument form: the first undecodable image fails the call.
SELECT sqlstate_of($$SELECT ics_encode_batch(ARRAY[fixture('cat.png'), fixture('truncated.jpg')], 'tiny_image', 'Error')$$);
-- A NULL model is the default model; named arguments; a NULL array is NULL.
SET ics_hash.model = 'tiny_image';
SELECT ics_encode_batch(ARRAY[fixture('cup.jpg'), '\x00'::bytea], NULL, 'null')
       = ARRAY[(SELECT code FROM golden_images WHERE file = 'cup.jpg'), NULL] AS default_model;
SELECT ics_encode_batch(images => ARRAY[fixture('cup.jpg')], model => NULL, on_error => 'null')
       = ARRAY[(SELECT code FROM golden_images WHERE file = 'cup.jpg')] AS named;
RESET ics_hash.model;
SELECT ics_encode_batch(NULL, 'tiny_image', 'null') IS NULL AS null_array;
-- Only 'error' and 'null' (22023, with a hint; NULL: 22004).
SELECT sqlstate_of($$SELECT ics_encode_batch(ARRAY[fixture('cat.png')], 'tiny_image', 'skip')$$);
SELECT sqlstate_of($$SELECT ics_encode_batch(ARRAY[fixture('cat.png')], 'tiny_image', NULL)$$);
SELECT ics_encode_batch(ARRAY[fixture('cat.png')], 'tiny_image', 'skip');
-- The model's failures are not the image's: still errors.
SELECT sqlstate_of($$SELECT ics_encode_batch(ARRAY[fixture('cat.png')], 'no_such_model', 'null')$$);
-- ics_encode(image, model, on_error): the same for one image.
SELECT ics_encode(fixture('truncated.jpg'), 'tiny_image', 'null') IS NULL AS undecodable_is_null;
SELECT ics_encode(fixture('cup.jpg'), 'tiny_image', 'null') = code AS decodable_is_coded
  FROM golden_images WHERE file = 'cup.jpg';
SELECT sqlstate_of($$SELECT ics_encode(fixture('truncated.jpg'), 'tiny_image', 'error')$$);
SELECT sqlstate_of($$SELECT ics_encode(fixture('cup.jpg'), 'tiny_image', 'ignore')$$);
SET ics_hash.model = 'tiny_image';
SELECT ics_encode(fixture('cat.png'), NULL, 'null') = code AS default_model
  FROM golden_images WHERE file = 'cat.png';
RESET ics_hash.model;
SELECT ics_encode(NULL, 'tiny_image', 'null') IS NULL AS null_image;
DROP TABLE big, pipe, pipe_codes;
DROP FUNCTION pipe_matches(), sqlstate_with_cancel(text);

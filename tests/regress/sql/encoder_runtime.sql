-- Loading ONNX Runtime: a missing or wrong library is an ERROR (never a crash) and the
-- backend may retry with a fixed setting; CUDA asked for where it cannot be had says why.
-- A fresh backend: nothing is loaded until the first encoder call.
\set SHOW_CONTEXT never
\c
SET ics_hash.onnxruntime_library = '/nonexistent/libonnxruntime.so.1.31.1';
SELECT sqlstate_of($$SELECT ics_encode(fixture('cat.png'), 'tiny_image')$$);
SELECT info ->> 'onnxruntime_loaded' AS loaded, info ->> 'error' AS error
  FROM (SELECT ics_encoder_info() AS info) s;
-- A file that is not a shared library.
SELECT set_config('ics_hash.onnxruntime_library', current_setting('data_directory') || '/PG_VERSION', false) IS NOT NULL AS set;
SELECT split_part(sqlstate_of($$SELECT ics_encode(fixture('cat.png'), 'tiny_image')$$), ':', 1) AS sqlstate;
-- Fixed: the same backend loads the library now.
RESET ics_hash.onnxruntime_library;
SELECT ics_encode(fixture('cat.png'), 'tiny_image') = code AS works FROM golden_images WHERE file = 'cat.png';
SELECT info ->> 'onnxruntime_loaded' AS loaded, info ->> 'onnxruntime_library_source' AS source
  FROM (SELECT ics_encoder_info() AS info) s;
-- Only superusers choose the library.
CREATE ROLE regress_ics_plain;
SET ROLE regress_ics_plain;
SELECT sqlstate_of($$SET ics_hash.onnxruntime_library = '/tmp/x.so'$$);
SELECT sqlstate_of($$SET ics_hash.max_image_pixels = 100000000$$);
RESET ROLE;
DROP ROLE regress_ics_plain;

-- This ONNX Runtime is the CPU build: cuda is an error that says why, auto falls back.
SET ics_hash.execution_provider = cuda;
SELECT sqlstate_of($$SELECT ics_encode(fixture('cup.jpg'), 'tiny_image')$$) ~ '^0A000: model "tiny_image": ics_hash.execution_provider is cuda, but ' AS cuda_refused;
SET ics_hash.execution_provider = auto;
SELECT ics_encode(fixture('cup.jpg'), 'tiny_image') = code AS auto_works FROM golden_images WHERE file = 'cup.jpg';
SELECT s ->> 'execution_provider' AS provider, s ->> 'reason' LIKE 'auto: %' AS reason_given
  FROM jsonb_array_elements(ics_encoder_info() -> 'sessions') s;
SELECT sqlstate_of($$SET ics_hash.execution_provider = tpu$$);

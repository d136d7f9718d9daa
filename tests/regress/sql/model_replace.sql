-- ics_model_load(..., replace => true) with a model whose codes have another length says so
-- (a NOTICE with what to do), and stays silent when the length is the same.
\set SHOW_CONTEXT never
\getenv fixtures ICS_FIXTURES
\if :{?fixtures}
\else
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/../fixtures/encoder'
\endif
\set image_model :fixtures '/tiny_image.onnx'
\set feature_model :fixtures '/tiny_features.onnx'
SELECT name, bits FROM ics_model_load('relength', pg_read_binary_file(:'image_model'));
-- The same length: no NOTICE.
SELECT name, bits FROM ics_model_load('relength', pg_read_binary_file(:'image_model'), replace => true);
-- 64 -> 32 bits: a NOTICE.
SELECT name, bits FROM ics_model_load('relength', pg_read_binary_file(:'feature_model'), replace => true);
SELECT ics_model_drop('relength');

-- Who may read and write the model registry, and who sees the server's ONNX Runtime path.
-- Failed before the registry moved to a schema of its own: every role could read every
-- model's bytes, GRANT ... ON ALL TABLES IN SCHEMA public handed out write access, and
-- ics_encoder_info() showed any role the library's server-side path.
\set SHOW_CONTEXT never
\getenv fixtures ICS_FIXTURES
\if :{?fixtures}
\else
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/../fixtures/encoder'
\endif
SELECT name, bits FROM ics_model_load('registry_features', pg_read_binary_file(:'fixtures' || '/tiny_features.onnx'));
CREATE TABLE registry_expected AS
SELECT ics_encode('{1,-2,3,-4,5,-6,7,-8}'::real[], 'registry_features') AS code;
GRANT SELECT ON registry_expected TO PUBLIC;
CREATE ROLE regress_registry_plain;
-- The registry table, wherever it is.
SELECT format('%I.%I', relnamespace::regnamespace, relname) AS registry
  FROM pg_class WHERE relname = 'ics_model_registry' \gset
SELECT :'registry' AS registry;
SELECT has_schema_privilege('regress_registry_plain', relnamespace, 'USAGE') AS plain_schema_usage,
       has_table_privilege('regress_registry_plain', oid, 'SELECT') AS plain_table_select
  FROM pg_class WHERE relname = 'ics_model_registry';

-- A fresh backend (no cached session: ics_encode must read the model's bytes) and a careless
-- grant of everything in schema public to everyone.
\c
\set SHOW_CONTEXT never
BEGIN;
GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC;
SET LOCAL ROLE regress_registry_plain;
-- No bytes, no names, no writes through the table.
SELECT sqlstate_of(format('SELECT onnx FROM %s', :'registry'));
SELECT sqlstate_of(format('SELECT name FROM %s', :'registry'));
SELECT sqlstate_of(format($$INSERT INTO %s (name, onnx, sha256, bits, input_kind, contract)
                            VALUES ('forged', '\x00', encode(sha256('\x00'), 'hex'), 8, 'features', '{}')$$,
                          :'registry'));
SELECT sqlstate_of(format($$UPDATE %s SET name = 'renamed'$$, :'registry'));
SELECT sqlstate_of(format('DELETE FROM %s', :'registry'));
-- The metadata view: every model, no bytes.
SELECT name, bits, input_kind, input_size, size_bytes > 0 AS has_size FROM ics_models
 WHERE name = 'registry_features';
SELECT count(*) AS bytea_columns_in_ics_models
  FROM pg_attribute WHERE attrelid = 'ics_models'::regclass AND atttypid = 'bytea'::regtype;
-- Encoding reads the bytes on the role's behalf (only for that read) and gives the same code.
SELECT ics_encode('{1,-2,3,-4,5,-6,7,-8}'::real[], 'registry_features') = code AS plain_encodes
  FROM registry_expected;
SELECT current_user AS after_encoding;
SELECT sqlstate_of(format('SELECT onnx FROM %s', :'registry')) LIKE '42501:%' AS still_no_bytes;
-- The ONNX Runtime path is the server's business.
SELECT ics_encoder_info() ->> 'onnxruntime_library' AS library, ics_encoder_info() ->> 'onnxruntime_loaded' AS loaded;
SELECT sqlstate_of('SHOW ics_hash.onnxruntime_library');
RESET ROLE;
ROLLBACK;
-- The grant is gone with the transaction.
SELECT has_table_privilege('regress_registry_plain', 'registry_expected', 'INSERT') AS grant_rolled_back;

-- A superuser sees the path.
SELECT ics_encoder_info() ->> 'onnxruntime_library' LIKE '%libonnxruntime%' AS superuser_sees_library;
-- A library that fails to load: the error a plain role sees in ics_encoder_info() does not
-- name the path either.
\c
\set SHOW_CONTEXT never
SET ics_hash.onnxruntime_library = '/nonexistent/secret-dir/libonnxruntime.so';
SELECT ics_encoder_info() ->> 'error' LIKE '%/nonexistent/secret-dir/%' AS superuser_sees_path_in_error;
SET ROLE regress_registry_plain;
SELECT info ->> 'onnxruntime_loaded' AS loaded, info ->> 'onnxruntime_library' AS library,
       info ->> 'error' LIKE '%secret-dir%' AS error_names_path,
       info ->> 'error' LIKE '%(shown to superusers only)%' AS error_hides_path
  FROM (SELECT ics_encoder_info() AS info) s;
RESET ROLE;
RESET ics_hash.onnxruntime_library;

SELECT ics_model_drop('registry_features');
DROP TABLE registry_expected;
DROP ROLE regress_registry_plain;

-- The encoder: models stored in the database and ics_encode, which turns images (or feature
-- vectors) into hashcodes with ONNX Runtime inside the backend. Contract: docs/sql-reference.md,
-- docs/encoder-and-gpu.md. C side: src/encoder/ (settings: src/encoder/gucs.rs).

-- Loading models is privileged: superusers and members of this role. Roles are cluster-wide,
-- so a second CREATE EXTENSION (another database) reuses it, and DROP EXTENSION keeps it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ics_hash_admin') THEN
        CREATE ROLE ics_hash_admin NOLOGIN;
        COMMENT ON ROLE ics_hash_admin IS
            'ics_hash: members may load and drop encoder models (ics_model_load, ics_model_drop)';
    END IF;
END
$$;

-- The registry. Rows are written by ics_model_load/ics_model_drop only; pg_dump saves them
-- (pg_extension_config_dump), so models back up and replicate with the database. It lives in
-- the extension's own schema ics_hash_private, on which nobody but its owner has any privilege
-- (no USAGE for PUBLIC): grants such as GRANT ... ON ALL TABLES IN SCHEMA public never reach
-- it, and the model bytes are not readable by ordinary roles. They see the metadata through
-- the view ics_models; ics_encode reads a model's bytes as the table's owner, for that one
-- query only (src/encoder/registry.rs).
CREATE SCHEMA ics_hash_private;
REVOKE ALL ON SCHEMA ics_hash_private FROM PUBLIC;
COMMENT ON SCHEMA ics_hash_private IS
    'ics_hash: the encoder model registry (ics_model_registry); no privileges for PUBLIC, read it through the view ics_models';
CREATE TABLE ics_hash_private.ics_model_registry (
    name text PRIMARY KEY CHECK (pg_catalog.length(name) BETWEEN 1 AND 63),
    onnx bytea NOT NULL,
    sha256 text NOT NULL CHECK (sha256 = pg_catalog.encode(pg_catalog.sha256(onnx), 'hex')),
    bits integer NOT NULL CHECK (bits BETWEEN 8 AND 4096 AND bits % 8 = 0),
    input_kind text NOT NULL CHECK (input_kind IN ('image', 'features')),
    contract jsonb NOT NULL,
    created timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by name NOT NULL DEFAULT current_user
);
-- ONNX weights do not compress: store them out of line without trying.
ALTER TABLE ics_hash_private.ics_model_registry ALTER COLUMN onnx SET STORAGE EXTERNAL;
CREATE INDEX ics_model_registry_sha256 ON ics_hash_private.ics_model_registry (sha256);
SELECT pg_catalog.pg_extension_config_dump('ics_hash_private.ics_model_registry', '');
REVOKE ALL ON ics_hash_private.ics_model_registry FROM PUBLIC;
COMMENT ON TABLE ics_hash_private.ics_model_registry IS
    'ics_hash encoder models: ONNX bytes exported by ics-train, their sha256 and parsed contract; written by ics_model_load/ics_model_drop, dumped by pg_dump; not readable by PUBLIC (see the view ics_models)';
COMMENT ON COLUMN ics_hash_private.ics_model_registry.name IS 'model name, as given to ics_encode(..., model) and ics_hash.model';
COMMENT ON COLUMN ics_hash_private.ics_model_registry.onnx IS 'the ONNX model bytes (backbone and hash head, contract in its metadata)';
COMMENT ON COLUMN ics_hash_private.ics_model_registry.sha256 IS 'sha256 of the bytes, lowercase hex: the model''s identity (session caches are keyed by it)';
COMMENT ON COLUMN ics_hash_private.ics_model_registry.bits IS 'code length in bits';
COMMENT ON COLUMN ics_hash_private.ics_model_registry.input_kind IS 'image (ics_encode(bytea)) or features (ics_encode(real[], model))';
COMMENT ON COLUMN ics_hash_private.ics_model_registry.contract IS 'the ics_hash.* metadata contract as parsed and validated at load';
COMMENT ON COLUMN ics_hash_private.ics_model_registry.created IS 'when the model was loaded';
COMMENT ON COLUMN ics_hash_private.ics_model_registry.created_by IS 'the role that loaded it';

-- The metadata of every model, for everyone (no bytes: size_bytes is their length).
CREATE VIEW @extschema@.ics_models AS
SELECT name,
       bits,
       input_kind,
       coalesce((contract ->> 'image_size')::integer, (contract ->> 'feature_dim')::integer) AS input_size,
       pg_catalog.octet_length(onnx) AS size_bytes,
       sha256,
       contract ->> 'trainer_version' AS trainer_version,
       contract ->> 'backbone' AS backbone,
       created,
       created_by,
       contract
  FROM ics_hash_private.ics_model_registry;
GRANT SELECT ON @extschema@.ics_models TO PUBLIC;
COMMENT ON VIEW @extschema@.ics_models IS
    'the loaded encoder models: name, code length, input kind and size (image side in pixels or feature count), bytes, sha256, trainer version, backbone, when and by whom, parsed contract';

CREATE FUNCTION @extschema@.ics_model_load(name text, onnx bytea, replace boolean DEFAULT false)
    RETURNS @extschema@.ics_models
    AS 'MODULE_PATHNAME', 'ics_model_load' LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION @extschema@.ics_model_load(text, bytea, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.ics_model_load(text, bytea, boolean) TO ics_hash_admin;
COMMENT ON FUNCTION @extschema@.ics_model_load(text, bytea, boolean) IS
    'registers an ONNX model exported by ics-train under a name after validating it (ONNX, ics_hash.* contract against the graph, ONNX Runtime interface, one trial run); superusers and ics_hash_admin only; an existing name is an error (42710) unless replace';

CREATE FUNCTION @extschema@.ics_model_drop(name text, missing_ok boolean DEFAULT false) RETURNS boolean
    AS 'MODULE_PATHNAME', 'ics_model_drop' LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION @extschema@.ics_model_drop(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.ics_model_drop(text, boolean) TO ics_hash_admin;
COMMENT ON FUNCTION @extschema@.ics_model_drop(text, boolean) IS
    'removes a model; a missing name is an error (42704) unless missing_ok (then false); superusers and ics_hash_admin only';

CREATE FUNCTION @extschema@.ics_encoder_info() RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ics_encoder_info' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.ics_encoder_info() IS
    'this backend''s encoder: ONNX Runtime library, version and providers (loading it if needed), GPU presence, settings, CUDA slots (cluster-wide bound, this backend''s slot), and each cached model with the execution provider it runs on and why, and on CUDA its device memory limit and arena statistics';

-- Backends holding a CUDA slot (ics_hash.max_cuda_sessions; src/encoder/slots.rs): slot n is
-- a session-level advisory lock outside every database (database 0, which no
-- pg_advisory_lock call can name), classid 1229149000 ('ICSH'), objid n, objsubid 2.
CREATE VIEW @extschema@.ics_cuda_sessions AS
SELECT l.objid::bigint::integer AS slot,
       l.pid,
       a.datname,
       a.usename,
       a.application_name,
       a.backend_start
  FROM pg_catalog.pg_locks l
  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.database = 0 AND l.classid = 1229149000
   AND l.objsubid = 2 AND l.granted;
GRANT SELECT ON @extschema@.ics_cuda_sessions TO PUBLIC;
COMMENT ON VIEW @extschema@.ics_cuda_sessions IS
    'the backends of the cluster that hold a CUDA slot (at most ics_hash.max_cuda_sessions): slot number, pid, database, user, application, connection time';

-- ics_encode is STABLE: it reads the registry (and ics_hash.* settings), so a query evaluates
-- ics_encode($1) once and ORDER BY hamming(code, ics_encode($1)) LIMIT k can use a mih index.
-- COST tells the planner that a call runs a neural network.
CREATE FUNCTION @extschema@.ics_encode(image bytea) RETURNS @extschema@.hashcode
    AS 'MODULE_PATHNAME', 'ics_encode_image_default'
    LANGUAGE C STABLE STRICT PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION @extschema@.ics_encode(bytea) IS
    'hash code of an image (JPEG, PNG, WebP, BMP or GIF bytes) with the model ics_hash.model, or the only loaded model';

CREATE FUNCTION @extschema@.ics_encode(image bytea, model text) RETURNS @extschema@.hashcode
    AS 'MODULE_PATHNAME', 'ics_encode_image'
    LANGUAGE C STABLE STRICT PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION @extschema@.ics_encode(bytea, text) IS
    'hash code of an image (JPEG, PNG, WebP, BMP or GIF bytes) with the named image model';

-- on_error 'null': an undecodable image gives NULL (and a NOTICE) instead of an error; not
-- STRICT: a NULL model is the default model. Added in 0.3.0, as ics_encode_batch's below.
CREATE FUNCTION @extschema@.ics_encode(image bytea, model text, on_error text) RETURNS @extschema@.hashcode
    AS 'MODULE_PATHNAME', 'ics_encode_image_on_error'
    LANGUAGE C STABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION @extschema@.ics_encode(bytea, text, text) IS
    'hash code of an image with the named image model (NULL: the default model); on_error ''error'' fails at an undecodable image, ''null'' gives NULL and a NOTICE';

CREATE FUNCTION @extschema@.ics_encode(features real[], model text) RETURNS @extschema@.hashcode
    AS 'MODULE_PATHNAME', 'ics_encode_features'
    LANGUAGE C STABLE STRICT PARALLEL SAFE COST 1000;
COMMENT ON FUNCTION @extschema@.ics_encode(real[], text) IS
    'hash code of a feature vector with the named feature-input model (the array length must be the model''s feature count)';

CREATE FUNCTION @extschema@.ics_encode_batch(images bytea[]) RETURNS @extschema@.hashcode[]
    AS 'MODULE_PATHNAME', 'ics_encode_batch_default'
    LANGUAGE C STABLE STRICT PARALLEL SAFE COST 100000;
COMMENT ON FUNCTION @extschema@.ics_encode_batch(bytea[]) IS
    'hash codes of many images at once with the default model: images decoded in parallel, one network run per ics_hash.batch_size images; element i of the result is the code of images[i] (NULL for NULL)';

CREATE FUNCTION @extschema@.ics_encode_batch(images bytea[], model text) RETURNS @extschema@.hashcode[]
    AS 'MODULE_PATHNAME', 'ics_encode_batch'
    LANGUAGE C STABLE STRICT PARALLEL SAFE COST 100000;
COMMENT ON FUNCTION @extschema@.ics_encode_batch(bytea[], text) IS
    'hash codes of many images at once with the named model: images decoded in parallel, one network run per ics_hash.batch_size images; element i of the result is the code of images[i] (NULL for NULL)';

-- One undecodable image may give a NULL code instead of failing the call (on_error 'null'; a
-- NOTICE counts them); 'error' is what the two forms above do. An overload of its own, without
-- defaults (a default would make ics_encode_batch(images, model) ambiguous), and not STRICT: a
-- NULL model is the default model. Added in 0.3.0 (sql/versions/ics_hash--0.2.0--0.3.0.sql
-- creates it the same way).
CREATE FUNCTION @extschema@.ics_encode_batch(images bytea[], model text, on_error text) RETURNS @extschema@.hashcode[]
    AS 'MODULE_PATHNAME', 'ics_encode_batch_on_error'
    LANGUAGE C STABLE PARALLEL SAFE COST 100000;
COMMENT ON FUNCTION @extschema@.ics_encode_batch(bytea[], text, text) IS
    'hash codes of many images at once with the named model (NULL: the default model); on_error ''error'' fails the call at an undecodable image, ''null'' gives it a NULL code and says how many in a NOTICE; element i of the result is the code of images[i] (NULL for NULL)';

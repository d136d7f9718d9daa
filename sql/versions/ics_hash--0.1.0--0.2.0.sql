-- ics_hash 0.1.0 -> 0.2.0 (ALTER EXTENSION ics_hash UPDATE). Every change to the extension's
-- SQL objects between the two releases goes here, so that an updated database has exactly
-- the objects of a fresh CREATE EXTENSION (tests/cluster/upgrade.sh extension compares them).
-- 0.2.0: the model registry moves to its own schema; SQL bodies name the extension's schema;
-- mih_verify reports rows with NULL codes.

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ics_hash UPDATE TO '0.2.0'" to load this file. \quit

-- 1. The model registry moves out of the extension's schema into ics_hash_private, which has
-- no privileges for PUBLIC; its rows, indexes, constraints, comments and its
-- pg_extension_config_dump entry (kept by OID) move with it. The view ics_models refers to it
-- by OID, so it needs no change.
CREATE SCHEMA ics_hash_private;
REVOKE ALL ON SCHEMA ics_hash_private FROM PUBLIC;
COMMENT ON SCHEMA ics_hash_private IS
    'ics_hash: the encoder model registry (ics_model_registry); no privileges for PUBLIC, read it through the view ics_models';
ALTER TABLE @extschema@.ics_model_registry SET SCHEMA ics_hash_private;
REVOKE ALL ON ics_hash_private.ics_model_registry FROM PUBLIC;
COMMENT ON TABLE ics_hash_private.ics_model_registry IS
    'ics_hash encoder models: ONNX bytes exported by ics-train, their sha256 and parsed contract; written by ics_model_load/ics_model_drop, dumped by pg_dump; not readable by PUBLIC (see the view ics_models)';

-- 2. SQL function bodies are parsed at each call under the caller's search_path: name the
-- extension's schema (and pg_catalog) in them. hamming() keeps no SET clause, so the planner
-- still inlines it to the <~> operator.
CREATE OR REPLACE FUNCTION @extschema@.hamming(a @extschema@.hashcode, b @extschema@.hashcode) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT $1 OPERATOR(@extschema@.<~>) $2 $$;

-- mih_verify also gains two columns (index format 3 keeps rows with NULL codes): its row type
-- changes, so it is dropped and created again.
DROP FUNCTION @extschema@.mih_verify(regclass, boolean);
CREATE FUNCTION @extschema@.mih_verify(index regclass, check_heap boolean DEFAULT true,
                           OUT ok boolean, OUT code_bits integer, OUT strategy text,
                           OUT lists integer, OUT nonempty_lists integer, OUT max_radius integer,
                           OUT substrings integer, OUT generation bigint, OUT tail_rows bigint,
                           OUT tombstones bigint, OUT data_pages bigint, OUT entries bigint,
                           OUT tids bigint, OUT heap_rows bigint, OUT nulls bigint,
                           OUT heap_nulls bigint, OUT problems text[])
    LANGUAGE sql VOLATILE STRICT PARALLEL RESTRICTED
    AS $$
        SELECT (j OPERATOR(pg_catalog.->>) 'ok')::boolean,
               (j OPERATOR(pg_catalog.->>) 'code_bits')::int,
               j OPERATOR(pg_catalog.->>) 'strategy',
               (j OPERATOR(pg_catalog.->>) 'lists')::int,
               (j OPERATOR(pg_catalog.->>) 'nonempty_lists')::int,
               (j OPERATOR(pg_catalog.->>) 'max_radius')::int,
               (j OPERATOR(pg_catalog.->>) 'substrings')::int,
               (j OPERATOR(pg_catalog.->>) 'generation')::bigint,
               (j OPERATOR(pg_catalog.->>) 'tail_rows')::bigint,
               (j OPERATOR(pg_catalog.->>) 'tombstones')::bigint,
               (j OPERATOR(pg_catalog.->>) 'data_pages')::bigint,
               (j OPERATOR(pg_catalog.->>) 'entries')::bigint,
               (j OPERATOR(pg_catalog.->>) 'tids')::bigint,
               (j OPERATOR(pg_catalog.->>) 'heap_rows')::bigint,
               (j OPERATOR(pg_catalog.->>) 'nulls')::bigint,
               (j OPERATOR(pg_catalog.->>) 'heap_nulls')::bigint,
               ARRAY(SELECT pg_catalog.jsonb_array_elements_text(j OPERATOR(pg_catalog.->) 'problems'))
        FROM (SELECT @extschema@.mih_verify_json($1, $2)::pg_catalog.jsonb AS j) v
    $$;
COMMENT ON FUNCTION @extschema@.mih_verify(regclass, boolean) IS
    'checks a mih index: its strategy and structure (covering radii, or substring tables holding the same codes in order), and (check_heap) that every visible row is indexed with its code';

-- Everything else that 0.2.0 now writes with @extschema@ (types, operators, operator classes,
-- casts, views, other functions) was resolved to OIDs when 0.1.0 was created: nothing to redo.

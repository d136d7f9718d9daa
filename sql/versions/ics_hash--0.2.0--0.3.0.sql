-- ics_hash 0.2.0 -> 0.3.0 (ALTER EXTENSION ics_hash UPDATE). Every change to the extension's
-- SQL objects between the two releases goes here, so that an updated database has exactly
-- the objects of a fresh CREATE EXTENSION (tests/cluster/upgrade.sh extension compares them).
-- 0.3.0: ics_encode(image, model, on_error) and ics_encode_batch(images, model, on_error),
-- where an undecodable image may give a NULL code.

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ics_hash UPDATE TO '0.3.0'" to load this file. \quit

-- New overloads beside ics_encode(bytea [, text]) and ics_encode_batch(bytea[] [, text]), which
-- stay as they are (same OIDs, so views and functions that call them, and their grants, are
-- untouched). Created exactly as sql/encoder.sql creates them.
CREATE FUNCTION @extschema@.ics_encode(image bytea, model text, on_error text) RETURNS @extschema@.hashcode
    AS 'MODULE_PATHNAME', 'ics_encode_image_on_error'
    LANGUAGE C STABLE PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION @extschema@.ics_encode(bytea, text, text) IS
    'hash code of an image with the named image model (NULL: the default model); on_error ''error'' fails at an undecodable image, ''null'' gives NULL and a NOTICE';

CREATE FUNCTION @extschema@.ics_encode_batch(images bytea[], model text, on_error text) RETURNS @extschema@.hashcode[]
    AS 'MODULE_PATHNAME', 'ics_encode_batch_on_error'
    LANGUAGE C STABLE PARALLEL SAFE COST 100000;
COMMENT ON FUNCTION @extschema@.ics_encode_batch(bytea[], text, text) IS
    'hash codes of many images at once with the named model (NULL: the default model); on_error ''error'' fails the call at an undecodable image, ''null'' gives it a NULL code and says how many in a NOTICE; element i of the result is the code of images[i] (NULL for NULL)';

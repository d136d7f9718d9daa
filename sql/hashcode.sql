-- The hashcode type: packed bit strings (8..4096 bits, whole bytes), Hamming distance,
-- casts, and the btree/hash operator classes. Contract: docs/sql-reference.md (types,
-- operators, casts). The C functions live in src/hashcode/.

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION ics_hash" to load this file. \quit

CREATE TYPE @extschema@.hashcode;

CREATE FUNCTION @extschema@.hashcode_in(cstring, oid, integer) RETURNS @extschema@.hashcode
    AS 'MODULE_PATHNAME', 'hashcode_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.hashcode_out(@extschema@.hashcode) RETURNS cstring
    AS 'MODULE_PATHNAME', 'hashcode_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.hashcode_recv(internal, oid, integer) RETURNS @extschema@.hashcode
    AS 'MODULE_PATHNAME', 'hashcode_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.hashcode_send(@extschema@.hashcode) RETURNS bytea
    AS 'MODULE_PATHNAME', 'hashcode_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.hashcode_typmod_in(cstring[]) RETURNS integer
    AS 'MODULE_PATHNAME', 'hashcode_typmod_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.hashcode_typmod_out(integer) RETURNS cstring
    AS 'MODULE_PATHNAME', 'hashcode_typmod_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- STORAGE external: codes are at most 512 bytes, never worth compressing, and a short
-- (1-byte header) varlena keeps a 64-bit code at 9 bytes in the heap.
CREATE TYPE @extschema@.hashcode (
    INPUT = @extschema@.hashcode_in,
    OUTPUT = @extschema@.hashcode_out,
    RECEIVE = @extschema@.hashcode_recv,
    SEND = @extschema@.hashcode_send,
    TYPMOD_IN = @extschema@.hashcode_typmod_in,
    TYPMOD_OUT = @extschema@.hashcode_typmod_out,
    INTERNALLENGTH = VARIABLE,
    STORAGE = external
);
COMMENT ON TYPE @extschema@.hashcode IS
    'packed binary hash code of 8 to 4096 bits (whole bytes); hashcode(n) fixes the length; text form is lowercase hex, bit 0 = most significant bit of the first byte';

COMMENT ON FUNCTION @extschema@.hashcode_in(cstring, oid, integer) IS 'hashcode text input: hex digits, two per byte, optional \x prefix';
COMMENT ON FUNCTION @extschema@.hashcode_out(@extschema@.hashcode) IS 'hashcode text output: lowercase hex';
COMMENT ON FUNCTION @extschema@.hashcode_recv(internal, oid, integer) IS 'hashcode binary input: the code bytes';
COMMENT ON FUNCTION @extschema@.hashcode_send(@extschema@.hashcode) IS 'hashcode binary output: the code bytes';
COMMENT ON FUNCTION @extschema@.hashcode_typmod_in(cstring[]) IS 'hashcode(n) type modifier: n bits, a multiple of 8 from 8 to 4096';
COMMENT ON FUNCTION @extschema@.hashcode_typmod_out(integer) IS 'hashcode(n) type modifier output';

-- Length coercion: hashcode(n) accepts codes of exactly n bits (no padding, no truncation).
CREATE FUNCTION @extschema@.hashcode(@extschema@.hashcode, integer, boolean) RETURNS @extschema@.hashcode
    AS 'MODULE_PATHNAME', 'hashcode_coerce' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.hashcode(@extschema@.hashcode, integer, boolean) IS
    'length coercion for hashcode(n): a code of another length is an error (22026)';
CREATE CAST (@extschema@.hashcode AS @extschema@.hashcode) WITH FUNCTION @extschema@.hashcode(@extschema@.hashcode, integer, boolean) AS IMPLICIT;

-- Casts, all explicit.
CREATE CAST (@extschema@.hashcode AS bytea) WITHOUT FUNCTION;

CREATE FUNCTION @extschema@.hashcode(bytea) RETURNS @extschema@.hashcode
    AS 'MODULE_PATHNAME', 'hashcode_from_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.hashcode(bytea) IS 'hashcode from its bytes (1 to 512 bytes)';
CREATE CAST (bytea AS @extschema@.hashcode) WITH FUNCTION @extschema@.hashcode(bytea);

CREATE FUNCTION @extschema@.hashcode(bit) RETURNS @extschema@.hashcode
    AS 'MODULE_PATHNAME', 'hashcode_from_varbit' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.hashcode(bit) IS 'hashcode from a bit string whose length is a multiple of 8 (8 to 4096)';
CREATE CAST (bit AS @extschema@.hashcode) WITH FUNCTION @extschema@.hashcode(bit);

CREATE FUNCTION @extschema@.hashcode(bit varying) RETURNS @extschema@.hashcode
    AS 'MODULE_PATHNAME', 'hashcode_from_varbit' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.hashcode(bit varying) IS 'hashcode from a bit string whose length is a multiple of 8 (8 to 4096)';
CREATE CAST (bit varying AS @extschema@.hashcode) WITH FUNCTION @extschema@.hashcode(bit varying);

CREATE FUNCTION @extschema@.hashcode_to_bit(@extschema@.hashcode, integer, boolean) RETURNS bit
    AS 'MODULE_PATHNAME', 'hashcode_to_bit' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.hashcode_to_bit(@extschema@.hashcode, integer, boolean) IS
    'cast hashcode to bit(n): n must be the code''s length';
CREATE CAST (@extschema@.hashcode AS bit) WITH FUNCTION @extschema@.hashcode_to_bit(@extschema@.hashcode, integer, boolean);

CREATE FUNCTION @extschema@.hashcode_to_varbit(@extschema@.hashcode, integer, boolean) RETURNS bit varying
    AS 'MODULE_PATHNAME', 'hashcode_to_varbit' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.hashcode_to_varbit(@extschema@.hashcode, integer, boolean) IS
    'cast hashcode to bit varying(n): n must be at least the code''s length';
CREATE CAST (@extschema@.hashcode AS bit varying) WITH FUNCTION @extschema@.hashcode_to_varbit(@extschema@.hashcode, integer, boolean);

CREATE FUNCTION @extschema@.hashcode(bigint) RETURNS @extschema@.hashcode
    AS 'MODULE_PATHNAME', 'hashcode_from_int8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.hashcode(bigint) IS 'hashcode(64) from a bigint, its sign bit first';
CREATE CAST (bigint AS @extschema@.hashcode) WITH FUNCTION @extschema@.hashcode(bigint);

CREATE FUNCTION @extschema@.int8(@extschema@.hashcode) RETURNS bigint
    AS 'MODULE_PATHNAME', 'hashcode_to_int8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.int8(@extschema@.hashcode) IS 'bigint from a hashcode(64), bit 0 as the sign bit';
CREATE CAST (@extschema@.hashcode AS bigint) WITH FUNCTION @extschema@.int8(@extschema@.hashcode);

-- Comparison: bytewise (bit 0 first); a code sorts before a longer code it prefixes.
CREATE FUNCTION @extschema@.hashcode_lt(@extschema@.hashcode, @extschema@.hashcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hashcode_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.hashcode_le(@extschema@.hashcode, @extschema@.hashcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hashcode_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.hashcode_eq(@extschema@.hashcode, @extschema@.hashcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hashcode_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.hashcode_ne(@extschema@.hashcode, @extschema@.hashcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hashcode_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.hashcode_ge(@extschema@.hashcode, @extschema@.hashcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hashcode_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.hashcode_gt(@extschema@.hashcode, @extschema@.hashcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hashcode_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.hashcode_cmp(@extschema@.hashcode, @extschema@.hashcode) RETURNS integer
    AS 'MODULE_PATHNAME', 'hashcode_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.hashcode_hash(@extschema@.hashcode) RETURNS integer
    AS 'MODULE_PATHNAME', 'hashcode_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.hashcode_hash_extended(@extschema@.hashcode, bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'hashcode_hash_extended' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION @extschema@.hashcode_lt(@extschema@.hashcode, @extschema@.hashcode) IS 'implementation of < for hashcode';
COMMENT ON FUNCTION @extschema@.hashcode_le(@extschema@.hashcode, @extschema@.hashcode) IS 'implementation of <= for hashcode';
COMMENT ON FUNCTION @extschema@.hashcode_eq(@extschema@.hashcode, @extschema@.hashcode) IS 'implementation of = for hashcode';
COMMENT ON FUNCTION @extschema@.hashcode_ne(@extschema@.hashcode, @extschema@.hashcode) IS 'implementation of <> for hashcode';
COMMENT ON FUNCTION @extschema@.hashcode_ge(@extschema@.hashcode, @extschema@.hashcode) IS 'implementation of >= for hashcode';
COMMENT ON FUNCTION @extschema@.hashcode_gt(@extschema@.hashcode, @extschema@.hashcode) IS 'implementation of > for hashcode';
COMMENT ON FUNCTION @extschema@.hashcode_cmp(@extschema@.hashcode, @extschema@.hashcode) IS 'btree comparison support for hashcode';
COMMENT ON FUNCTION @extschema@.hashcode_hash(@extschema@.hashcode) IS 'hash support for hashcode';
COMMENT ON FUNCTION @extschema@.hashcode_hash_extended(@extschema@.hashcode, bigint) IS 'seeded hash support for hashcode (hash partitioning)';

CREATE OPERATOR @extschema@.< (
    LEFTARG = @extschema@.hashcode, RIGHTARG = @extschema@.hashcode, FUNCTION = @extschema@.hashcode_lt,
    COMMUTATOR = OPERATOR(@extschema@.>), NEGATOR = OPERATOR(@extschema@.>=), RESTRICT = pg_catalog.scalarltsel, JOIN = pg_catalog.scalarltjoinsel
);
CREATE OPERATOR @extschema@.<= (
    LEFTARG = @extschema@.hashcode, RIGHTARG = @extschema@.hashcode, FUNCTION = @extschema@.hashcode_le,
    COMMUTATOR = OPERATOR(@extschema@.>=), NEGATOR = OPERATOR(@extschema@.>), RESTRICT = pg_catalog.scalarlesel, JOIN = pg_catalog.scalarlejoinsel
);
CREATE OPERATOR @extschema@.= (
    LEFTARG = @extschema@.hashcode, RIGHTARG = @extschema@.hashcode, FUNCTION = @extschema@.hashcode_eq,
    COMMUTATOR = OPERATOR(@extschema@.=), NEGATOR = OPERATOR(@extschema@.<>), RESTRICT = pg_catalog.eqsel, JOIN = pg_catalog.eqjoinsel, HASHES, MERGES
);
CREATE OPERATOR @extschema@.<> (
    LEFTARG = @extschema@.hashcode, RIGHTARG = @extschema@.hashcode, FUNCTION = @extschema@.hashcode_ne,
    COMMUTATOR = OPERATOR(@extschema@.<>), NEGATOR = OPERATOR(@extschema@.=), RESTRICT = pg_catalog.neqsel, JOIN = pg_catalog.neqjoinsel
);
CREATE OPERATOR @extschema@.>= (
    LEFTARG = @extschema@.hashcode, RIGHTARG = @extschema@.hashcode, FUNCTION = @extschema@.hashcode_ge,
    COMMUTATOR = OPERATOR(@extschema@.<=), NEGATOR = OPERATOR(@extschema@.<), RESTRICT = pg_catalog.scalargesel, JOIN = pg_catalog.scalargejoinsel
);
CREATE OPERATOR @extschema@.> (
    LEFTARG = @extschema@.hashcode, RIGHTARG = @extschema@.hashcode, FUNCTION = @extschema@.hashcode_gt,
    COMMUTATOR = OPERATOR(@extschema@.<), NEGATOR = OPERATOR(@extschema@.<=), RESTRICT = pg_catalog.scalargtsel, JOIN = pg_catalog.scalargtjoinsel
);

CREATE OPERATOR CLASS @extschema@.hashcode_ops DEFAULT FOR TYPE @extschema@.hashcode USING btree AS
    OPERATOR 1 @extschema@.<,
    OPERATOR 2 @extschema@.<=,
    OPERATOR 3 @extschema@.=,
    OPERATOR 4 @extschema@.>=,
    OPERATOR 5 @extschema@.>,
    FUNCTION 1 @extschema@.hashcode_cmp(@extschema@.hashcode, @extschema@.hashcode);

CREATE OPERATOR CLASS @extschema@.hashcode_ops DEFAULT FOR TYPE @extschema@.hashcode USING hash AS
    OPERATOR 1 @extschema@.=,
    FUNCTION 1 @extschema@.hashcode_hash(@extschema@.hashcode),
    FUNCTION 2 @extschema@.hashcode_hash_extended(@extschema@.hashcode, bigint);

-- Distance.
CREATE FUNCTION @extschema@.hashcode_hamming(@extschema@.hashcode, @extschema@.hashcode) RETURNS integer
    AS 'MODULE_PATHNAME', 'hashcode_hamming' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.hashcode_hamming(@extschema@.hashcode, @extschema@.hashcode) IS
    'Hamming distance: the number of differing bits (implementation of <~>)';

CREATE OPERATOR @extschema@.<~> (
    LEFTARG = @extschema@.hashcode, RIGHTARG = @extschema@.hashcode, FUNCTION = @extschema@.hashcode_hamming, COMMUTATOR = OPERATOR(@extschema@.<~>)
);
COMMENT ON OPERATOR @extschema@.<~> (@extschema@.hashcode, @extschema@.hashcode) IS 'Hamming distance between two hashcodes of the same length';

-- A SQL function of one expression, so the planner inlines it: ORDER BY hamming(code, q)
-- becomes ORDER BY code <~> q and can use an index on code exactly as the operator does. The
-- operator is schema-qualified because the body is parsed under the caller's search_path (and
-- no SET search_path clause: that would stop the inlining).
CREATE FUNCTION @extschema@.hamming(a @extschema@.hashcode, b @extschema@.hashcode) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT $1 OPERATOR(@extschema@.<~>) $2 $$;
COMMENT ON FUNCTION @extschema@.hamming(@extschema@.hashcode, @extschema@.hashcode) IS
    'Hamming distance between two hashcodes of the same length (inlined to the <~> operator)';

CREATE FUNCTION @extschema@.hamming_within(code @extschema@.hashcode, q @extschema@.hashcode, radius integer) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hashcode_hamming_within' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.hamming_within(@extschema@.hashcode, @extschema@.hashcode, integer) IS
    'true when code and q differ in at most radius bits';

CREATE FUNCTION @extschema@.length(@extschema@.hashcode) RETURNS integer
    AS 'MODULE_PATHNAME', 'hashcode_length' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION @extschema@.length(@extschema@.hashcode) IS 'length of a hashcode in bits';

CREATE FUNCTION @extschema@.bit_count(@extschema@.hashcode) RETURNS bigint
    AS 'MODULE_PATHNAME', 'hashcode_bit_count' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION @extschema@.bit_count(@extschema@.hashcode) IS 'number of bits set to 1 in a hashcode';

-- The hashcode type: packed bit strings (8..4096 bits, whole bytes), Hamming distance,
-- casts, and the btree/hash operator classes. Contract: shared/design/SQL.md, "The type" and
-- "Distance". The C functions live in src/hashcode/.

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION ics_hash" to load this file. \quit

CREATE TYPE hashcode;

CREATE FUNCTION hashcode_in(cstring, oid, integer) RETURNS hashcode
    AS 'MODULE_PATHNAME', 'hashcode_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION hashcode_out(hashcode) RETURNS cstring
    AS 'MODULE_PATHNAME', 'hashcode_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION hashcode_recv(internal, oid, integer) RETURNS hashcode
    AS 'MODULE_PATHNAME', 'hashcode_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION hashcode_send(hashcode) RETURNS bytea
    AS 'MODULE_PATHNAME', 'hashcode_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION hashcode_typmod_in(cstring[]) RETURNS integer
    AS 'MODULE_PATHNAME', 'hashcode_typmod_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION hashcode_typmod_out(integer) RETURNS cstring
    AS 'MODULE_PATHNAME', 'hashcode_typmod_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- STORAGE external: codes are at most 512 bytes, never worth compressing, and a short
-- (1-byte header) varlena keeps a 64-bit code at 9 bytes in the heap.
CREATE TYPE hashcode (
    INPUT = hashcode_in,
    OUTPUT = hashcode_out,
    RECEIVE = hashcode_recv,
    SEND = hashcode_send,
    TYPMOD_IN = hashcode_typmod_in,
    TYPMOD_OUT = hashcode_typmod_out,
    INTERNALLENGTH = VARIABLE,
    STORAGE = external
);
COMMENT ON TYPE hashcode IS
    'packed binary hash code of 8 to 4096 bits (whole bytes); hashcode(n) fixes the length; text form is lowercase hex, bit 0 = most significant bit of the first byte';

COMMENT ON FUNCTION hashcode_in(cstring, oid, integer) IS 'hashcode text input: hex digits, two per byte, optional \x prefix';
COMMENT ON FUNCTION hashcode_out(hashcode) IS 'hashcode text output: lowercase hex';
COMMENT ON FUNCTION hashcode_recv(internal, oid, integer) IS 'hashcode binary input: the code bytes';
COMMENT ON FUNCTION hashcode_send(hashcode) IS 'hashcode binary output: the code bytes';
COMMENT ON FUNCTION hashcode_typmod_in(cstring[]) IS 'hashcode(n) type modifier: n bits, a multiple of 8 from 8 to 4096';
COMMENT ON FUNCTION hashcode_typmod_out(integer) IS 'hashcode(n) type modifier output';

-- Length coercion: hashcode(n) accepts codes of exactly n bits (no padding, no truncation).
CREATE FUNCTION hashcode(hashcode, integer, boolean) RETURNS hashcode
    AS 'MODULE_PATHNAME', 'hashcode_coerce' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION hashcode(hashcode, integer, boolean) IS
    'length coercion for hashcode(n): a code of another length is an error (22026)';
CREATE CAST (hashcode AS hashcode) WITH FUNCTION hashcode(hashcode, integer, boolean) AS IMPLICIT;

-- Casts, all explicit.
CREATE CAST (hashcode AS bytea) WITHOUT FUNCTION;

CREATE FUNCTION hashcode(bytea) RETURNS hashcode
    AS 'MODULE_PATHNAME', 'hashcode_from_bytea' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION hashcode(bytea) IS 'hashcode from its bytes (1 to 512 bytes)';
CREATE CAST (bytea AS hashcode) WITH FUNCTION hashcode(bytea);

CREATE FUNCTION hashcode(bit) RETURNS hashcode
    AS 'MODULE_PATHNAME', 'hashcode_from_varbit' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION hashcode(bit) IS 'hashcode from a bit string whose length is a multiple of 8 (8 to 4096)';
CREATE CAST (bit AS hashcode) WITH FUNCTION hashcode(bit);

CREATE FUNCTION hashcode(bit varying) RETURNS hashcode
    AS 'MODULE_PATHNAME', 'hashcode_from_varbit' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION hashcode(bit varying) IS 'hashcode from a bit string whose length is a multiple of 8 (8 to 4096)';
CREATE CAST (bit varying AS hashcode) WITH FUNCTION hashcode(bit varying);

CREATE FUNCTION hashcode_to_bit(hashcode, integer, boolean) RETURNS bit
    AS 'MODULE_PATHNAME', 'hashcode_to_bit' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION hashcode_to_bit(hashcode, integer, boolean) IS
    'cast hashcode to bit(n): n must be the code''s length';
CREATE CAST (hashcode AS bit) WITH FUNCTION hashcode_to_bit(hashcode, integer, boolean);

CREATE FUNCTION hashcode_to_varbit(hashcode, integer, boolean) RETURNS bit varying
    AS 'MODULE_PATHNAME', 'hashcode_to_varbit' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION hashcode_to_varbit(hashcode, integer, boolean) IS
    'cast hashcode to bit varying(n): n must be at least the code''s length';
CREATE CAST (hashcode AS bit varying) WITH FUNCTION hashcode_to_varbit(hashcode, integer, boolean);

CREATE FUNCTION hashcode(bigint) RETURNS hashcode
    AS 'MODULE_PATHNAME', 'hashcode_from_int8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION hashcode(bigint) IS 'hashcode(64) from a bigint, its sign bit first';
CREATE CAST (bigint AS hashcode) WITH FUNCTION hashcode(bigint);

CREATE FUNCTION int8(hashcode) RETURNS bigint
    AS 'MODULE_PATHNAME', 'hashcode_to_int8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION int8(hashcode) IS 'bigint from a hashcode(64), bit 0 as the sign bit';
CREATE CAST (hashcode AS bigint) WITH FUNCTION int8(hashcode);

-- Comparison: bytewise (bit 0 first); a code sorts before a longer code it prefixes.
CREATE FUNCTION hashcode_lt(hashcode, hashcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hashcode_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hashcode_le(hashcode, hashcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hashcode_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hashcode_eq(hashcode, hashcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hashcode_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hashcode_ne(hashcode, hashcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hashcode_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hashcode_ge(hashcode, hashcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hashcode_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hashcode_gt(hashcode, hashcode) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hashcode_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hashcode_cmp(hashcode, hashcode) RETURNS integer
    AS 'MODULE_PATHNAME', 'hashcode_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hashcode_hash(hashcode) RETURNS integer
    AS 'MODULE_PATHNAME', 'hashcode_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION hashcode_hash_extended(hashcode, bigint) RETURNS bigint
    AS 'MODULE_PATHNAME', 'hashcode_hash_extended' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION hashcode_lt(hashcode, hashcode) IS 'implementation of < for hashcode';
COMMENT ON FUNCTION hashcode_le(hashcode, hashcode) IS 'implementation of <= for hashcode';
COMMENT ON FUNCTION hashcode_eq(hashcode, hashcode) IS 'implementation of = for hashcode';
COMMENT ON FUNCTION hashcode_ne(hashcode, hashcode) IS 'implementation of <> for hashcode';
COMMENT ON FUNCTION hashcode_ge(hashcode, hashcode) IS 'implementation of >= for hashcode';
COMMENT ON FUNCTION hashcode_gt(hashcode, hashcode) IS 'implementation of > for hashcode';
COMMENT ON FUNCTION hashcode_cmp(hashcode, hashcode) IS 'btree comparison support for hashcode';
COMMENT ON FUNCTION hashcode_hash(hashcode) IS 'hash support for hashcode';
COMMENT ON FUNCTION hashcode_hash_extended(hashcode, bigint) IS 'seeded hash support for hashcode (hash partitioning)';

CREATE OPERATOR < (
    LEFTARG = hashcode, RIGHTARG = hashcode, FUNCTION = hashcode_lt,
    COMMUTATOR = >, NEGATOR = >=, RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);
CREATE OPERATOR <= (
    LEFTARG = hashcode, RIGHTARG = hashcode, FUNCTION = hashcode_le,
    COMMUTATOR = >=, NEGATOR = >, RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);
CREATE OPERATOR = (
    LEFTARG = hashcode, RIGHTARG = hashcode, FUNCTION = hashcode_eq,
    COMMUTATOR = =, NEGATOR = <>, RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES
);
CREATE OPERATOR <> (
    LEFTARG = hashcode, RIGHTARG = hashcode, FUNCTION = hashcode_ne,
    COMMUTATOR = <>, NEGATOR = =, RESTRICT = neqsel, JOIN = neqjoinsel
);
CREATE OPERATOR >= (
    LEFTARG = hashcode, RIGHTARG = hashcode, FUNCTION = hashcode_ge,
    COMMUTATOR = <=, NEGATOR = <, RESTRICT = scalargesel, JOIN = scalargejoinsel
);
CREATE OPERATOR > (
    LEFTARG = hashcode, RIGHTARG = hashcode, FUNCTION = hashcode_gt,
    COMMUTATOR = <, NEGATOR = <=, RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);

CREATE OPERATOR CLASS hashcode_ops DEFAULT FOR TYPE hashcode USING btree AS
    OPERATOR 1 <,
    OPERATOR 2 <=,
    OPERATOR 3 =,
    OPERATOR 4 >=,
    OPERATOR 5 >,
    FUNCTION 1 hashcode_cmp(hashcode, hashcode);

CREATE OPERATOR CLASS hashcode_ops DEFAULT FOR TYPE hashcode USING hash AS
    OPERATOR 1 =,
    FUNCTION 1 hashcode_hash(hashcode),
    FUNCTION 2 hashcode_hash_extended(hashcode, bigint);

-- Distance.
CREATE FUNCTION hashcode_hamming(hashcode, hashcode) RETURNS integer
    AS 'MODULE_PATHNAME', 'hashcode_hamming' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION hashcode_hamming(hashcode, hashcode) IS
    'Hamming distance: the number of differing bits (implementation of <~>)';

CREATE OPERATOR <~> (
    LEFTARG = hashcode, RIGHTARG = hashcode, FUNCTION = hashcode_hamming, COMMUTATOR = <~>
);
COMMENT ON OPERATOR <~> (hashcode, hashcode) IS 'Hamming distance between two hashcodes of the same length';

-- A SQL function of one expression, so the planner inlines it: ORDER BY hamming(code, q)
-- becomes ORDER BY code <~> q and can use an index on code exactly as the operator does.
CREATE FUNCTION hamming(a hashcode, b hashcode) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT $1 <~> $2 $$;
COMMENT ON FUNCTION hamming(hashcode, hashcode) IS
    'Hamming distance between two hashcodes of the same length (inlined to the <~> operator)';

CREATE FUNCTION hamming_within(code hashcode, q hashcode, radius integer) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hashcode_hamming_within' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION hamming_within(hashcode, hashcode, integer) IS
    'true when code and q differ in at most radius bits';

CREATE FUNCTION length(hashcode) RETURNS integer
    AS 'MODULE_PATHNAME', 'hashcode_length' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION length(hashcode) IS 'length of a hashcode in bits';

CREATE FUNCTION bit_count(hashcode) RETURNS bigint
    AS 'MODULE_PATHNAME', 'hashcode_bit_count' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION bit_count(hashcode) IS 'number of bits set to 1 in a hashcode';

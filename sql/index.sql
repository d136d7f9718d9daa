-- The mih index access method: exact Hamming k-NN (ORDER BY code <~> q) and radius search
-- (hamming_within(code, q, r), rewritten by the planner to code <@ hamming_ball(q, r)).
-- Contract: docs/sql-reference.md and docs/index.md. C side: src/index/.

-- hamming_ball: a query code with a radius, the indexable right side of <@.
CREATE TYPE @extschema@.hamming_ball;
CREATE FUNCTION @extschema@.hamming_ball_in(cstring) RETURNS @extschema@.hamming_ball
    AS 'MODULE_PATHNAME', 'hamming_ball_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.hamming_ball_out(@extschema@.hamming_ball) RETURNS cstring
    AS 'MODULE_PATHNAME', 'hamming_ball_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE @extschema@.hamming_ball (
    INPUT = @extschema@.hamming_ball_in,
    OUTPUT = @extschema@.hamming_ball_out,
    INTERNALLENGTH = VARIABLE,
    STORAGE = external
);
COMMENT ON TYPE @extschema@.hamming_ball IS
    'a hashcode with a radius: the codes within that Hamming distance; text form ''<hex>:<radius>''';
COMMENT ON FUNCTION @extschema@.hamming_ball_in(cstring) IS 'hamming_ball text input: ''<hex code>:<radius>''';
COMMENT ON FUNCTION @extschema@.hamming_ball_out(@extschema@.hamming_ball) IS 'hamming_ball text output';

CREATE FUNCTION @extschema@.hamming_ball(q @extschema@.hashcode, radius integer) RETURNS @extschema@.hamming_ball
    AS 'MODULE_PATHNAME', 'hamming_ball_make' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.hamming_ball(@extschema@.hashcode, integer) IS
    'the codes within radius of q, for code <@ hamming_ball(q, r); negative radius: error 22023';

CREATE FUNCTION @extschema@.hashcode_within_ball(@extschema@.hashcode, @extschema@.hamming_ball) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hashcode_within_ball' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.hashcode_within_ball(@extschema@.hashcode, @extschema@.hamming_ball) IS 'implementation of <@';

CREATE FUNCTION @extschema@.hamming_ball_sel(internal, oid, internal, integer) RETURNS float8
    AS 'MODULE_PATHNAME', 'hamming_ball_sel' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.hamming_ball_sel(internal, oid, internal, integer) IS
    'restriction selectivity of <@ (binomial tail of the radius)';

CREATE OPERATOR @extschema@.<@ (
    LEFTARG = @extschema@.hashcode, RIGHTARG = @extschema@.hamming_ball, FUNCTION = @extschema@.hashcode_within_ball,
    RESTRICT = @extschema@.hamming_ball_sel, JOIN = pg_catalog.contjoinsel
);
COMMENT ON OPERATOR @extschema@.<@ (@extschema@.hashcode, @extschema@.hamming_ball) IS 'code lies within the Hamming ball';

-- hamming_within becomes an index condition through its planner support function.
CREATE FUNCTION @extschema@.hamming_within_support(internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'hamming_within_support' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.hamming_within_support(internal) IS
    'planner support for hamming_within: index condition code <@ hamming_ball(q, r), selectivity';
ALTER FUNCTION @extschema@.hamming_within(@extschema@.hashcode, @extschema@.hashcode, integer) SUPPORT @extschema@.hamming_within_support;

-- The access method.
CREATE FUNCTION @extschema@.mih_handler(internal) RETURNS index_am_handler
    AS 'MODULE_PATHNAME', 'mih_handler' LANGUAGE C;
COMMENT ON FUNCTION @extschema@.mih_handler(internal) IS 'index access method handler of mih';
CREATE ACCESS METHOD mih TYPE INDEX HANDLER @extschema@.mih_handler;
COMMENT ON ACCESS METHOD mih IS
    'exact Hamming search over hashcode: k-NN (ORDER BY code <~> q) and radius (hamming_within)';

CREATE OPERATOR CLASS @extschema@.hashcode_mih_ops DEFAULT FOR TYPE @extschema@.hashcode USING mih AS
    OPERATOR 1 @extschema@.<@ (@extschema@.hashcode, @extschema@.hamming_ball),
    OPERATOR 2 @extschema@.<~> (@extschema@.hashcode, @extschema@.hashcode) FOR ORDER BY pg_catalog.integer_ops;

-- Consistency check of an index against its table. PARALLEL RESTRICTED: it first writes this
-- backend's buffered inserts (src/index/pending.rs), which a parallel worker does not hold.
-- Every name in mih_verify's body is schema-qualified: a SQL body is parsed at each call under
-- the caller's search_path, which need not include this extension's schema.
CREATE FUNCTION @extschema@.mih_verify_json(regclass, boolean) RETURNS text
    AS 'MODULE_PATHNAME', 'mih_verify_json' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.mih_verify_json(regclass, boolean) IS 'mih_verify as JSON';

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

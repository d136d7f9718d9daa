-- The mih index access method: exact Hamming k-NN (ORDER BY code <~> q) and radius search
-- (hamming_within(code, q, r), rewritten by the planner to code <@ hamming_ball(q, r)).
-- Contract: shared/design/SQL.md, "The index access method mih". C side: src/index/.

-- hamming_ball: a query code with a radius, the indexable right side of <@.
CREATE TYPE hamming_ball;
CREATE FUNCTION hamming_ball_in(cstring) RETURNS hamming_ball
    AS 'MODULE_PATHNAME', 'hamming_ball_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION hamming_ball_out(hamming_ball) RETURNS cstring
    AS 'MODULE_PATHNAME', 'hamming_ball_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE hamming_ball (
    INPUT = hamming_ball_in,
    OUTPUT = hamming_ball_out,
    INTERNALLENGTH = VARIABLE,
    STORAGE = external
);
COMMENT ON TYPE hamming_ball IS
    'a hashcode with a radius: the codes within that Hamming distance; text form ''<hex>:<radius>''';
COMMENT ON FUNCTION hamming_ball_in(cstring) IS 'hamming_ball text input: ''<hex code>:<radius>''';
COMMENT ON FUNCTION hamming_ball_out(hamming_ball) IS 'hamming_ball text output';

CREATE FUNCTION hamming_ball(q hashcode, radius integer) RETURNS hamming_ball
    AS 'MODULE_PATHNAME', 'hamming_ball_make' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION hamming_ball(hashcode, integer) IS
    'the codes within radius of q, for code <@ hamming_ball(q, r); negative radius: error 22023';

CREATE FUNCTION hashcode_within_ball(hashcode, hamming_ball) RETURNS boolean
    AS 'MODULE_PATHNAME', 'hashcode_within_ball' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION hashcode_within_ball(hashcode, hamming_ball) IS 'implementation of <@';

CREATE FUNCTION hamming_ball_sel(internal, oid, internal, integer) RETURNS float8
    AS 'MODULE_PATHNAME', 'hamming_ball_sel' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION hamming_ball_sel(internal, oid, internal, integer) IS
    'restriction selectivity of <@ (binomial tail of the radius)';

CREATE OPERATOR <@ (
    LEFTARG = hashcode, RIGHTARG = hamming_ball, FUNCTION = hashcode_within_ball,
    RESTRICT = hamming_ball_sel, JOIN = contjoinsel
);
COMMENT ON OPERATOR <@ (hashcode, hamming_ball) IS 'code lies within the Hamming ball';

-- hamming_within becomes an index condition through its planner support function.
CREATE FUNCTION hamming_within_support(internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'hamming_within_support' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION hamming_within_support(internal) IS
    'planner support for hamming_within: index condition code <@ hamming_ball(q, r), selectivity';
ALTER FUNCTION hamming_within(hashcode, hashcode, integer) SUPPORT hamming_within_support;

-- The access method.
CREATE FUNCTION mih_handler(internal) RETURNS index_am_handler
    AS 'MODULE_PATHNAME', 'mih_handler' LANGUAGE C;
COMMENT ON FUNCTION mih_handler(internal) IS 'index access method handler of mih';
CREATE ACCESS METHOD mih TYPE INDEX HANDLER mih_handler;
COMMENT ON ACCESS METHOD mih IS
    'exact Hamming search over hashcode: k-NN (ORDER BY code <~> q) and radius (hamming_within)';

CREATE OPERATOR CLASS hashcode_mih_ops DEFAULT FOR TYPE hashcode USING mih AS
    OPERATOR 1 <@ (hashcode, hamming_ball),
    OPERATOR 2 <~> (hashcode, hashcode) FOR ORDER BY integer_ops;

-- Consistency check of an index against its table. PARALLEL RESTRICTED: it first writes this
-- backend's buffered inserts (src/index/pending.rs), which a parallel worker does not hold.
CREATE FUNCTION mih_verify_json(regclass, boolean) RETURNS text
    AS 'MODULE_PATHNAME', 'mih_verify_json' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION mih_verify_json(regclass, boolean) IS 'mih_verify as JSON';

CREATE FUNCTION mih_verify(index regclass, check_heap boolean DEFAULT true,
                           OUT ok boolean, OUT code_bits integer, OUT strategy text,
                           OUT lists integer, OUT nonempty_lists integer, OUT max_radius integer,
                           OUT substrings integer, OUT generation bigint, OUT tail_rows bigint,
                           OUT tombstones bigint, OUT data_pages bigint, OUT entries bigint,
                           OUT tids bigint, OUT heap_rows bigint, OUT nulls bigint,
                           OUT heap_nulls bigint, OUT problems text[])
    LANGUAGE sql VOLATILE STRICT PARALLEL RESTRICTED
    AS $$
        SELECT (j->>'ok')::boolean, (j->>'code_bits')::int, j->>'strategy',
               (j->>'lists')::int, (j->>'nonempty_lists')::int, (j->>'max_radius')::int,
               (j->>'substrings')::int, (j->>'generation')::bigint, (j->>'tail_rows')::bigint,
               (j->>'tombstones')::bigint, (j->>'data_pages')::bigint, (j->>'entries')::bigint,
               (j->>'tids')::bigint, (j->>'heap_rows')::bigint, (j->>'nulls')::bigint,
               (j->>'heap_nulls')::bigint,
               ARRAY(SELECT jsonb_array_elements_text(j->'problems'))
        FROM (SELECT mih_verify_json($1, $2)::jsonb AS j) v
    $$;
COMMENT ON FUNCTION mih_verify(regclass, boolean) IS
    'checks a mih index: its strategy and structure (covering radii, or substring tables holding the same codes in order), and (check_heap) that every visible row is indexed with its code';

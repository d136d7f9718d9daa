-- Explicit casts: bytea, bit(n) / bit varying, bigint. Lengths are checked, never padded.
\set SHOW_CONTEXT never

-- bytea
SELECT '8f3a'::hashcode::bytea, '\x8f3a'::bytea::hashcode;
SELECT sqlstate_of($$SELECT ''::bytea::hashcode$$);
SELECT sqlstate_of($$SELECT decode(repeat('00', 513), 'hex')::hashcode$$);
SELECT length(decode(repeat('00', 512), 'hex')::hashcode);
SELECT '\x8f3a'::bytea::hashcode(16);
SELECT sqlstate_of($$SELECT '\x8f3a'::bytea::hashcode(64)$$);

-- bit(n) and bit varying: same bit order as the hex text.
SELECT '80'::hashcode::bit(8), '8f3a'::hashcode::bit varying, 'ff01'::hashcode::bit varying(32);
SELECT B'10000000'::hashcode, B'1000111100111010'::varbit::hashcode;
SELECT '8f3a0c5e91b2d477'::hashcode::bit(64)::hashcode = '8f3a0c5e91b2d477'::hashcode AS bit_round_trip;
SELECT sqlstate_of($$SELECT B'101'::hashcode$$);
SELECT sqlstate_of($$SELECT B'101010101010'::varbit::hashcode$$);
SELECT sqlstate_of($$SELECT ''::varbit::hashcode$$);
SELECT sqlstate_of($$SELECT '8f3a'::hashcode::bit(8)$$);
SELECT sqlstate_of($$SELECT '8f3a'::hashcode::bit$$);
SELECT sqlstate_of($$SELECT '8f3a'::hashcode::bit varying(8)$$);
SELECT B'1000000000000000'::hashcode(16);
SELECT sqlstate_of($$SELECT B'10000000'::hashcode(16)$$);

-- bigint <-> hashcode(64): the sign bit is bit 0.
SELECT 1::bigint::hashcode, (-1)::bigint::hashcode, (-9223372036854775808)::bigint::hashcode;
SELECT '8000000000000001'::hashcode::bigint, 'ffffffffffffffff'::hashcode::bigint;
SELECT 1234567890123::bigint::hashcode(64)::bigint AS bigint_round_trip;
SELECT sqlstate_of($$SELECT '8f3a'::hashcode::bigint$$);
SELECT sqlstate_of($$SELECT 1::bigint::hashcode(32)$$);

-- Casts are explicit only: no silent conversions in comparisons or assignments.
SELECT castsource::regtype, casttarget::regtype, castcontext, castmethod
  FROM pg_cast WHERE castsource = 'hashcode'::regtype OR casttarget = 'hashcode'::regtype
  ORDER BY castsource::regtype::text, casttarget::regtype::text;
SELECT sqlstate_of($$SELECT '\x00'::bytea = '00'::hashcode$$);

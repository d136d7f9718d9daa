-- hashcode text and binary I/O, the typmod, NULLs.
\set SHOW_CONTEXT never

-- Text form: lowercase hex out; upper case and a \x prefix accepted in.
SELECT '8f3a0c5e91b2d477'::hashcode;
SELECT '8F3A0C5E91B2D477'::hashcode, '\x8f3a0c5e91b2d477'::hashcode, E'\\xFF00'::hashcode;
SELECT '00'::hashcode AS shortest, length(repeat('ab', 512)::hashcode) AS longest_bits;
SELECT repeat('ab', 512)::hashcode::text = repeat('ab', 512) AS longest_round_trips;
SELECT NULL::hashcode IS NULL AS null_is_null;

-- Bad text: 22P02, with the reason in DETAIL.
SELECT ''::hashcode;
SELECT 'abc'::hashcode;
SELECT '0g'::hashcode;
SELECT ' 00'::hashcode;
SELECT sqlstate_of($$SELECT ''::hashcode$$);
SELECT sqlstate_of($$SELECT '\x'::hashcode$$);
SELECT sqlstate_of($$SELECT 'abc'::hashcode$$);
SELECT sqlstate_of($$SELECT 'xyz1'::hashcode$$);
SELECT sqlstate_of($$SELECT '00 '::hashcode$$);
SELECT sqlstate_of($$SELECT 'é0'::hashcode$$);
SELECT sqlstate_of(format('SELECT %L::hashcode', repeat('ab', 513)));

-- The typmod: hashcode(n), n bits, a multiple of 8 from 8 to 4096.
CREATE TABLE codes64 (id int, code hashcode(64));
\d codes64
INSERT INTO codes64 VALUES (1, '8f3a0c5e91b2d477'), (2, NULL);
SELECT id, code, pg_typeof(code), format_type(atttypid, atttypmod)
  FROM codes64, pg_attribute WHERE attrelid = 'codes64'::regclass AND attname = 'code' ORDER BY id;
INSERT INTO codes64 VALUES (3, '8f3a');
SELECT sqlstate_of($$INSERT INTO codes64 VALUES (3, '8f3a')$$);
SELECT sqlstate_of($$INSERT INTO codes64 VALUES (3, '8f3a'::hashcode)$$);
SELECT sqlstate_of($$SELECT '8f3a'::hashcode(64)$$);
SELECT sqlstate_of($$SELECT '8f3a0c5e91b2d477'::hashcode(16)$$);
SELECT '8f3a'::hashcode(16), '8f3a'::hashcode::hashcode(16);
SELECT '00'::hashcode(12);
SELECT sqlstate_of($$SELECT '00'::hashcode(12)$$);
SELECT sqlstate_of($$SELECT '00'::hashcode(0)$$);
SELECT sqlstate_of($$SELECT '00'::hashcode(4104)$$);
SELECT sqlstate_of($$SELECT '00'::hashcode(8, 8)$$);
SELECT sqlstate_of($$CREATE TABLE bad (c hashcode(12))$$);
SELECT format_type('hashcode'::regtype, 4096), format_type('hashcode'::regtype, -1);

-- Binary I/O: COPY BINARY round trip, typmod enforced on receive.
CREATE TABLE io_src (code hashcode);
INSERT INTO io_src VALUES ('00'), ('ff'), ('8f3a0c5e91b2d477'), (repeat('0123456789abcdef', 32)::hashcode), (NULL);
COPY io_src TO '/tmp/ics_hash_regress_io.bin' WITH (FORMAT binary);
CREATE TABLE io_dst (code hashcode);
COPY io_dst FROM '/tmp/ics_hash_regress_io.bin' WITH (FORMAT binary);
SELECT count(*) AS rows, count(code) AS non_null FROM io_dst;
SELECT (SELECT array_agg(code::text ORDER BY code) FROM io_src) =
       (SELECT array_agg(code::text ORDER BY code) FROM io_dst) AS binary_round_trip;
SELECT hashcode_send('8f3a'::hashcode);
CREATE TABLE io_typed (code hashcode(64));
COPY io_typed FROM '/tmp/ics_hash_regress_io.bin' WITH (FORMAT binary);
-- Bad binary input: 22P03. (bytea's binary form is its bytes, like hashcode's.)
COPY (SELECT ''::bytea) TO '/tmp/ics_hash_regress_empty.bin' WITH (FORMAT binary);
COPY io_dst FROM '/tmp/ics_hash_regress_empty.bin' WITH (FORMAT binary);
COPY (SELECT decode(repeat('ab', 513), 'hex')) TO '/tmp/ics_hash_regress_long.bin' WITH (FORMAT binary);
SELECT sqlstate_of($$COPY io_dst FROM '/tmp/ics_hash_regress_long.bin' WITH (FORMAT binary)$$);
SELECT count(*) AS rows_unchanged FROM io_dst;

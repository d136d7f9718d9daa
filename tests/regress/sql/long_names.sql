-- A model name is repeated in an error (and its log line) cut to 80 characters, however long
-- it is, through every path that takes one: ics_encode and ics_encode_batch, the
-- ics_hash.model setting, ics_model_load and ics_model_drop. Failed before: a 1 MB name gave a
-- 1 MB error.
\set SHOW_CONTEXT never
CREATE TEMP TABLE long_name AS SELECT repeat('n', 1000000) AS n, repeat('é', 100000) AS wide;
SELECT sqlstate_of($$SELECT ics_encode('\x00'::bytea, (SELECT n FROM long_name))$$);
SELECT sqlstate_of($$SELECT ics_encode('{1,2}'::real[], (SELECT n FROM long_name))$$);
SELECT sqlstate_of($$SELECT ics_encode_batch(ARRAY['\x00'::bytea], (SELECT n FROM long_name))$$);
SELECT sqlstate_of($$SELECT ics_encode('\x00'::bytea, (SELECT wide FROM long_name))$$);
-- The setting, through the functions without a model argument.
SELECT set_config('ics_hash.model', n, false) = n AS set FROM long_name;
SELECT sqlstate_of($$SELECT ics_encode('\x00'::bytea)$$);
SELECT sqlstate_of($$SELECT ics_encode_batch(ARRAY['\x00'::bytea])$$);
RESET ics_hash.model;
-- Loading and dropping.
SELECT sqlstate_of($$SELECT ics_model_load((SELECT n FROM long_name), '\x00')$$);
SELECT sqlstate_of($$SELECT ics_model_load((SELECT wide FROM long_name), '\x00')$$);
SELECT sqlstate_of($$SELECT ics_model_drop((SELECT n FROM long_name))$$);
SELECT ics_model_drop(n, missing_ok => true) FROM long_name;
-- The whole error as the client gets it (message, hint) stays short.
SELECT ics_encode('\x00'::bytea, n) FROM long_name;

-- CUDA slots: ics_hash.max_cuda_sessions bounds how many backends hold CUDA sessions at once,
-- ics_hash.cuda_memory_limit caps each one's device arena. This machine has no GPU: the
-- developer option ics_hash.debug_assume_cuda admits slots as a GPU machine would (sessions
-- still run on the CPU). A second backend comes from dblink.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION dblink;
RESET client_min_messages;

-- Settings (defined when the library loads): defaults, ranges, superuser only.
LOAD 'ics_hash';
SHOW ics_hash.max_cuda_sessions;
SHOW ics_hash.cuda_memory_limit;
SHOW ics_hash.debug_assume_cuda;
SELECT sqlstate_of($$SET ics_hash.max_cuda_sessions = -2$$);
SELECT sqlstate_of($$SET ics_hash.max_cuda_sessions = 1025$$);
SELECT sqlstate_of($$SET ics_hash.cuda_memory_limit = -1$$);
SET ics_hash.cuda_memory_limit = '512MB';
SELECT (ics_encoder_info() ->> 'cuda_memory_limit_bytes')::bigint = 512 * 1024 * 1024 AS limit_in_info;
RESET ics_hash.cuda_memory_limit;
CREATE ROLE regress_slots_plain;
SET ROLE regress_slots_plain;
SELECT sqlstate_of($$SET ics_hash.max_cuda_sessions = 100$$);
SELECT sqlstate_of($$SET ics_hash.cuda_memory_limit = '100GB'$$);
SELECT sqlstate_of($$SET ics_hash.debug_assume_cuda = on$$);
-- Everyone may see who holds slots.
SELECT count(*) AS slots_in_use FROM ics_cuda_sessions;
RESET ROLE;
DROP ROLE regress_slots_plain;

SELECT name FROM ics_model_load('slots_image', fixture('tiny_image.onnx'));
SELECT name FROM ics_model_load('slots_features', fixture('tiny_features.onnx'));
CREATE FUNCTION slot_state() RETURNS TABLE (slot int, mine boolean) LANGUAGE sql
    AS $$ SELECT slot, pid = pg_backend_pid() FROM ics_cuda_sessions ORDER BY slot $$;

-- Without a GPU a session takes no slot.
\c
SELECT ics_encode(fixture('cat.png'), 'slots_image') = code AS works FROM golden_images WHERE file = 'cat.png';
SELECT * FROM slot_state();
SELECT info -> 'cuda_slots' ->> 'slot' AS slot, info -> 'cuda_slots' ->> 'max_cuda_sessions' AS max
  FROM (SELECT ics_encoder_info() AS info) i;

-- As on a GPU machine: the first session that could run on CUDA takes slot 1, and the
-- backend keeps it while that session is cached.
\c
SET ics_hash.debug_assume_cuda = on;
SET ics_hash.max_cuda_sessions = 1;
SELECT ics_encode(fixture('cat.png'), 'slots_image') = code AS works FROM golden_images WHERE file = 'cat.png';
SELECT * FROM slot_state();
SELECT info -> 'cuda_slots' ->> 'slot' AS slot, (info -> 'cuda_slots' ->> 'slots_in_use')::int AS in_use
  FROM (SELECT ics_encoder_info() AS info) i;
SELECT s ->> 'model' AS model, s ->> 'cuda_slot' AS cuda_slot, s -> 'device_memory_limit_bytes' AS device_limit,
       s -> 'device_memory' AS device_memory
  FROM jsonb_array_elements(ics_encoder_info() -> 'sessions') s;
-- cpu sessions never take one.
SET ics_hash.execution_provider = cpu;
SELECT ics_encode('{1,2,3,4,5,6,7,8}'::real[], 'slots_features') IS NOT NULL AS cpu_works;
RESET ics_hash.execution_provider;
SELECT * FROM slot_state();

-- Another backend, every slot taken: auto runs on the CPU and says why; cuda is 53000.
SELECT dblink_connect('other', format('host=127.0.0.1 port=%s dbname=%s user=%s',
                                      current_setting('port'), current_database(), current_user));
SELECT dblink_exec('other', 'SET ics_hash.debug_assume_cuda = on');
SELECT dblink_exec('other', 'SET ics_hash.max_cuda_sessions = 1');
SELECT * FROM dblink('other', $$SELECT ics_encode(fixture('cup.jpg'), 'slots_image')::text$$) AS t(code text)
  JOIN golden_images g ON g.file = 'cup.jpg' AND g.code = t.code::hashcode;
SELECT * FROM dblink('other', $$SELECT s ->> 'execution_provider', s ->> 'reason', s ->> 'cuda_slot'
                                 FROM jsonb_array_elements(ics_encoder_info() -> 'sessions') s$$)
    AS t(provider text, reason text, cuda_slot text);
SELECT dblink_exec('other', 'SET ics_hash.execution_provider = cuda');
SELECT sqlstate_of($$SELECT * FROM dblink('other', 'SELECT ics_encode(''{1,2,3,4,5,6,7,8}''::real[], ''slots_features'')') AS t(c hashcode)$$);
SELECT dblink_exec('other', 'RESET ics_hash.execution_provider');

-- pg_advisory_unlock_all() (and DISCARD ALL) release session-level advisory locks, the slot
-- included: the next encoder call takes one again when it can.
SELECT pg_advisory_unlock_all();
SELECT * FROM slot_state();
SELECT ics_encode(fixture('cup.jpg'), 'slots_image') = code AS works FROM golden_images WHERE file = 'cup.jpg';
SELECT * FROM slot_state();
-- ... and when another backend took it meanwhile, drops its CUDA sessions and rebuilds them
-- on the CPU.
SELECT pg_advisory_unlock_all();
SELECT dblink_exec('other', 'SET ics_hash.intra_op_threads = 2');
SELECT dblink_exec('other', 'SET ics_hash.max_intra_op_threads = 2');
SELECT * FROM dblink('other', $$SELECT ics_encode(fixture('cat.png'), 'slots_image')::text$$) AS t(code text)
  JOIN golden_images g ON g.file = 'cat.png' AND g.code = t.code::hashcode;
SELECT slot, mine FROM slot_state();
SELECT ics_encode(fixture('cat.png'), 'slots_image') = code AS works FROM golden_images WHERE file = 'cat.png';
SELECT s ->> 'cuda_slot' AS cuda_slot, s ->> 'reason' AS reason
  FROM jsonb_array_elements(ics_encoder_info() -> 'sessions') s WHERE s ->> 'model' = 'slots_image';
-- A backend that ends releases its slot.
SELECT dblink_disconnect('other');
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM ics_cuda_sessions);
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;
SELECT * FROM slot_state();

-- A failed build releases the slot it took (cuda asked of a library without it).
\c
SET ics_hash.debug_assume_cuda = on;
SET ics_hash.execution_provider = cuda;
SELECT split_part(sqlstate_of($$SELECT ics_encode(fixture('cat.png'), 'slots_image')$$), ':', 1) AS sqlstate;
SELECT * FROM slot_state();
-- Dropping the model drops its session and, with the last one, the slot.
SET ics_hash.execution_provider = auto;
SELECT ics_encode(fixture('cup.jpg'), 'slots_image') = code AS works FROM golden_images WHERE file = 'cup.jpg';
SELECT * FROM slot_state();
SELECT ics_model_drop('slots_image');
SELECT * FROM slot_state();

-- The bound at 0: no backend may take a slot (one that holds a slot keeps it).
\c
SET ics_hash.debug_assume_cuda = on;
SET ics_hash.max_cuda_sessions = 0;
SELECT name FROM ics_model_load('slots_zero', fixture('tiny_features.onnx'));
SET ics_hash.execution_provider = cuda;
SELECT sqlstate_of($$SELECT ics_encode('{1,2,3,4,5,6,7,8}'::real[], 'slots_zero')$$);
RESET ics_hash.execution_provider;
SELECT * FROM slot_state();

SELECT ics_model_drop('slots_features'), ics_model_drop('slots_zero');
DROP FUNCTION slot_state();
DROP EXTENSION dblink;

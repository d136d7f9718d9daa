-- Shared by the regression tests (run first by the schedule).
-- scripts/test.sh creates the database and the extension before pg_regress runs.

-- The SQLSTATE and message of an error a statement raises, so that tests state the code.
CREATE FUNCTION sqlstate_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

SELECT extname, extversion FROM pg_extension WHERE extname = 'ics_hash';

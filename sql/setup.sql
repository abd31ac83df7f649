-- Shared helpers of the regression tests.
CREATE EXTENSION db_virtuoso;
-- Runs a statement and returns 'ok' or 'SQLSTATE: message', so error tests show both.
CREATE FUNCTION public.try(sql text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE ROLE regress_virtuoso_nobody;
CREATE ROLE regress_virtuoso_user;
GRANT USAGE ON SCHEMA virtuoso TO regress_virtuoso_user;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA virtuoso TO regress_virtuoso_user;

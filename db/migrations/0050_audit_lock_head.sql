-- One round trip to take the audit chain's lock and read its head (was two statements): a
-- VOLATILE PL/pgSQL function takes a new snapshot for each statement under READ COMMITTED, so the
-- head is read after the lock is held and sees every append committed before it.
CREATE FUNCTION audit_lock_head() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  head text;
BEGIN
  LOCK TABLE audit_events IN SHARE ROW EXCLUSIVE MODE;
  SELECT hash INTO head FROM audit_events ORDER BY seq DESC LIMIT 1;
  RETURN head;
END $$;

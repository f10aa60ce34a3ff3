-- Replaying stored logins (back-tests, exports) reads login_events by time in keyset pages and
-- joins each step-up to the success of the same flow. Without these, every page is a full scan
-- and a sort, and every step-up a scan for its flow: quadratic over a month of traffic.
-- (The login flow's own lookup of a flow's success uses the flow_id index too.)
CREATE INDEX IF NOT EXISTS login_events_created ON login_events (created_at, id);
CREATE INDEX IF NOT EXISTS login_events_flow ON login_events (flow_id);

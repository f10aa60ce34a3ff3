-- Versioned risk policies with one active and at most one shadow (issue 8 §2), and the shadow
-- policy's decision recorded beside the enforced one on every scored login event.
ALTER TABLE risk_policies ADD COLUMN shadow boolean NOT NULL DEFAULT false;
ALTER TABLE risk_policies ADD COLUMN created_by text;
ALTER TABLE risk_policies ADD CONSTRAINT risk_policies_active_or_shadow CHECK (NOT (active AND shadow));
CREATE UNIQUE INDEX risk_policies_one_active ON risk_policies ((true)) WHERE active;
CREATE UNIQUE INDEX risk_policies_one_shadow ON risk_policies ((true)) WHERE shadow;

ALTER TABLE login_events ADD COLUMN shadow_policy_version text;
ALTER TABLE login_events ADD COLUMN shadow_decision text;
ALTER TABLE login_events ADD COLUMN shadow_score integer;
ALTER TABLE login_events ADD COLUMN shadow_reasons jsonb;

-- The events API pages newest first on (created_at, id).
CREATE INDEX login_events_created ON login_events(created_at DESC, id DESC);
CREATE INDEX login_events_shadow ON login_events(created_at) WHERE shadow_decision IS NOT NULL;
-- Shadow recording, step-up labels and event detail look events up by their login flow.
CREATE INDEX login_events_flow ON login_events(flow_id);

-- login_events.ip is text and may hold whatever a trusted proxy forwarded: filters by address or
-- subnet cast through this, so one odd row cannot fail a whole query.
CREATE FUNCTION threshold_try_inet(t text) RETURNS inet LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN t::inet;
EXCEPTION WHEN others THEN
  RETURN NULL;
END;
$$;

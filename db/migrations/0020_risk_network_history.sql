-- Network identity and novelty per login event (issue 8): what the risk history port reads.
-- Filled by the login flow for every new event; rows from before this migration keep NULLs and
-- simply count as "network unknown" (a one-off extra step-up for returning users, never a pass).
ALTER TABLE login_events
  ADD COLUMN net_prefix   text,              -- /24 (IPv4) or /48 (IPv6) of ip
  ADD COLUMN net_key      text,              -- novelty unit: net_prefix, or 'AS<n>' for mobile carriers
  ADD COLUMN asn          integer,
  ADD COLUMN net_type     text,              -- hosting | vpn | proxy | tor | mobile | residential | business | unknown
  ADD COLUMN ua_family    text,              -- "Browser/OS", never the full header
  ADD COLUMN geo_radius_km real,             -- accuracy radius of the fix when the database has one
  ADD COLUMN device_new   boolean;           -- account had succeeded before, never on this device (or unknown account)

-- "Has this account succeeded from this device / network before?" — one index probe each.
CREATE INDEX login_events_known_device ON login_events (identity_id, device_id) WHERE outcome = 'succeeded';
CREATE INDEX login_events_known_net ON login_events (identity_id, net_key) WHERE outcome = 'succeeded';
-- The account's successes with what the signals read from them, so the per-account part of the
-- history query is an index-only scan (no heap page per past login).
CREATE INDEX login_events_user_success ON login_events (identity_id, created_at DESC)
  INCLUDE (device_id, net_key, asn, ua_family, country, latitude, longitude, geo_radius_km, net_type)
  WHERE outcome = 'succeeded';
-- Cross-account velocity: only attempts whose device was new to the account are counted, so the
-- partial indexes stay small even for a busy office NAT.
CREATE INDEX login_events_ip_newdev ON login_events (ip, created_at) WHERE device_new;
CREATE INDEX login_events_prefix_newdev ON login_events (net_prefix, created_at) WHERE device_new;
CREATE INDEX login_events_device_newdev ON login_events (device_id, created_at) WHERE device_new;

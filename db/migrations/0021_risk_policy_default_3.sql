-- default-3 (issue 8): network novelty, network kind, cross-account velocity and trust reasons.
-- Earlier versions stay in the table (and default-2 in code) so their decisions replay.
-- The document must equal DEFAULT_POLICY in src/risk/policy.ts (test/unit/risk-policy.test.ts checks).
INSERT INTO risk_policies (version, document, active, created_at)
VALUES ('default-2', '{"version":"default-2","weights":{"NEW_DEVICE":10,"NEW_COUNTRY":20,"IMPOSSIBLE_TRAVEL":50,"SUSPICIOUS_IP":30,"FAILED_ATTEMPTS":15},"failedAttempts":{"threshold":3},"thresholds":{"stepUp":25,"high":60,"deny":90},"phishingResistantAt":"high"}'::jsonb, false, now() - interval '1 second')
ON CONFLICT (version) DO NOTHING;
UPDATE risk_policies SET active = false WHERE active;
INSERT INTO risk_policies (version, document, active, created_at)
VALUES ('default-3', '{"version":"default-3","weights":{"NEW_DEVICE":10,"NEW_COUNTRY":10,"IMPOSSIBLE_TRAVEL":60,"SUSPICIOUS_IP":60,"FAILED_ATTEMPTS":15,"NEW_NETWORK":5,"NEW_DEVICE_NEW_NETWORK":20,"HOSTING_NETWORK":10,"ANONYMIZING_NETWORK":10,"TOR_EXIT":60,"PASSWORD_SPRAY":30,"IP_VELOCITY":30,"SUBNET_VELOCITY":20,"DEVICE_VELOCITY":30,"KNOWN_DEVICE":0,"KNOWN_NETWORK":0,"ALLOWED_NETWORK":0},"failedAttempts":{"threshold":3},"velocity":{"windowSeconds":86400,"ipAccounts":2,"subnetAccounts":4,"deviceAccounts":1,"sprayAccounts":3},"thresholds":{"stepUp":25,"high":60,"deny":120},"phishingResistantAt":"high"}'::jsonb, true, now())
ON CONFLICT (version) DO UPDATE SET active = true;

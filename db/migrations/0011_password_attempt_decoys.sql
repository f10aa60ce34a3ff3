-- Rows an unknown identifier's password attempt writes instead of an identity's counters, so a
-- wrong password costs the same for every identifier: two single-row writes (each a WAL flush).
-- A row never written is an answer measurably faster (src/auth/password.ts, lockout.ts).
-- Several slots, picked at random, so a flood of unknown identifiers does not queue on one row lock.
CREATE TABLE password_attempt_decoys (
  slot     smallint PRIMARY KEY,
  attempts bigint NOT NULL DEFAULT 0,
  settled  bigint NOT NULL DEFAULT 0
);
INSERT INTO password_attempt_decoys (slot) SELECT generate_series(0, 63);

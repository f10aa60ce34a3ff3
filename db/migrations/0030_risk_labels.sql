-- Feedback labels on login events (issue 8 §4). Many labels per event, each with where it came
-- from and how much it weighs; login_events.label holds the derived current label so back-tests
-- read one column (the same on every event of a flow). Replaces the one-label-per-event table of 0005.
ALTER TABLE login_event_labels RENAME TO login_event_labels_v1;

CREATE TABLE login_event_labels (
  id             uuid PRIMARY KEY,
  login_event_id uuid NOT NULL REFERENCES login_events(id) ON DELETE CASCADE,
  label          text NOT NULL CHECK (label IN ('fraud', 'legit')),
  source         text NOT NULL CHECK (source IN ('analyst', 'user_report', 'step_up')),
  -- strong: an analyst's verdict or the account owner's report; weak: inferred (a completed step-up).
  strength       text NOT NULL CHECK (strength IN ('strong', 'weak')),
  actor          text,                                -- analyst or reporting identity; NULL when inferred
  note           text,
  created_at     timestamptz NOT NULL
);
CREATE INDEX login_event_labels_event ON login_event_labels(login_event_id, created_at DESC);
-- A step-up completes once per event: re-applying the effect must not add a second weak label.
CREATE UNIQUE INDEX login_event_labels_one_step_up ON login_event_labels(login_event_id) WHERE source = 'step_up';

INSERT INTO login_event_labels (id, login_event_id, label, source, strength, created_at)
SELECT gen_random_uuid(), login_event_id,
       CASE label WHEN 'fraudulent' THEN 'fraud' ELSE 'legit' END,
       CASE WHEN source IN ('analyst', 'user_report', 'step_up') THEN source ELSE 'analyst' END,
       'strong', created_at
  FROM login_event_labels_v1;
DROP TABLE login_event_labels_v1;

-- The current label belongs to the login attempt, so every event of one flow carries it (a
-- back-test replays the stepped-up event, a report names the succeeded one): over the labels of
-- all the flow's events, strong beats weak, then the latest wins (an analyst can overturn a
-- report). src/risk/labels.ts keeps it current with the same rule.
UPDATE login_events e SET label = (
  SELECT l.label FROM login_event_labels l JOIN login_events x ON x.id = l.login_event_id
   WHERE x.flow_id = e.flow_id OR x.id = e.id
   ORDER BY (l.strength = 'strong') DESC, l.created_at DESC, l.id DESC LIMIT 1)
 WHERE EXISTS (SELECT 1 FROM login_event_labels l JOIN login_events x ON x.id = l.login_event_id WHERE x.flow_id = e.flow_id OR x.id = e.id);
UPDATE login_events SET label = NULL WHERE label IS NOT NULL AND label NOT IN ('fraud', 'legit');
ALTER TABLE login_events ADD CONSTRAINT login_events_label_check CHECK (label IN ('fraud', 'legit'));

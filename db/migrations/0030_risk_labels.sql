-- Feedback labels on login events (issue 8 §4). Many labels per event, each with where it came
-- from and how much it weighs; login_events.label holds the derived current label so back-tests
-- read one column. Replaces the one-label-per-event table of 0005.
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

-- The current label: strong beats weak, then the latest wins (an analyst can overturn a report).
CREATE VIEW login_event_current_labels AS
SELECT DISTINCT ON (login_event_id) login_event_id, label, source, strength, created_at
  FROM login_event_labels
 ORDER BY login_event_id, (strength = 'strong') DESC, created_at DESC, id DESC;

UPDATE login_events e SET label = c.label FROM login_event_current_labels c WHERE c.login_event_id = e.id;
UPDATE login_events SET label = NULL WHERE label IS NOT NULL AND label NOT IN ('fraud', 'legit');
ALTER TABLE login_events ADD CONSTRAINT login_events_label_check CHECK (label IN ('fraud', 'legit'));

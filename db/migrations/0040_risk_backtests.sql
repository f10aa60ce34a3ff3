-- Back-test jobs (issue 8 §5): a candidate policy replayed over stored login events or an
-- uploaded JSONL file, run on the `backtest` queue; progress and the summary are kept here so
-- any API process can answer GET /api/risk/backtests/:id while a worker elsewhere runs it.
CREATE TABLE risk_backtests (
  id           uuid PRIMARY KEY,
  status       text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  -- The policy documents as resolved when the job was created, so a later activation or edit
  -- cannot change what a finished back-test measured.
  policy       jsonb NOT NULL,
  compare      jsonb,
  -- {"type":"events","from":…,"to":…} or {"type":"jsonl","bytes":…,"lines":…}
  input        jsonb NOT NULL,
  input_text   text,                       -- the uploaded JSONL (bounded by the route), dropped when done
  total        integer,                    -- attempts (or lines) expected, for progress
  processed    integer NOT NULL DEFAULT 0,
  summary      jsonb,
  error        text,
  created_by   uuid,
  created_at   timestamptz NOT NULL,
  started_at   timestamptz,
  heartbeat_at timestamptz,                -- last progress write: a run silent for long died with its worker
  finished_at  timestamptz
);
CREATE INDEX risk_backtests_created ON risk_backtests (created_at DESC);
-- VIEW_RISK (and its ADMIN grant) is seeded by 0032_risk_permissions.sql.

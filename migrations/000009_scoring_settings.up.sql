-- The scoring settings each scorer runs with, by its windower group (the
-- key of the state it scores), stored when it starts: what explains a
-- score is what made it, not the reader's own copy of the settings.
CREATE TABLE scoring_settings (
    consumer   text        PRIMARY KEY,
    settings   jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A retraction takes a user's rating back. The user's row stays as a
-- tombstone (retracted, score 0, the retraction's time and event id), so
-- that an older rating delivered after it stays out; every reader of
-- current ratings leaves tombstones out. retract_count is the ratings
-- taken back in a window: activity, judged like votes cast.
ALTER TABLE ratings ADD COLUMN retracted boolean NOT NULL DEFAULT false;
ALTER TABLE ratings ADD CONSTRAINT ratings_tombstone_score CHECK (NOT retracted OR score = 0);
ALTER TABLE rating_averages ADD COLUMN retract_count bigint NOT NULL DEFAULT 0 CHECK (retract_count >= 0);

DELETE FROM ratings WHERE retracted;
ALTER TABLE ratings DROP CONSTRAINT ratings_tombstone_score;
ALTER TABLE ratings DROP COLUMN retracted;
ALTER TABLE rating_averages DROP COLUMN retract_count;

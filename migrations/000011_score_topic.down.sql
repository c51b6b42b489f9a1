DROP TABLE score_outbox;
ALTER TABLE post_scores DROP COLUMN version;

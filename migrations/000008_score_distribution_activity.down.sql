ALTER TABLE post_scores DROP COLUMN dist, DROP COLUMN activity, DROP COLUMN activity_at;

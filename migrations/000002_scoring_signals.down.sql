ALTER TABLE post_scores DROP COLUMN campaign_since;
ALTER TABLE rating_averages DROP COLUMN late_count;
ALTER TABLE rating_averages DROP COLUMN rerate_count;
ALTER TABLE ratings DROP COLUMN rerate;

-- Re-ratings are known raters changing their verdict, not new volume: a
-- campaign brings new accounts. ratings.rerate says a vote replaced the
-- user's earlier one; rating_averages.rerate_count counts such votes in a
-- window. Only the other votes (first-time raters) are judged against the
-- window's anomaly threshold; re-ratings count fully (docs/scoring.md).
-- Rows written before this migration count as first votes, as before.
ALTER TABLE ratings ADD COLUMN rerate boolean NOT NULL DEFAULT false;
ALTER TABLE rating_averages ADD COLUMN rerate_count bigint NOT NULL DEFAULT 0
    CHECK (rerate_count >= 0 AND rerate_count <= rating_count);

-- Events that reached a window after the watermark had closed it (counted
-- all the same), for GET /v1/posts/{id}/explain.
ALTER TABLE rating_averages ADD COLUMN late_count bigint NOT NULL DEFAULT 0 CHECK (late_count >= 0);

-- The start of the oldest window still maturing that is held out as a
-- surge: the post is under a campaign since then (null: it is not).
ALTER TABLE post_scores ADD COLUMN campaign_since timestamptz;

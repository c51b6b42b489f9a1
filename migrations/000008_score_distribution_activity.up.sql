-- What the lists order by and show, in the score's own row so that a
-- post's numbers agree with each other: the distribution of its current
-- ratings by score 0..5 (it adds up to user_count), and its recent honest
-- activity: the typical votes per window its tracker had learned by the
-- window activity_at (held-out windows teach nothing), which decays with
-- every window after it.
ALTER TABLE post_scores
    ADD COLUMN dist        bigint[]         NOT NULL DEFAULT '{0,0,0,0,0,0}' CHECK (cardinality(dist) = 6),
    ADD COLUMN activity    double precision NOT NULL DEFAULT 0,
    ADD COLUMN activity_at timestamptz;

UPDATE post_scores s SET dist = t.dist, user_count = t.rating_count, activity = t.baseline, activity_at = t.current_window
FROM post_stats t WHERE t.post_id = s.post_id;

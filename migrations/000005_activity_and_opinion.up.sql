-- The scoring method judges each window by its activity (first votes and
-- changed votes alike) and by its opinion, against the post's typical
-- activity and opinion when the window opened (docs/scoring.md). What a
-- window is judged against is fixed when it opens and stored with it, so
-- that its verdict is a function of its row alone.
ALTER TABLE rating_averages
    ADD COLUMN rerate_sum  bigint           NOT NULL DEFAULT 0 CHECK (rerate_sum >= 0 AND rerate_sum <= rating_sum),
    ADD COLUMN expected    double precision NOT NULL DEFAULT 0,
    ADD COLUMN sustained   boolean          NOT NULL DEFAULT false,
    ADD COLUMN ref_mean    double precision,           -- null: the post had no opinion yet
    ADD COLUMN ref_weight  double precision NOT NULL DEFAULT 0,
    ADD COLUMN episode_z   double precision NOT NULL DEFAULT 0,
    ADD COLUMN new_mean    double precision,           -- null: no recent first-time raters
    ADD COLUMN new_weight  double precision NOT NULL DEFAULT 0,
    ADD COLUMN new_excess  boolean          NOT NULL DEFAULT false,
    ADD COLUMN reviewed    boolean          NOT NULL DEFAULT false;

-- Windows written before this migration were judged by another method;
-- they keep counting fully (an infinite threshold is never exceeded).
-- Rebuilding the tables with `ratestream replay` judges them with this
-- one (docs/operations.md).
UPDATE rating_averages SET threshold = 'Infinity';
UPDATE rating_averages a SET rerate_sum = x.s
FROM (SELECT post_id, window_start, sum(score) AS s FROM ratings WHERE rerate GROUP BY 1, 2) x
WHERE a.post_id = x.post_id AND a.window_start = x.window_start;

-- A post's tracker: its typical activity (baseline, baseline_seen), the
-- cumulative tests of sustained excess of all votes and of first-time
-- raters, the opinion of the votes cast in such an episode, the recent
-- opinion of first-time raters, its first window, and the windows held
-- out with changed votes that await their review, the first and last of
-- its latest run of held-out windows (its campaign flag). dist counts the
-- post's current votes by score, 0 to 5.
ALTER TABLE post_stats
    ADD COLUMN sustain       double precision NOT NULL DEFAULT 0,
    ADD COLUMN episode_count double precision NOT NULL DEFAULT 0,
    ADD COLUMN episode_sum   double precision NOT NULL DEFAULT 0,
    ADD COLUMN new_count     double precision NOT NULL DEFAULT 0,
    ADD COLUMN new_sum       double precision NOT NULL DEFAULT 0,
    ADD COLUMN new_sustain   double precision NOT NULL DEFAULT 0,
    ADD COLUMN first_window  timestamptz,
    ADD COLUMN pending       timestamptz[]    NOT NULL DEFAULT '{}',
    ADD COLUMN held_since    timestamptz,
    ADD COLUMN held_last     timestamptz,
    ADD COLUMN dist          bigint[]         NOT NULL DEFAULT '{0,0,0,0,0,0}' CHECK (cardinality(dist) = 6),
    DROP COLUMN current_count,
    DROP COLUMN current_threshold;

UPDATE post_stats SET weighted_sum = rating_sum * 1000000, weight = rating_count * 1000000, first_window = current_window;
UPDATE post_stats s SET first_window = x.first
FROM (SELECT post_id, min(window_start) AS first FROM rating_averages GROUP BY 1) x
WHERE s.post_id = x.post_id;
UPDATE post_stats s SET dist = ARRAY[x.d0, x.d1, x.d2, x.d3, x.d4, x.d5]
FROM (SELECT post_id,
             count(*) FILTER (WHERE score = 0) AS d0, count(*) FILTER (WHERE score = 1) AS d1,
             count(*) FILTER (WHERE score = 2) AS d2, count(*) FILTER (WHERE score = 3) AS d3,
             count(*) FILTER (WHERE score = 4) AS d4, count(*) FILTER (WHERE score = 5) AS d5
      FROM ratings GROUP BY post_id) x
WHERE s.post_id = x.post_id;

ALTER TABLE post_stats ALTER COLUMN first_window SET NOT NULL;

ALTER TABLE post_stats
    DROP COLUMN sustain, DROP COLUMN episode_count, DROP COLUMN episode_sum,
    DROP COLUMN new_count, DROP COLUMN new_sum, DROP COLUMN new_sustain,
    DROP COLUMN first_window, DROP COLUMN pending, DROP COLUMN held_since, DROP COLUMN held_last, DROP COLUMN dist,
    ADD COLUMN current_count bigint NOT NULL DEFAULT 0,
    ADD COLUMN current_threshold double precision NOT NULL DEFAULT 'Infinity';
ALTER TABLE rating_averages
    DROP COLUMN rerate_sum, DROP COLUMN expected, DROP COLUMN sustained,
    DROP COLUMN ref_mean, DROP COLUMN ref_weight, DROP COLUMN episode_z,
    DROP COLUMN new_mean, DROP COLUMN new_weight, DROP COLUMN new_excess, DROP COLUMN reviewed;

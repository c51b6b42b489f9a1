DROP TRIGGER IF EXISTS posts_notify ON posts;
DROP FUNCTION IF EXISTS notify_post_created();
DROP TABLE IF EXISTS post_scores;
DROP TABLE IF EXISTS rescore_queue;
DROP TABLE IF EXISTS consumer_offsets;
DROP TABLE IF EXISTS post_stats;
DROP TABLE IF EXISTS rating_averages;
DROP TABLE IF EXISTS ratings;
DROP TABLE IF EXISTS posts;

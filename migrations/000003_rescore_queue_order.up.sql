-- The scorer claims the posts marked longest ago first. Without an index
-- that meant reading the whole queue and sorting it in every round; the
-- queue is a table of short-lived rows (the windower inserts, the scorer
-- deletes, thousands a second under load), so its heap holds the dead
-- rows of every claim until autovacuum comes by, and the claim took 15 ms
-- instead of under 2 (make bench-e2e at 10,000 ratings/s).
CREATE INDEX rescore_queue_marked_at ON rescore_queue (marked_at);

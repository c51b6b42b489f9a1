-- A post's rows are written by the batches of its partition (the topic is
-- keyed by post). A producer that puts a post's event on another partition
-- breaks that, and the windower then writes the post's rows from that
-- partition's batch too: it counts the number of such writes here, on the
-- row of the partition the post belongs to, so that the instance holding
-- that partition knows the rows it keeps in memory may no longer be the
-- stored ones.
ALTER TABLE consumer_offsets ADD COLUMN foreign_writes bigint NOT NULL DEFAULT 0;

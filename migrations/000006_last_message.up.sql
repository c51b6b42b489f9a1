-- A fingerprint of the message a partition's stored offset follows (the
-- one at next_offset - 1): a windower resuming there checks that the log
-- still holds it, and stops the partition when it does not (the topic was
-- deleted and created again, and its new log has passed the old offset).
-- Null: not known (written before this migration, or a position inside a
-- split batch).
ALTER TABLE consumer_offsets ADD COLUMN last_message bytea;

ALTER TABLE consumer_offsets DROP COLUMN foreign_writes;

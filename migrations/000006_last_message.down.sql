ALTER TABLE consumer_offsets DROP COLUMN last_message;

ALTER TABLE consumer_offsets DROP COLUMN erased;
DROP INDEX ratings_user;
DROP TABLE erasures;
DROP TABLE user_pseudonyms;

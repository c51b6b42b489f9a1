DROP INDEX ratings_user;
DROP TABLE erasures;
DROP TABLE user_pseudonyms;

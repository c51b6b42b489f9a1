-- Every user id a client has sent, and the pseudonym that stands for it on
-- the topic and in every derived table (ratings.user_id holds
-- pseudonyms). Ingest creates the row before it publishes the user's first
-- event; erasing the user deletes it, after which nothing ties the
-- pseudonym, or any event on the topic, to the person (docs/data.md).
CREATE TABLE user_pseudonyms (
    user_id   text PRIMARY KEY CHECK (octet_length(user_id) BETWEEN 1 AND 128),
    pseudonym text NOT NULL CHECK (octet_length(pseudonym) BETWEEN 1 AND 128)
);

-- Users who rated before pseudonyms keep their id as their pseudonym, so
-- that their next rating replaces their earlier one: one user, one vote.
-- (Their id stays in the topic's earlier events; docs/data.md says what
-- erasing them does.)
INSERT INTO user_pseudonyms (user_id, pseudonym)
SELECT DISTINCT user_id, user_id FROM ratings;

-- Erasures whose mapping is deleted and whose erase events are not yet on
-- every partition: ratestream erase finishes any it finds.
CREATE TABLE erasures (
    pseudonym    text        PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now()
);

-- An erasure reads every vote of a user. Byte order (COLLATE "C"): the
-- cheapest comparisons, and pseudonyms sort by age, so a new user's votes
-- go to the end of it.
CREATE INDEX ratings_user ON ratings (user_id COLLATE "C");

-- Per partition, the pseudonyms erased in the last ten minutes of event
-- time, {"pseudonym": "erased_at"}: the windower drops their later events
-- (ratings that read the pseudonym just before the mapping went).
ALTER TABLE consumer_offsets ADD COLUMN erased jsonb;

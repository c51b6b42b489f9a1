-- Every change of a post's score is also published to the compacted
-- topic post-scores.v1. version grows with every write of the row (see
-- pkg/tally: scoreVersion), so that a consumer keeps the newest record of a
-- post whatever comes twice or late.
ALTER TABLE post_scores ADD COLUMN version bigint NOT NULL DEFAULT 0;

-- The outbox: the records to publish, written in the scorer's transaction
-- with the scores they carry (nothing is published that did not commit,
-- nothing that committed is lost). The scorer's relay publishes them in
-- seq order, then deletes them; after a crash it publishes the rest again.
CREATE TABLE score_outbox (
    seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id bigint NOT NULL,
    version bigint NOT NULL,
    record  text   NOT NULL
);

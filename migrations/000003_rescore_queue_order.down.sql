DROP INDEX rescore_queue_marked_at;

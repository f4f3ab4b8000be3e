-- cloud-stream's tables on PostgreSQL (stream-postgres). `stream_postgres::migrate` runs this
-- file; it is idempotent, and teams that manage their own migrations can run it themselves.
-- Tables go to the connection's current schema (its `search_path`).

-- The idempotent consumer: one row per (consumer, message key) handled successfully, written
-- in the handler's own transaction.
CREATE TABLE IF NOT EXISTS cloud_stream_inbox (
    consumer     text        NOT NULL,
    message_key  text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_key)
);
CREATE INDEX IF NOT EXISTS cloud_stream_inbox_processed_at ON cloud_stream_inbox (processed_at);

-- The transactional outbox: messages committed with the writer's transaction, published by the
-- relay in `id` order (then deleted).
CREATE TABLE IF NOT EXISTS cloud_stream_outbox (
    id            bigserial   PRIMARY KEY,
    destination   text        NOT NULL,
    partition_key text,
    headers       jsonb       NOT NULL,
    payload       bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Outbox rows the relay can never publish (the destination is not allowed, no such binder,
-- too large for the broker), moved here with the error instead of blocking their key.
CREATE TABLE IF NOT EXISTS cloud_stream_outbox_dead (
    id            bigint      PRIMARY KEY,
    destination   text        NOT NULL,
    partition_key text,
    headers       jsonb       NOT NULL,
    payload       bytea       NOT NULL,
    created_at    timestamptz NOT NULL,
    failed_at     timestamptz NOT NULL DEFAULT now(),
    error         text        NOT NULL
);

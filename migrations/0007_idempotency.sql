-- Idempotency keys (issue #24): the answer to a POST sent with an Idempotency-Key header,
-- written in the transaction of the change it answers (src/handlers/idempotency.c), so that a
-- crash keeps both or neither. A repeat of (tenant, key) with the same request (method, path,
-- SHA-256 of the body) replays it until expires_at (SEGMENTD_IDEMPOTENCY_HOURS after the
-- first); the sweeper deletes the expired rows. Only answers that changed something are kept
-- (2xx): a 4xx changed nothing and a 5xx is retried.
CREATE TABLE idempotency_keys (
    tenant       text        NOT NULL,
    key          text        NOT NULL,
    method       text        NOT NULL,
    path         text        NOT NULL,
    body_sha256  text        NOT NULL,  -- hex
    status       smallint    NOT NULL,
    content_type text,
    location     text,
    etag         text,
    body         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);

-- Webhooks (issue #25): a tenant's subscriptions, the outbox of events, and one delivery per
-- (event, subscription).
--
-- An event is written by the statement that makes the change it tells of, so in its
-- transaction: a committed change always yields its event, a rolled-back one never does. It is
-- written only when the tenant has a subscription for its type at that moment, and with it one
-- `webhook_deliveries` row per such subscription (the fan-out happens in the same statement):
-- a tenant without webhooks pays one probe of the primary key of `webhooks` per statement and writes
-- nothing. The delivery worker then works on `webhook_deliveries` alone, claiming due rows with
-- FOR UPDATE SKIP LOCKED, so that with several segmentd processes each delivery is attempted
-- by one of them at a time.

CREATE TABLE webhooks (
    tenant     text        NOT NULL,
    id         text        NOT NULL,  -- "wh_" + 13 base62
    url        text        NOT NULL,
    events     text[]      NOT NULL,  -- the event types subscribed to (no duplicates, not empty)
    secret     text        NOT NULL,  -- "whsec_" + base64 of the HMAC key: answered only by the create and rotate-secret
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id),
    CHECK (cardinality(events) > 0)
);

-- The outbox. `seq` orders a tenant's events (the order deliveries are attempted in); `id`
-- ("evt_" + 13 base62) is the event's identity for receivers, sent as the webhook-id header
-- of every attempt of every delivery of it, for de-duplication.
CREATE TABLE webhook_events (
    seq    bigint      GENERATED ALWAYS AS IDENTITY,
    tenant text        NOT NULL,
    id     text        NOT NULL,
    type   text        NOT NULL,  -- segment.created, segment.updated, segment.deleted, segment.extended, segment.expired, device.import.finished, segment.size.changed
    at     timestamptz NOT NULL DEFAULT now(),
    data   jsonb       NOT NULL,  -- the payload's "data": the segment's representation, …
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX webhook_events_seq ON webhook_events (seq);

CREATE TABLE webhook_deliveries (
    seq         bigint      GENERATED ALWAYS AS IDENTITY,
    tenant      text        NOT NULL,
    id          text        NOT NULL,  -- "dlv_" + 13 base62
    webhook     text        NOT NULL,
    event       text        NOT NULL,
    status      text        NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts    integer     NOT NULL DEFAULT 0,
    next_at     timestamptz NOT NULL DEFAULT now(),  -- the next attempt (pending only)
    last_at     timestamptz,                         -- the last attempt's time
    last_status smallint,                            -- its HTTP status, NULL when none came
    last_error  text,                                -- why it failed (timeout, refused, …)
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, webhook) REFERENCES webhooks ON DELETE CASCADE,
    FOREIGN KEY (tenant, event) REFERENCES webhook_events ON DELETE CASCADE
);
-- The worker's claim: the due pending deliveries, oldest event first.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at, seq) WHERE status = 'pending';
-- The delivery log of one subscription, newest first.
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (tenant, webhook, seq);
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (tenant, event);

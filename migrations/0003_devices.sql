-- Devices (issue #21): whom segments target. One typed column per field of the device
-- table (src/validate/formats.c), not a jsonb document: a narrow typed row is several times
-- smaller and faster to scan. The tenant leads every key. `version` backs the ETag.
-- createdAt is the client's own (epoch ms); updated_at is ours.

CREATE TABLE devices (
    tenant               text        NOT NULL,
    id                   text        NOT NULL CHECK (id ~ '^[A-Za-z0-9_.:@-]{1,255}$'),
    country              text,
    language             text,
    timezone             text,
    app_version          text,
    app_version_code     integer,
    os_api               text,
    os_version           text,
    custom_user_id       text,
    email                text,
    type                 text CHECK (type IN ('phone', 'tablet', 'smartwatch', 'desktop')),
    first_session        bigint      CHECK (first_session >= 0),
    last_session         bigint      CHECK (last_session >= 0),
    session_count        integer,
    created_at           bigint      CHECK (created_at >= 0),
    push_token           text,
    un_registered_at     bigint      CHECK (un_registered_at >= 0),
    device_model         text,
    device_manufacturer  text,
    tags                 text[]      NOT NULL DEFAULT '{}',
    attributes           jsonb       NOT NULL DEFAULT '{}',
    updated_at           timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
    version              bigint      NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant, id)
);

-- GET /v1/devices pages by (updated_at, id), oldest change first, with updated_since.
CREATE INDEX devices_updated_idx ON devices (tenant, updated_at, id);

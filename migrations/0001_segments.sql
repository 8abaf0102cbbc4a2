-- The two dialects' segments. Every row belongs to a tenant; every statement is
-- scoped by it. `version` backs the ETag and If-Match.

CREATE TABLE audience_segments (
    tenant                text        NOT NULL,
    id                    uuid        NOT NULL,
    no                    bigint      GENERATED ALWAYS AS IDENTITY,
    management_type       text        NOT NULL
        CHECK (management_type IN ('selfmanaged', 'systemmanaged')),
    name                  text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
    owner_id              uuid        NOT NULL,
    approximated_size     bigint      CHECK (approximated_size >= 0),
    description           text        CHECK (char_length(description) <= 4096),
    properties            jsonb       NOT NULL DEFAULT '{}',
    deprecated_properties jsonb       NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    version               bigint      NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, no)
);

-- "segments targeting attribute code X with value Y": properties @> '{"X": ["Y"]}'
CREATE INDEX audience_segments_properties_idx
    ON audience_segments USING gin (properties jsonb_path_ops);
CREATE INDEX audience_segments_owner_idx ON audience_segments (tenant, owner_id, no DESC);
CREATE INDEX audience_segments_updated_idx ON audience_segments (tenant, updated_at);

CREATE TABLE v1_segments (
    tenant      text        NOT NULL,
    id          text        NOT NULL CHECK (id ~ '^seg_[0-9A-Za-z]{13}$'),
    seq         bigint      GENERATED ALWAYS AS IDENTITY,
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
    description text        CHECK (char_length(description) <= 4096),
    constraints jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     bigint      NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, seq)
);

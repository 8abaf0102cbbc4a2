-- Device imports (issue #21): POST /v1/devices/imports streams NDJSON. Its valid lines are
-- staged in device_import_rows as they arrive (committed every few thousand lines, so that
-- no transaction stays open for the length of an upload); once the whole body has arrived
-- the import is `merging`, and a background worker upserts its staged rows into devices
-- in line order, a chunk of lines per transaction, deleting them as it goes. Nothing of an
-- import reaches devices before its body is complete: a cut upload only ever staged rows,
-- and they are deleted when it is marked failed.

CREATE TABLE device_imports (
    seq             bigint      GENERATED ALWAYS AS IDENTITY UNIQUE, -- the staged rows' key, the list's order
    tenant          text        NOT NULL,
    id              text        NOT NULL,
    status          text        NOT NULL DEFAULT 'receiving'
                    CHECK (status IN ('receiving', 'merging', 'done', 'failed')),
    bytes           bigint      NOT NULL DEFAULT 0,
    lines_received  bigint      NOT NULL DEFAULT 0,  -- non-blank lines
    lines_invalid   bigint      NOT NULL DEFAULT 0,
    lines_upserted  bigint      NOT NULL DEFAULT 0,  -- valid lines merged so far
    last_line       bigint      NOT NULL DEFAULT 0,  -- the body's number of lines, once received
    merged_through  bigint      NOT NULL DEFAULT 0,  -- the last line number merged
    errors          json        NOT NULL DEFAULT '[]', -- the first 100 invalid lines, as written
    failure         json,                            -- {code, detail} once failed
    started_at      timestamptz NOT NULL DEFAULT now(),
    received_at     timestamptz,
    finished_at     timestamptz,
    PRIMARY KEY (tenant, id)
);

-- GET /v1/devices/imports: a tenant's imports, newest first.
CREATE INDEX device_imports_list_idx ON device_imports (tenant, seq);
-- The merge worker and the recovery of interrupted uploads look only at unfinished imports.
CREATE INDEX device_imports_open_idx ON device_imports (seq) WHERE status IN ('receiving', 'merging');

-- The valid lines of imports not yet merged, typed as devices are (no CHECKs: the lines were
-- validated, and devices' own constraints apply at the merge).
CREATE TABLE device_import_rows (
    import               bigint  NOT NULL, -- device_imports.seq
    line                 bigint  NOT NULL,
    id                   text    NOT NULL,
    country              text,
    language             text,
    timezone             text,
    app_version          text,
    app_version_code     integer,
    os_api               text,
    os_version           text,
    custom_user_id       text,
    email                text,
    type                 text,
    first_session        bigint,
    last_session         bigint,
    session_count        integer,
    created_at           bigint,
    push_token           text,
    un_registered_at     bigint,
    device_model         text,
    device_manufacturer  text,
    tags                 text[]  NOT NULL,
    attributes           jsonb   NOT NULL,
    PRIMARY KEY (import, line)
);

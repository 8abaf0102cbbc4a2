-- Evaluation (issue #22): explicit membership, and each segment's last computed size. (Word that a tenant's segments changed reaches
-- the other segmentd processes by polling a fingerprint of them, store/segment_watch.c, not by
-- NOTIFY from a trigger: a notifying commit holds a database-wide lock until it is flushed,
-- which measured 1 200 inserts/s at 16 clients instead of 5 400.)

-- Devices added to or removed from a segment by hand (PATCH …/segments/{id}/members), whatever
-- its rule says: members are (rule matches ∪ added) − removed. `segment` is the segment's id as
-- text: a uuid of /audiences/segments or a seg_ id of /v1/segments (the two never look alike).
-- A device's rows go with it; a segment's go with it (the triggers below).
CREATE TABLE segment_members (
    tenant  text        NOT NULL,
    segment text        NOT NULL,
    device  text        NOT NULL,
    added   boolean     NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, segment, device),
    FOREIGN KEY (tenant, device) REFERENCES devices (tenant, id) ON DELETE CASCADE
);

-- The device → segments lookup and the cascade from devices read by device.
CREATE INDEX segment_members_device_idx ON segment_members (tenant, device);

CREATE FUNCTION segment_members_forget() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM segment_members m USING gone g
    WHERE m.tenant = g.tenant AND m.segment = g.id::text;
    RETURN NULL;
END
$$;

CREATE TRIGGER audience_segments_members_forget AFTER DELETE ON audience_segments
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION segment_members_forget();
CREATE TRIGGER v1_segments_members_forget AFTER DELETE ON v1_segments
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION segment_members_forget();

-- A segment's size as last computed (by a count, or the size refresher for active segments):
-- read-only in the representations as `size`, null until first computed. Writing it changes
-- neither the version nor updated_at: it is the server's reading, not the client's data.
ALTER TABLE audience_segments
    ADD COLUMN size_count     bigint CHECK (size_count >= 0),
    ADD COLUMN size_precision text   CHECK (size_precision IN ('exact', 'estimate')),
    ADD COLUMN size_at        timestamptz;
ALTER TABLE v1_segments
    ADD COLUMN size_count     bigint CHECK (size_count >= 0),
    ADD COLUMN size_precision text   CHECK (size_precision IN ('exact', 'estimate')),
    ADD COLUMN size_at        timestamptz;

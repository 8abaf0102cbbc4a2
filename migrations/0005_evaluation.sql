-- Evaluation (issue #22): explicit membership. (Word that a tenant's segments changed reaches
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

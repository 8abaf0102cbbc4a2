-- History (issue #24): a revision for every change to a segment of either dialect, written by
-- the statement that makes the change (src/store/statements.c), so in its transaction. Kept
-- after the segment is deleted (no foreign key) until SEGMENTD_HISTORY_DAYS have passed.
--
-- `patch` is an RFC 6902 JSON Patch from the segment's document before the change to the one
-- after: its representation as GET answers it without `status` and `size` (computed at read
-- time, and moved by counts, which are not changes), with the end date as stored. A create
-- adds the whole document at the root, a delete replaces the root with {}, an update replaces
-- the top-level members that changed (segment_patch), a member add or remove changes no field
-- ([], with `applied` ids). `version` is the segment's version after the change (a delete's:
-- the version deleted).
--
-- `seq` orders a segment's revisions (the keyset of the pages, newest first). It is drawn from
-- the dialect's own sequence, the one that numbers its segments (`no`, `seq`): a segment's
-- number is then the number of its create, and every later change draws a greater one.
--
-- A create's revision waits on the segment's own row (create_op, create_actor,
-- create_request_id; its time is updated_at, its document the row's) until the first change
-- that writes the row (an update, a renewal, the delete) moves it here, in that change's
-- statement; reads show it from the row meanwhile (unless older than SEGMENTD_HISTORY_DAYS).
-- So a bulk create writes three more columns of the rows it inserts and no second table:
-- measured, a revision row per created segment (its index entry, its JSON) made POST …/bulk of
-- 1000 segments 1.6 to 1.9 times as slow in PostgreSQL, the columns +0 to 10 %. Rows made
-- before this migration have no pending create.

ALTER TABLE audience_segments
    ADD COLUMN create_op         text,  -- 'create' or 'bulk_create' while its revision waits here
    ADD COLUMN create_actor      text,
    ADD COLUMN create_request_id text;
ALTER TABLE v1_segments
    ADD COLUMN create_op         text,
    ADD COLUMN create_actor      text,
    ADD COLUMN create_request_id text;

CREATE TABLE segment_revisions (
    seq        bigint      NOT NULL,  -- from audience_segments_no_seq or v1_segments_seq_seq
    tenant     text        NOT NULL,
    v1         boolean     NOT NULL,  -- the dialect: /v1/segments, else /audiences/segments
    segment    text        NOT NULL,  -- a uuid's text or a seg_ id
    at         timestamptz NOT NULL,
    actor      text,                  -- the token's sub ('segmentd': the sweeper; NULL: no sub)
    request_id text,                  -- NULL: no request (the sweeper)
    operation  text        NOT NULL,
    version    bigint      NOT NULL,
    applied    bigint,                -- members_add, members_remove: the ids applied
    patch      json        NOT NULL,  -- written as built, never read as jsonb
    PRIMARY KEY (tenant, v1, segment, seq)
);

-- The retention purge looks for the oldest rows: revisions are appended roughly in time order
-- (a create's when its segment first changes), so a BRIN index of a few pages finds them and
-- costs a write almost nothing.
CREATE INDEX segment_revisions_at_idx ON segment_revisions USING brin (at);

-- The RFC 6902 patch that turns object `old` into object `new`, member by member: add the
-- members only `new` has, remove those only `old` has, replace those whose values differ
-- (nested objects whole). Keys escaped as RFC 6901 requires (~ and /). PL/pgSQL, not SQL: a SQL
-- function with an aggregate is not inlined, and is planned again at every statement that calls
-- it; PL/pgSQL keeps its plan for the session (measured: a single PATCH's statement took 1.5
-- times as long as before history with the SQL function, 1.3 times with this one).
CREATE FUNCTION segment_patch(old jsonb, new jsonb) RETURNS json
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (SELECT coalesce(json_agg(CASE
               WHEN o.v IS NULL THEN json_build_object('op', 'add', 'path', d.path, 'value', n.v)
               WHEN n.v IS NULL THEN json_build_object('op', 'remove', 'path', d.path)
               ELSE json_build_object('op', 'replace', 'path', d.path, 'value', n.v) END
           ORDER BY d.k), '[]')
    FROM jsonb_each(old) o(k, v) FULL JOIN jsonb_each(new) n(k, v) ON o.k = n.k
    CROSS JOIN LATERAL (SELECT coalesce(o.k, n.k) AS k,
                               '/' || replace(replace(coalesce(o.k, n.k), '~', '~0'), '/', '~1') AS path) d
    WHERE o.v IS DISTINCT FROM n.v);
END
$$;

-- Webhook events (issue #25): what the statements that write the outbox of 0008 need.
--
-- webhook_id(prefix): an event's ("evt_") or a delivery's ("dlv_") id, prefix + 13 base62,
-- made in the statement that writes the row (a bulk of 1000 changes writes 1000 events in
-- one statement, so the ids cannot come from the C side). 13 characters of the base64 of
-- random bytes of two version-4 uuids (only their random bytes: 48 + 32 bits), '+' and '/'
-- replaced by 'P' and 'q': about 77.9 bits. An SQL function with no FROM, so PostgreSQL
-- inlines it (no function call per row).
CREATE FUNCTION webhook_id(prefix text) RETURNS text
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT prefix || translate(left(encode(substring(uuid_send(gen_random_uuid()) FROM 1 FOR 6)
                                           || substring(uuid_send(gen_random_uuid()) FROM 10 FOR 4),
                                           'base64'), 13), '+/', 'Pq')
$$;

-- segment.expired is told once per end date that passes: a segment's status becomes
-- 'expired' by the clock alone (migrations/0002_lifecycle.sql), with no write to carry an
-- event, so the lifecycle sweeper looks for active segments without extend whose end date
-- has passed and differs from expired_end, the end date whose expiry was last told (or found
-- here), and sets it in the statement that writes the event. A write that moves the end date
-- re-arms it; one that leaves it does not. Not a change of the segment: neither its version
-- nor updated_at moves. Segments already expired now are taken as told: no flood of events
-- for expiries that happened before there were webhooks.
ALTER TABLE audience_segments ADD COLUMN expired_end timestamptz;
ALTER TABLE v1_segments ADD COLUMN expired_end timestamptz;
UPDATE audience_segments SET expired_end = end_date WHERE NOT extend AND end_date <= now();
UPDATE v1_segments SET expired_end = end_date WHERE NOT extend AND end_date <= now();

-- The sweeper's expiry pass: the segments whose expiry is yet to be told, oldest end first
-- (a segment leaves the index when its expiry is told, comes back when its end date moves).
CREATE INDEX audience_segments_expire_idx ON audience_segments (end_date)
    WHERE NOT extend AND end_date IS NOT NULL AND expired_end IS DISTINCT FROM end_date;
CREATE INDEX v1_segments_expire_idx ON v1_segments (end_date)
    WHERE NOT extend AND end_date IS NOT NULL AND expired_end IS DISTINCT FROM end_date;

-- The retention purge (the lifecycle sweeper's) looks for the oldest events: they are appended
-- in time order, so a BRIN index of a few pages finds them and costs a write almost nothing.
CREATE INDEX webhook_events_at_idx ON webhook_events USING brin (at);

/* The SQL of segmentd, in one table. A single segment's representation is built by
 * PostgreSQL as JSON text, so a read goes from the row to the socket without being parsed
 * again; a list's rows come as columns that store/list_json.c writes as the same text. */
#include "store/statements.h"

#include <stddef.h>

#include "store/eval_sql.h"
#include "store/statements_webhooks.h"

/* The advisory lock that serialises migrations across processes: "segmentd" in ASCII as a
 * 64-bit key. */
#define MIGRATION_LOCK_KEY "8315166006560322660"

/* The lifecycle as reads show it (migrations/0002_lifecycle.sql): the end date a renewing
 * segment has now, whether or not the sweeper has written it yet, and the status. */
#define END_AT "segment_end_at(s.end_date, s.extend, s.extend_days, now())"
#define STATUS "segment_status(s.active, s.start_date, s.end_date, s.extend, now())"

/* A parameter of microseconds since the Unix epoch as a timestamptz, exactly: whole hours
 * (int) and the seconds left (< 3600, exact in a double), added as time, not days, so that
 * no TimeZone changes it. */
#define TS_US(p)                                                                           \
    "('epoch'::timestamptz + make_interval(hours => div(" p "::bigint, 3600000000)::int, " \
    "secs => mod(" p "::bigint, 3600000000) / 1000000.0))"

/* A field's new value under a mask of *_SET_* bits: the given one, or the stored one. */
#define NEW(mask, bit, given, stored) "CASE WHEN (" mask " & " bit ") <> 0 THEN " given " ELSE " stored " END"

/* The end date a write keeps when it gives none: the one reads show (row r's, renewed). */
#define KEPT_END(r) "segment_end_at(" r ".end_date, " r ".extend, " r ".extend_days, now())"

/* The new lifecycle of row r under mask m, t the given values (start_date, end_date as
 * timestamptz, active, extend, extend_days): each given one, or the stored one. */
#define NEW_START(m, t, r) NEW(m, "256", t ".start_date", r ".start_date")
#define NEW_END(m, t, r) NEW(m, "512", t ".end_date", KEPT_END(r))
#define NEW_EXTEND(m, t, r) NEW(m, "2048", t ".extend", r ".extend")
#define NEW_DAYS(m, t, r) NEW(m, "4096", t ".extend_days", r ".extend_days")

/* A write stores the end date renewed as reads would show it, so that what a client saw is
 * what the rules are checked against and what stays when it changes extend or the dates:
 * an end date in the past with extend true is written renewed (the write's version covers
 * the renewal), and the sweeper renews only rows no write touched while their end passed. */
#define LC_SET(m, t)                                                                        \
    "start_date = " NEW_START(m, t, "s") ", "                                               \
    "end_date = segment_end_at(" NEW_END(m, t, "s") ", " NEW_EXTEND(m, t, "s") ", "           \
    NEW_DAYS(m, t, "s") ", now()), "                                                         \
    "active = " NEW(m, "1024", t ".active", "s.active") ", "                                  \
    "extend = " NEW_EXTEND(m, t, "s") ", extend_days = " NEW_DAYS(m, t, "s") ", "

/* The rule the new values of row r would break, or NULL (segment_dates_problem): a given
 * end date must itself be after the start, a kept one as reads show it. */
#define LC_PROBLEM(m, t, r)                                                                 \
    "segment_dates_problem(" NEW_START(m, t, r) ", " NEW_END(m, t, r) ", " NEW_EXTEND(m, t, r) ")"

#define TS_JSON(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* A segment's size, dropped (null) when a write changes its rule: new_rule is the rule the
 * row gets, old the stored one. */
#define SIZE_KEPT(new_rule, old)                                                              \
    "size_at = CASE WHEN (" new_rule ") IS DISTINCT FROM " old " THEN NULL ELSE s.size_at END, "

/* A segment's last computed size (read-only; null until computed), in each dialect's words. */
#define AUD_SIZE                                                                              \
    "CASE WHEN s.size_at IS NULL THEN NULL ELSE json_build_object('count', s.size_count, "   \
    "'precision', s.size_precision, 'computed_at', " TS_JSON("s.size_at") ") END"
#define V1_SIZE                                                                               \
    "CASE WHEN s.size_at IS NULL THEN NULL ELSE json_build_object('count', s.size_count, "   \
    "'precision', s.size_precision, 'computedAt', floor(extract(epoch FROM s.size_at) * 1000)::bigint) END"

/* The members of row r's representation up to extend_days, in its order, with end as its
 * end date: the representation's own (END_AT), or a revision's document's (the stored one). */
#define AUD_FIELDS(r, end)                                                                   \
    "'id', " r ".id, 'management_type', " r ".management_type, 'name', " r ".name, "         \
    "'no', " r ".no, 'owner_id', " r ".owner_id, 'approximated_size', " r ".approximated_size, " \
    "'created_at', " TS_JSON(r ".created_at") ", "                                          \
    "'deprecated_properties', " r ".deprecated_properties, 'description', " r ".description, " \
    "'properties', " r ".properties, 'updated_at', " TS_JSON(r ".updated_at") ", "           \
    "'start_date', " TS_JSON(r ".start_date") ", 'end_date', " TS_JSON(end) ", "              \
    "'active', " r ".active, 'extend', " r ".extend, 'extend_days', " r ".extend_days"

#define AUD_JSON                                                                            \
    "json_build_object(" AUD_FIELDS("s", END_AT) ", 'status', " STATUS ", 'size', " AUD_SIZE ")::text"

/* A timestamp as whole microseconds since the epoch (bulk creates write it themselves). */
#define US_OF(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

#define MS_JSON(col) "floor(extract(epoch FROM " col ") * 1000)::bigint"

#define V1_FIELDS(r, end)                                                                    \
    "'id', " r ".id, 'name', " r ".name, 'description', " r ".description, "                 \
    "'constraints', " r ".constraints, 'createdAt', " MS_JSON(r ".created_at") ", "           \
    "'updatedAt', " MS_JSON(r ".updated_at") ", 'startDate', " MS_JSON(r ".start_date") ", "  \
    "'endDate', " MS_JSON(end) ", 'active', " r ".active, 'extend', " r ".extend, "           \
    "'extendDays', " r ".extend_days"

#define V1_JSON                                                                        \
    "json_build_object(" V1_FIELDS("s", END_AT) ", 'status', " STATUS ", 'size', " V1_SIZE ")::text"

/* History (migrations/0006_history.sql): every statement that changes a segment writes its
 * revision itself, in a CTE over the rows its DML returned, so in its transaction and with
 * no second statement. The document a patch is about: the representation without status
 * and size, with the end date as stored (reads show a renewed one before the sweeper writes
 * it), as jsonb for segment_patch. A create adds it whole at the root (RFC 6902 4.1), a delete
 * replaces the root with {}. A revision's number comes from the dialect's sequence (REV_SEQ):
 * a segment's own number is its create's. */
#define REV_INSERT                                                                            \
    "INSERT INTO segment_revisions (seq, tenant, v1, segment, at, actor, request_id, operation, " \
    "version, applied, patch) "
#define AUD_REV_SEQ "nextval('audience_segments_no_seq'::regclass)"
#define V1_REV_SEQ "nextval('v1_segments_seq_seq'::regclass)"
#define AUD_DOC(r) "jsonb_build_object(" AUD_FIELDS(r, r ".end_date") ")"
#define V1_DOC(r) "jsonb_build_object(" V1_FIELDS(r, r ".end_date") ")"
#define CREATED(doc) "json_build_array(json_build_object('op', 'add', 'path', '', 'value', " doc "))"
#define DELETED "'[{\"op\": \"replace\", \"path\": \"\", \"value\": {}}]'::json"

/* A create's revision waits on its row (create_op set) until the first change that writes the
 * row moves it to segment_revisions: a bulk create then writes no second table. Of row r, what
 * that change needs (number: the row's own number, no or seq), and its document when pending
 * (doc: row r's). */
#define PENDING(r, number)                                                                   \
    r ".create_op, " r ".create_actor, " r ".create_request_id, " r ".updated_at AS created_at, " \
    r "." number " AS created_seq"
#define PENDING_DOC(r, doc) "CASE WHEN " r ".create_op IS NOT NULL THEN " doc " END AS old_doc"
/* The pending creates of the rows of src (PENDING's columns, old_doc, id), as revisions, then
 * UNION ALL the change's own. */
#define MOVED_CREATE(tenant, v1, src)                                                        \
    "SELECT " src ".created_seq, " tenant ", " v1 ", " src ".id, " src ".created_at, "          \
    src ".create_actor, " src ".create_request_id, " src ".create_op, 1, NULL::bigint, "        \
    CREATED(src ".old_doc::json") " FROM " src " WHERE " src ".create_op IS NOT NULL UNION ALL "

/* The rows an update will change, locked (in id order) and with their documents as they are
 * then, as `old` in its FROM: a row another transaction changed meanwhile is read as that one
 * left it (not as the statement's snapshot has it), so that the patch starts from the
 * document the previous revision ended with. doc is the document of row o. */
#define LOCKED_OLD(table, doc, number, which)                                                \
    "(SELECT o.id, " doc " AS doc, " PENDING("o", number) " FROM " table " o "                  \
    "WHERE o.tenant = $1 AND " which " ORDER BY o.id FOR NO KEY UPDATE) old"
#define OLD_RETURNED                                                                          \
    "old.doc AS old_doc, old.create_op, old.create_actor, old.create_request_id, "           \
    "old.created_at, old.created_seq"

/* The revision CTE of an update (upd: the rows updated, with their id, new version, documents
 * before and after and OLD_RETURNED) and of a delete (del: id, version, old_doc, PENDING). */
#define REVISED(v1, seq, actor, rid, op, version)                                             \
    "rev AS (" REV_INSERT MOVED_CREATE("$1", v1, "upd") "SELECT " seq ", $1, " v1 ", upd.id, " \
    "now(), " actor "::text, " rid "::text, " op "::text, upd." version ", NULL, "              \
    "segment_patch(upd.old_doc, upd.doc) FROM upd) "
#define DELETED_REV(v1, seq, actor, rid, op)                                                  \
    "rev AS (" REV_INSERT MOVED_CREATE("$1", v1, "del") "SELECT " seq ", $1, " v1 ", del.id, " \
    "now(), " actor "::text, " rid "::text, " op ", del.version, NULL, " DELETED " FROM del) "

/* The sweeper's renewal changes the end date and updated_at of row r, no other member. */
#define RENEWED(end, updated, value)                                                          \
    "json_build_array(json_build_object('op', 'replace', 'path', '/" end "', 'value', "        \
    value("r.end_date") "), json_build_object('op', 'replace', 'path', '/" updated "', "      \
    "'value', " value("r.updated_at") "))"

/* A timestamp as microseconds since 2000-01-01 UTC, 16 hex digits (its binary send
 * format): set by no session setting, and cheaper for PostgreSQL than to_char or a numeric
 * extract (callgrind, a page of 21 rows: 635k instructions against 806k and 740k). */
#define TS_HEX(col) "encode(timestamptz_send(" col "), 'hex')"

/* The list columns, read by store/list_json.c in this order. */
#define AUD_COLUMNS                                                                       \
    "s.id, s.management_type, s.name, s.no, s.owner_id, s.approximated_size, "            \
    TS_HEX("s.created_at") ", s.deprecated_properties, s.description, s.properties, "   \
    TS_HEX("s.updated_at") ", " LC_COLUMNS ", " AUD_SIZE "::text"

#define LC_COLUMNS                                                                        \
    TS_HEX("s.start_date") ", " TS_HEX(END_AT) ", s.active, s.extend, s.extend_days, " STATUS

#define V1_COLUMNS                                                                        \
    "s.id, s.name, s.description, s.constraints, " TS_HEX("s.created_at") ", "           \
    TS_HEX("s.updated_at") ", " LC_COLUMNS ", " V1_SIZE "::text, s.seq"

/* The lifecycle members of a bulk record (handlers/bulk_items.c). */
#define LC_RECORD "start_us bigint, end_us bigint, active boolean, extend boolean, extend_days int"

/* The end of a bulk update of table (x: the records, upd: the UPDATE begun before with its
 * SET list; doc the document of its row s, old_doc that of row o; dialect and id_of, a record
 * a's id as the rows have it, for their events): the revisions and events of the rows it
 * updated, which it answers as (id, representation json, NULL), then the rows left as they
 * were because their new dates would break a rule as (id, NULL, rule). */
#define BULK_UPDATE_END(table, v1, seq, number, id, json, doc, old_doc, dialect, id_of)    \
    "create_op = NULL, updated_at = now(), version = s.version + 1 FROM x, "                 \
    LOCKED_OLD(table, old_doc, number, "o.id IN (SELECT x.id FROM x)") " "                  \
    "WHERE s.tenant = $1 AND s.id = x.id AND old.id = x.id "                                 \
    "AND " LC_PROBLEM("x.mask", "x", "s") " IS NULL "                                         \
    "RETURNING " id " AS id, " json " AS body, s.version AS version, " doc " AS doc, "       \
    OLD_RETURNED "), "                                                                       \
    REVISED(v1, seq, "$3", "$4", "'bulk_update'", "version")                                 \
    EVENTS("$1", EV_UPDATED, SEGMENT_DATA(dialect, "upd.body"),                                \
           IN_ITEM_ORDER("upd", "json_array_elements", id_of), "ORDER BY o.ord")              \
    "SELECT id, body, NULL::text FROM upd UNION ALL "                                       \
    "SELECT " id ", NULL, " LC_PROBLEM("x.mask", "x", "s") " FROM " table " s "                \
    "JOIN x ON s.id = x.id WHERE s.tenant = $1 AND " LC_PROBLEM("x.mask", "x", "s") " IS NOT NULL " \
    "AND NOT EXISTS (SELECT 1 FROM upd WHERE upd.id = " id ")"

/* The list filters of the lifecycle: $s text[] of statuses, $a live at (microseconds). */
#define LC_FILTERS(s, a)                                                                   \
    "AND (" s "::text[] IS NULL OR " STATUS " = ANY(" s "::text[])) "                      \
    "AND (" a "::bigint IS NULL OR segment_live_at(s.active, s.start_date, s.created_at, " \
    "s.end_date, s.extend, " TS_US(a) ")) "

/* The sweeper's renewal of up to $1 segments whose end passed (SKIP LOCKED: what another
 * process renews meanwhile is left to it; the WHERE is checked again on the row it locks,
 * so each renewal happens once), with their revisions and their segment.extended events
 * (json: the representation of row s, in dialect's words); it answers how many it renewed. */
#define RENEW(table, v1, seq, number, doc, patch, dialect, json)                           \
    "WITH due AS (SELECT d.tenant, d.id, " PENDING("d", number) ", " PENDING_DOC("d", doc) " " \
    "FROM " table " d WHERE d.extend AND d.end_date <= now() "                              \
    "ORDER BY d.end_date LIMIT $1::int FOR UPDATE SKIP LOCKED), "                           \
    "r AS (UPDATE " table " AS s SET end_date = " END_AT ", create_op = NULL, "             \
    "updated_at = now(), version = s.version + 1 FROM due WHERE s.tenant = due.tenant "    \
    "AND s.id = due.id AND s.extend AND s.end_date <= now() RETURNING s.tenant, "         \
    "s.id::text AS id, s.version, s.end_date, s.updated_at, due.old_doc, due.create_op, "   \
    "due.create_actor, due.create_request_id, due.created_at, due.created_seq, "           \
    IF_ANY_HOOKED(EV_EXTENDED, json) " AS body), "                                          \
    "rev AS (" REV_INSERT MOVED_CREATE("r.tenant", v1, "r") "SELECT " seq ", r.tenant, " v1 ", " \
    "r.id, now(), 'segmentd', NULL, 'extend', r.version, NULL, " patch " FROM r) "           \
    EVENTS("r.tenant", EV_EXTENDED, SEGMENT_DATA(dialect, "r.body"), "r", "ORDER BY r.created_seq") \
    "SELECT count(*) FROM r"

/* A revision r as GET …/history answers it, the same on both dialects (snake_case keys, the
 * time in RFC 3339 as /audiences writes it; the patch in the dialect's own words). */
#define HISTORY_JSON                                                                          \
    "json_build_object('revision', r.seq, 'at', " TS_JSON("r.at") ", 'actor', r.actor, "       \
    "'request_id', r.request_id, 'operation', r.operation, 'version', r.version, "           \
    "'applied', r.applied, 'patch', r.patch)::text"
/* A pending create (PENDING) of row s as a revision, as HISTORY_JSON writes one; fields: the
 * members of its document. */
#define PENDING_JSON(number, fields)                                                          \
    "json_build_object('revision', s." number ", 'at', " TS_JSON("s.updated_at") ", "           \
    "'actor', s.create_actor, 'request_id', s.create_request_id, 'operation', s.create_op, "  \
    "'version', 1, 'applied', NULL, 'patch', " CREATED("json_build_object(" fields ")") ")::text"
/* A page of segment $2's revisions (v1: the dialect; table, the segment of row s: which) with
 * its pending create, if any, unless older than $5 days (SEGMENTD_HISTORY_DAYS; 0: kept), as
 * the purge would have it. */
#define HISTORY_PAGE(v1, table, which, number, fields)                                       \
    "SELECT p.item, p.seq::text, k.known FROM (SELECT EXISTS (SELECT 1 FROM segment_revisions " \
    "WHERE tenant = $1 AND v1 = " v1 " AND segment = $2::text) OR EXISTS (SELECT 1 FROM "      \
    table " s WHERE s.tenant = $1 AND " which ") AS known) k LEFT JOIN LATERAL ("              \
    "SELECT u.item, u.seq FROM (SELECT " HISTORY_JSON " AS item, r.seq FROM segment_revisions r " \
    "WHERE r.tenant = $1 AND r.v1 = " v1 " AND r.segment = $2::text "                           \
    "AND r.seq < coalesce($3::bigint, 9223372036854775807) UNION ALL "                        \
    "SELECT " PENDING_JSON(number, fields) ", s." number " FROM " table " s "                   \
    "WHERE s.tenant = $1 AND " which " AND s.create_op IS NOT NULL "                          \
    "AND s." number " < coalesce($3::bigint, 9223372036854775807) "                           \
    "AND ($5::int = 0 OR s.updated_at >= now() - make_interval(days => $5::int))) u "         \
    "ORDER BY u.seq DESC LIMIT $4::int) p ON true ORDER BY p.seq DESC"

const stmt_def store_statements[STMT__COUNT] = {
    /* $1 statement_timeout (ms), $2 idle_in_transaction_session_timeout (ms) */
    [STMT_SESSION_SETUP] = {NULL,
        "SELECT set_config('statement_timeout', $1, false), "
        "set_config('idle_in_transaction_session_timeout', $2, false), "
        "set_config('TimeZone', 'UTC', false)", 2, LOCKS_NONE, false},
    [STMT_BEGIN] = {NULL, "BEGIN", 0, LOCKS_NONE, false},
    [STMT_COMMIT] = {NULL, "COMMIT", 0, LOCKS_NONE, false},
    [STMT_ROLLBACK] = {NULL, "ROLLBACK", 0, LOCKS_NONE, false},
    /* a transaction begun inside another (store_begin, store_parts_begin): a savepoint */
    [STMT_SAVEPOINT] = {NULL, "SAVEPOINT segmentd_nested", 0, LOCKS_NONE, false},
    [STMT_RELEASE] = {NULL, "RELEASE SAVEPOINT segmentd_nested", 0, LOCKS_NONE, false},
    [STMT_ROLLBACK_TO] = {NULL, "ROLLBACK TO SAVEPOINT segmentd_nested", 0, LOCKS_NONE, false},

    /* migrations (store/migrate.c), on a session of their own; the migrations' own SQL is
     * in migrations/NNNN_name.sql */
    [STMT_MIG_SESSION] = {NULL,
        "SELECT set_config('lock_timeout', '60s', false), "
        "set_config('client_min_messages', 'warning', false)", 0, LOCKS_NONE, false},
    [STMT_MIG_LOCK] = {NULL, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", 0, LOCKS_NONE, false},
    [STMT_MIG_UNLOCK] = {NULL, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")", 0, LOCKS_NONE, false},
    [STMT_MIG_TABLE] = {NULL,
        "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint PRIMARY KEY, "
        "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())", 0, LOCKS_NONE, false},
    [STMT_MIG_APPLIED] = {NULL, "SELECT 1 FROM schema_migrations WHERE version = $1::bigint", 1, LOCKS_NONE, false},
    [STMT_MIG_RECORD] = {NULL, "INSERT INTO schema_migrations (version, name) VALUES ($1::bigint, $2)", 2, LOCKS_NONE, false},

    /* $1 how many at most */
    [STMT_AUD_RENEW] = {NULL, RENEW("audience_segments", "false", AUD_REV_SEQ, "no", AUD_DOC("d"),
                                    RENEWED("end_date", "updated_at", TS_JSON), "audiences", AUD_JSON),
                        1, LOCKS_NONE, false},
    [STMT_V1_RENEW] = {NULL, RENEW("v1_segments", "true", V1_REV_SEQ, "seq", V1_DOC("d"),
                                   RENEWED("endDate", "updatedAt", MS_JSON), "v1", V1_JSON),
                       1, LOCKS_NONE, false},
#include "statements_webhooks.inc"
    /* Up to $2 revisions older than $1 days (SEGMENTD_HISTORY_DAYS), found by the BRIN index
     * on `at` and deleted by their row addresses. */
    [STMT_HISTORY_PURGE] = {NULL,
        "DELETE FROM segment_revisions WHERE ctid = ANY (ARRAY(SELECT ctid FROM segment_revisions "
        "WHERE at < now() - make_interval(days => $1::int) LIMIT $2::int))", 2, LOCKS_NONE, false},
    /* Up to $1 idempotency keys past their expiry (migrations/0007_idempotency.sql). */
    [STMT_IDEM_PURGE] = {NULL,
        "DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(SELECT ctid FROM idempotency_keys "
        "WHERE expires_at <= now() LIMIT $1::int))", 1, LOCKS_NONE, false},

    [STMT_MIGRATION_VERSION] = {"migration_version",
        "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, LOCKS_NONE, false},

    /* $16 the actor, $17 the request id of its revision (pending on the row: PENDING); its
     * event segment.created */
    [STMT_AUD_INSERT] = {"aud_insert",
        "WITH ins AS (INSERT INTO audience_segments AS s (tenant, id, management_type, name, owner_id, "
        "approximated_size, description, properties, deprecated_properties, created_at, updated_at, "
        "start_date, end_date, active, extend, extend_days, create_op, create_actor, create_request_id) "
        "VALUES ($1, $2::uuid, $3, $4, $5::uuid, $6::bigint, $7, coalesce($8::jsonb, '{}'), "
        "coalesce($9::jsonb, '{}'), coalesce($10::timestamptz, now()), now(), "
        TS_US("$11") ", segment_end_at(" TS_US("$12") ", $14::boolean, $15::int, now()), "
        "$13::boolean, $14::boolean, $15::int, 'create', $16::text, $17::text) "
        "RETURNING " AUD_JSON " AS body, s.version) "
        EVENTS("$1", EV_CREATED, SEGMENT_DATA("audiences", "ins.body"), "ins", "")
        "SELECT body, version FROM ins", 17, LOCKS_NONE, false},

    [STMT_AUD_GET] = {"aud_get",
        "SELECT " AUD_JSON ", s.version FROM audience_segments s "
        "WHERE s.tenant = $1 AND s.id = $2::uuid", 2, LOCKS_NONE, false},

    /* One round trip tells apart "no such row" (no result row), "stale If-Match" (a row
     * whose body is NULL) and "the new dates break a rule" (a body NULL, the rule named in
     * column 3): the rules are checked against the stored values the update keeps. $17 the
     * actor, $18 the request id, $19 the operation (of the revision). */
    [STMT_AUD_UPDATE] = {"aud_update",
        "WITH arg AS (SELECT " TS_US("$12") " AS start_date, " TS_US("$13") " AS end_date, "
        "$14::boolean AS active, $15::boolean AS extend, $16::int AS extend_days), "
        "cur AS (SELECT version, start_date, end_date, extend, extend_days FROM audience_segments "
        "WHERE tenant = $1 AND id = $2::uuid), "
        "upd AS (UPDATE audience_segments AS s SET "
        "management_type = CASE WHEN ($3::int & 1) <> 0 THEN $5 ELSE s.management_type END, "
        "name = CASE WHEN ($3::int & 2) <> 0 THEN $6 ELSE s.name END, "
        "owner_id = CASE WHEN ($3::int & 4) <> 0 THEN $7::uuid ELSE s.owner_id END, "
        "approximated_size = CASE WHEN ($3::int & 8) <> 0 THEN $8::bigint ELSE s.approximated_size END, "
        "description = CASE WHEN ($3::int & 16) <> 0 THEN $9 ELSE s.description END, "
        SIZE_KEPT("CASE WHEN ($3::int & 32) <> 0 THEN coalesce($10::jsonb, '{}') ELSE s.properties END", "s.properties")
        "properties = CASE WHEN ($3::int & 32) <> 0 THEN coalesce($10::jsonb, '{}') ELSE s.properties END, "
        "deprecated_properties = CASE WHEN ($3::int & 64) <> 0 THEN coalesce($11::jsonb, '{}') "
        "ELSE s.deprecated_properties END, " LC_SET("$3::int", "arg")
        "create_op = NULL, updated_at = now(), version = s.version + 1 FROM arg, "
        LOCKED_OLD("audience_segments", AUD_DOC("o"), "no", "o.id = $2::uuid") " "
        "WHERE s.tenant = $1 AND s.id = $2::uuid AND s.id = old.id "
        "AND ($4::bigint[] IS NULL OR s.version = ANY($4::bigint[])) "
        "AND " LC_PROBLEM("$3::int", "arg", "s") " IS NULL "
        "RETURNING " AUD_JSON " AS body, s.version AS new_version, " AUD_DOC("s") " AS doc, "
        OLD_RETURNED ", s.id::text AS id), "
        REVISED("false", AUD_REV_SEQ, "$17", "$18", "$19", "new_version")
        EVENTS("$1", EV_UPDATED, SEGMENT_DATA("audiences", "upd.body"), "upd", "")
        "SELECT cur.version, upd.body, upd.new_version, CASE WHEN upd.body IS NULL "
        "AND ($4::bigint[] IS NULL OR cur.version = ANY($4::bigint[])) THEN "
        LC_PROBLEM("$3::int", "arg", "cur") " END "
        "FROM cur CROSS JOIN arg LEFT JOIN upd ON true", 19, LOCKS_AUDIENCE_SEGMENTS, false},

    /* $4 the actor, $5 the request id (of the revision) */
    [STMT_AUD_DELETE] = {"aud_delete",
        "WITH cur AS (SELECT version FROM audience_segments WHERE tenant = $1 AND id = $2::uuid), "
        "del AS (DELETE FROM audience_segments s WHERE s.tenant = $1 AND s.id = $2::uuid "
        "AND ($3::bigint[] IS NULL OR s.version = ANY($3::bigint[])) RETURNING s.id::text AS id, "
        "s.version, " PENDING("s", "no") ", " PENDING_DOC("s", AUD_DOC("s")) ", "
        IF_HOOKED("$1", EV_DELETED, AUD_JSON) " AS body), "
        DELETED_REV("false", AUD_REV_SEQ, "$4", "$5", "'delete'")
        EVENTS("$1", EV_DELETED, SEGMENT_DATA("audiences", "del.body"), "del", "")
        "SELECT cur.version, del.version FROM cur LEFT JOIN del ON true", 5, LOCKS_AUDIENCE_SEGMENTS, false},

    /* Lists return the representation's columns in its order, the timestamps as TS_HEX;
     * store/list_json.c writes each item as AUD_JSON / V1_JSON would. A page of 21 rows
     * costs PostgreSQL a third of the instructions it costs with json_build_object. */
    [STMT_AUD_LIST] = {"aud_list",
        "SELECT " AUD_COLUMNS " FROM audience_segments s WHERE s.tenant = $1 "
        "AND ($2::bigint IS NULL OR s.no < $2::bigint) "
        "AND ($3::uuid IS NULL OR s.owner_id = $3::uuid) "
        "AND ($4::text IS NULL OR s.management_type = $4) "
        "AND ($5::text IS NULL OR strpos(lower(s.name), lower($5)) > 0) "
        "AND ($6::jsonb IS NULL OR s.properties @> $6::jsonb "
        "     OR ($7::jsonb IS NOT NULL AND s.properties @> $7::jsonb)) "
        "AND ($8::timestamptz IS NULL OR s.updated_at >= $8::timestamptz) "
        LC_FILTERS("$10", "$11")
        "ORDER BY s.no DESC LIMIT $9::int", 11, LOCKS_NONE, false},

    /* A list without filters: its own statement, so that PostgreSQL keeps one generic
     * plan (the backward scan of (tenant, no)) instead of planning every execution as it
     * must for the optional filters above. LIMIT (SELECT $3) hides the page size from the
     * planner in custom plans too, so they cost what the generic plan costs and the plan
     * cache keeps the generic one after five executions. */
    [STMT_AUD_PAGE] = {"aud_page",
        "SELECT " AUD_COLUMNS " FROM audience_segments s WHERE s.tenant = $1 "
        "AND s.no < coalesce($2::bigint, 9223372036854775807) "
        "ORDER BY s.no DESC LIMIT (SELECT $3::int)", 3, LOCKS_NONE, false},

    [STMT_V1_INSERT] = {"v1_insert", /* $11, $12: as aud_insert's $16, $17 */
        "WITH ins AS (INSERT INTO v1_segments AS s (tenant, id, name, description, constraints, "
        "start_date, end_date, active, extend, extend_days, create_op, create_actor, create_request_id) "
        "VALUES ($1, $2, $3, $4, $5::jsonb, " TS_US("$6") ", segment_end_at(" TS_US("$7") ", "
        "$9::boolean, $10::int, now()), $8::boolean, $9::boolean, $10::int, 'create', $11::text, "
        "$12::text) RETURNING " V1_JSON " AS body, s.version) "
        EVENTS("$1", EV_CREATED, SEGMENT_DATA("v1", "ins.body"), "ins", "")
        "SELECT body, version FROM ins", 12, LOCKS_NONE, false},

    [STMT_V1_GET] = {"v1_get",
        "SELECT " V1_JSON ", s.version FROM v1_segments s WHERE s.tenant = $1 AND s.id = $2", 2, LOCKS_NONE, false},

    /* $13 the actor, $14 the request id, $15 the operation */
    [STMT_V1_UPDATE] = {"v1_update",
        "WITH arg AS (SELECT " TS_US("$8") " AS start_date, " TS_US("$9") " AS end_date, "
        "$10::boolean AS active, $11::boolean AS extend, $12::int AS extend_days), "
        "cur AS (SELECT version, start_date, end_date, extend, extend_days FROM v1_segments "
        "WHERE tenant = $1 AND id = $2), "
        "upd AS (UPDATE v1_segments AS s SET "
        "name = CASE WHEN ($3::int & 1) <> 0 THEN $5 ELSE s.name END, "
        "description = CASE WHEN ($3::int & 2) <> 0 THEN $6 ELSE s.description END, "
        SIZE_KEPT("CASE WHEN ($3::int & 4) <> 0 THEN $7::jsonb ELSE s.constraints END", "s.constraints")
        "constraints = CASE WHEN ($3::int & 4) <> 0 THEN $7::jsonb ELSE s.constraints END, "
        LC_SET("$3::int", "arg")
        "create_op = NULL, updated_at = now(), version = s.version + 1 FROM arg, "
        LOCKED_OLD("v1_segments", V1_DOC("o"), "seq", "o.id = $2") " "
        "WHERE s.tenant = $1 AND s.id = $2 AND s.id = old.id "
        "AND ($4::bigint[] IS NULL OR s.version = ANY($4::bigint[])) "
        "AND " LC_PROBLEM("$3::int", "arg", "s") " IS NULL "
        "RETURNING " V1_JSON " AS body, s.version AS new_version, " V1_DOC("s") " AS doc, "
        OLD_RETURNED ", s.id AS id), "
        REVISED("true", V1_REV_SEQ, "$13", "$14", "$15", "new_version")
        EVENTS("$1", EV_UPDATED, SEGMENT_DATA("v1", "upd.body"), "upd", "")
        "SELECT cur.version, upd.body, upd.new_version, CASE WHEN upd.body IS NULL "
        "AND ($4::bigint[] IS NULL OR cur.version = ANY($4::bigint[])) THEN "
        LC_PROBLEM("$3::int", "arg", "cur") " END "
        "FROM cur CROSS JOIN arg LEFT JOIN upd ON true", 15, LOCKS_V1_SEGMENTS, false},

    [STMT_V1_DELETE] = {"v1_delete", /* $4, $5 as aud_delete's */
        "WITH cur AS (SELECT version FROM v1_segments WHERE tenant = $1 AND id = $2), "
        "del AS (DELETE FROM v1_segments s WHERE s.tenant = $1 AND s.id = $2 "
        "AND ($3::bigint[] IS NULL OR s.version = ANY($3::bigint[])) RETURNING s.id, s.version, "
        PENDING("s", "seq") ", " PENDING_DOC("s", V1_DOC("s")) ", "
        IF_HOOKED("$1", EV_DELETED, V1_JSON) " AS body), "
        DELETED_REV("true", V1_REV_SEQ, "$4", "$5", "'delete'")
        EVENTS("$1", EV_DELETED, SEGMENT_DATA("v1", "del.body"), "del", "")
        "SELECT cur.version, del.version FROM cur LEFT JOIN del ON true", 5, LOCKS_V1_SEGMENTS, false},

    [STMT_V1_LIST] = {"v1_list",
        "SELECT " V1_COLUMNS " FROM v1_segments s WHERE s.tenant = $1 "
        "AND ($2::bigint IS NULL OR s.seq < $2::bigint) "
        "AND ($3::text IS NULL OR strpos(lower(s.name), lower($3)) > 0) "
        LC_FILTERS("$5", "$6")
        "ORDER BY s.seq DESC LIMIT $4::int", 6, LOCKS_NONE, false},

    [STMT_V1_PAGE] = {"v1_page",
        "SELECT " V1_COLUMNS " FROM v1_segments s WHERE s.tenant = $1 "
        "AND s.seq < coalesce($2::bigint, 9223372036854775807) "
        "ORDER BY s.seq DESC LIMIT (SELECT $3::int)", 3, LOCKS_NONE, false},

    /* Bulk: one statement for the whole request (for creates: for each part of it), $3
     * the actor and $4 the request id of its revisions. $2 is a JSON array of records built by handlers/bulk.c, read as json, not jsonb: the
     * text is read as it comes, with no jsonb value built first (1000 creates: 28.9 ->
     * 27.7 ms median in an interleaved A/B); column 0 is the id, column 1 the representation, except for
     * /audiences/segments creates, whose answer the handler writes from its records and
     * what PostgreSQL made (no, the two documents as jsonb text, the timestamps): the
     * statement costs ~7 ms less for 1000 rows without json_build_object and to_char. */
    [STMT_AUD_BULK_INSERT] = {"aud_bulk_insert",
        "WITH ins AS (INSERT INTO audience_segments AS s (tenant, id, management_type, name, owner_id, "
        "approximated_size, description, properties, deprecated_properties, created_at, updated_at, "
        "start_date, end_date, active, extend, extend_days, create_op, create_actor, create_request_id) "
        "SELECT $1, x.id, x.management_type, x.name, x.owner_id, x.approximated_size, x.description, "
        "coalesce(x.properties, '{}'), coalesce(x.deprecated_properties, '{}'), "
        "coalesce(x.created_at, now()), now(), " TS_US("x.start_us") ", "
        "segment_end_at(" TS_US("x.end_us") ", x.extend, x.extend_days, now()), "
        "x.active, x.extend, x.extend_days, 'bulk_create', $3::text, $4::text "
        "FROM ROWS FROM (json_to_recordset($2::json) AS (id uuid, management_type text, name text, "
        "owner_id uuid, approximated_size bigint, description text, properties jsonb, "
        "deprecated_properties jsonb, created_at timestamptz, " LC_RECORD ")) WITH ORDINALITY "
        "AS x(id, management_type, name, owner_id, approximated_size, description, properties, "
        "deprecated_properties, created_at, start_us, end_us, active, extend, extend_days, ord) "
        "ORDER BY x.ord "
        "RETURNING s.id::text AS id, s.no, s.properties::text AS properties, "
        "s.deprecated_properties::text AS deprecated_properties, " US_OF("s.created_at") " AS created_us, "
        US_OF("s.updated_at") " AS updated_us, " US_OF("s.start_date") " AS start_us, "
        US_OF(END_AT) " AS end_us, s.active, s.extend, s.extend_days, " STATUS " AS status, "
        IF_HOOKED("$1", EV_CREATED, AUD_JSON) " AS body) "
        EVENTS("$1", EV_CREATED, SEGMENT_DATA("audiences", "ins.body"), "ins", "ORDER BY ins.no")
        "SELECT id, no, properties, deprecated_properties, created_us, updated_us, start_us, "
        "end_us, active, extend, extend_days, status FROM ins", 4, LOCKS_NONE, true},

    /* Updates answer (id, representation, NULL) for each row updated, and (id, NULL, rule)
     * for each whose new dates would break a lifecycle rule against its stored values. */
    [STMT_AUD_BULK_UPDATE] = {"aud_bulk_update",
        "WITH x AS (SELECT r.*, " TS_US("r.start_us") " AS start_date, " TS_US("r.end_us") " AS end_date "
        "FROM json_to_recordset($2::json) AS r(id uuid, mask int, management_type text, name text, "
        "owner_id uuid, approximated_size bigint, description text, properties jsonb, "
        "deprecated_properties jsonb, " LC_RECORD ")), "
        "upd AS (UPDATE audience_segments AS s SET "
        "management_type = CASE WHEN (x.mask & 1) <> 0 THEN x.management_type ELSE s.management_type END, "
        "name = CASE WHEN (x.mask & 2) <> 0 THEN x.name ELSE s.name END, "
        "owner_id = CASE WHEN (x.mask & 4) <> 0 THEN x.owner_id ELSE s.owner_id END, "
        "approximated_size = CASE WHEN (x.mask & 8) <> 0 THEN x.approximated_size ELSE s.approximated_size END, "
        "description = CASE WHEN (x.mask & 16) <> 0 THEN x.description ELSE s.description END, "
        SIZE_KEPT("CASE WHEN (x.mask & 32) <> 0 THEN coalesce(x.properties, '{}') ELSE s.properties END", "s.properties")
        "properties = CASE WHEN (x.mask & 32) <> 0 THEN coalesce(x.properties, '{}') ELSE s.properties END, "
        "deprecated_properties = CASE WHEN (x.mask & 64) <> 0 THEN coalesce(x.deprecated_properties, '{}') "
        "ELSE s.deprecated_properties END, " LC_SET("x.mask", "x")
        BULK_UPDATE_END("audience_segments", "false", AUD_REV_SEQ, "no", "s.id::text", AUD_JSON,
                        AUD_DOC("s"), AUD_DOC("o"), "audiences", "(a.v->>'id')::uuid::text"), 4,
        LOCKS_NONE, true},

    [STMT_AUD_BULK_DELETE] = {"aud_bulk_delete",
        "WITH del AS (DELETE FROM audience_segments s WHERE s.tenant = $1 "
        "AND s.id IN (SELECT json_array_elements_text($2::json)::uuid) "
        "RETURNING s.id::text AS id, s.version, " PENDING("s", "no") ", "
        PENDING_DOC("s", AUD_DOC("s")) ", " IF_HOOKED("$1", EV_DELETED, AUD_JSON) " AS body), "
        DELETED_REV("false", AUD_REV_SEQ, "$3", "$4", "'bulk_delete'")
        EVENTS("$1", EV_DELETED, SEGMENT_DATA("audiences", "del.body"),
               IN_ITEM_ORDER("del", "json_array_elements_text", "a.v::uuid::text"), "ORDER BY o.ord")
        "SELECT del.id, json_build_object('id', del.id)::text FROM del", 4, LOCKS_NONE, true},

    [STMT_V1_BULK_INSERT] = {"v1_bulk_insert",
        "WITH ins AS (INSERT INTO v1_segments AS s (tenant, id, name, description, constraints, "
        "start_date, end_date, active, extend, extend_days, create_op, create_actor, create_request_id) "
        "SELECT $1, x.id, x.name, x.description, x.constraints, " TS_US("x.start_us") ", "
        "segment_end_at(" TS_US("x.end_us") ", x.extend, x.extend_days, now()), x.active, x.extend, "
        "x.extend_days, 'bulk_create', $3::text, $4::text "
        "FROM ROWS FROM (json_to_recordset($2::json) AS (id text, name text, description text, "
        "constraints jsonb, " LC_RECORD ")) WITH ORDINALITY AS x(id, name, description, constraints, "
        "start_us, end_us, active, extend, extend_days, ord) "
        "ORDER BY x.ord RETURNING s.id, " V1_JSON " AS body, s.seq) "
        EVENTS("$1", EV_CREATED, SEGMENT_DATA("v1", "ins.body"), "ins", "ORDER BY ins.seq")
        "SELECT id, body FROM ins", 4, LOCKS_NONE, true},

    [STMT_V1_BULK_UPDATE] = {"v1_bulk_update",
        "WITH x AS (SELECT r.*, " TS_US("r.start_us") " AS start_date, " TS_US("r.end_us") " AS end_date "
        "FROM json_to_recordset($2::json) AS r(id text, mask int, name text, description text, "
        "constraints jsonb, " LC_RECORD ")), "
        "upd AS (UPDATE v1_segments AS s SET "
        "name = CASE WHEN (x.mask & 1) <> 0 THEN x.name ELSE s.name END, "
        "description = CASE WHEN (x.mask & 2) <> 0 THEN x.description ELSE s.description END, "
        SIZE_KEPT("CASE WHEN (x.mask & 4) <> 0 THEN x.constraints ELSE s.constraints END", "s.constraints")
        "constraints = CASE WHEN (x.mask & 4) <> 0 THEN x.constraints ELSE s.constraints END, "
        LC_SET("x.mask", "x")
        BULK_UPDATE_END("v1_segments", "true", V1_REV_SEQ, "seq", "s.id", V1_JSON, V1_DOC("s"),
                        V1_DOC("o"), "v1", "a.v->>'id'"), 4, LOCKS_NONE, true},

    [STMT_V1_BULK_DELETE] = {"v1_bulk_delete",
        "WITH del AS (DELETE FROM v1_segments s WHERE s.tenant = $1 "
        "AND s.id IN (SELECT json_array_elements_text($2::json)) RETURNING s.id, s.version, "
        PENDING("s", "seq") ", " PENDING_DOC("s", V1_DOC("s")) ", "
        IF_HOOKED("$1", EV_DELETED, V1_JSON) " AS body), "
        DELETED_REV("true", V1_REV_SEQ, "$3", "$4", "'bulk_delete'")
        EVENTS("$1", EV_DELETED, SEGMENT_DATA("v1", "del.body"),
               IN_ITEM_ORDER("del", "json_array_elements_text", "a.v"), "ORDER BY o.ord")
        "SELECT del.id, json_build_object('id', del.id)::text FROM del", 4, LOCKS_NONE, true},
    /* A segment's history (store/history.c): $2 the segment's id as text, its revisions newest
     * first before the cursor ($3, a seq), $4 at most ($5 the retention in days), as
     * (item, seq, known); when none is
     * left, one row (NULL, NULL, known): known tells a segment that exists or has revisions
     * from one that never had either (404). */
    [STMT_HISTORY_AUD] = {"history_aud",
        HISTORY_PAGE("false", "audience_segments", "s.id = $2::text::uuid", "no",
                     AUD_FIELDS("s", "s.end_date")),
        5, LOCKS_NONE, false},
    [STMT_HISTORY_V1] = {"history_v1",
        HISTORY_PAGE("true", "v1_segments", "s.id = $2::text", "seq", V1_FIELDS("s", "s.end_date")),
        5, LOCKS_NONE, false},
#include "statements_idempotency.inc"
#include "statements_devices.inc"
#include "statements_eval.inc"
#include "statements_webhooks_api.inc"
};

const char store_device_json_sql[] = DEVICE_JSON;

bool stmt_writes_segments(stmt_id id)
{
    switch (id) {
    case STMT_AUD_INSERT: case STMT_AUD_UPDATE: case STMT_AUD_DELETE:
    case STMT_AUD_BULK_INSERT: case STMT_AUD_BULK_UPDATE: case STMT_AUD_BULK_DELETE:
    case STMT_V1_INSERT: case STMT_V1_UPDATE: case STMT_V1_DELETE:
    case STMT_V1_BULK_INSERT: case STMT_V1_BULK_UPDATE: case STMT_V1_BULK_DELETE:
        return true;
    default:
        return false;
    }
}

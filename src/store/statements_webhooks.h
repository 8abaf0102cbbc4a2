/* The outbox of webhooks as the statements of store/statements.c write it (issue #25;
 * migrations/0008_webhooks.sql, 0009_webhook_events.sql): macros for the CTEs that a
 * statement which changes a segment or finishes an import adds after its own, so that its
 * events and their deliveries are written in its transaction, by the same statement, as its
 * revisions are. */
#ifndef SEGMENTD_STORE_STATEMENTS_WEBHOOKS_H
#define SEGMENTD_STORE_STATEMENTS_WEBHOOKS_H

/* The event types, as SQL literals. */
#define EV_CREATED "'segment.created'"
#define EV_UPDATED "'segment.updated'"
#define EV_DELETED "'segment.deleted'"
#define EV_EXTENDED "'segment.extended'"
#define EV_EXPIRED "'segment.expired'"
#define EV_IMPORT_FINISHED "'device.import.finished'"
#define EV_SIZE_CHANGED "'segment.size.changed'"

/* Whether tenant t has a subscription to event type ty. With t a parameter ($1) it refers to
 * no row of the statement: PostgreSQL runs it once, as an InitPlan (a probe of the primary key
 * of webhooks), and when it is false a One-Time Filter skips the plan below it, so a tenant
 * without webhooks pays one probe a statement, whatever the number of rows. */
#define HOOKED(t, ty) "EXISTS (SELECT 1 FROM webhooks w WHERE w.tenant = " t " AND " ty " = ANY (w.events))"

/* expr when tenant t has a subscription to ty, else NULL: a representation that only an event
 * needs (a delete's, a bulk create's) is built only then. */
#define IF_HOOKED(t, ty, expr) "CASE WHEN " HOOKED(t, ty) " THEN " expr " END"

/* expr when any tenant has a subscription to ty: for the background statements that change
 * segments of every tenant at once (the sweeper's). */
#define IF_ANY_HOOKED(ty, expr)                                                               \
    "CASE WHEN EXISTS (SELECT 1 FROM webhooks w WHERE " ty " = ANY (w.events)) THEN " expr " END"

/* The events of type ty told by the rows of src (t: their tenant; data: a row's payload data,
 * jsonb; order: an ORDER BY, the order of their seq, or ""), written when the tenant has a
 * subscription to ty, and one pending delivery per such subscription, in event order. Two CTEs
 * that follow the statement's own (the comma first): ev, dl. */
#define EVENTS(t, ty, data, src, order)                                                        \
    ", ev AS (INSERT INTO webhook_events AS e (tenant, id, type, data) SELECT " t ", "          \
    "webhook_id('evt_'), " ty ", " data " FROM " src " WHERE " HOOKED(t, ty) " " order " "     \
    "RETURNING e.tenant, e.id, e.type, e.seq), "                                               \
    "dl AS (INSERT INTO webhook_deliveries (tenant, id, webhook, event) SELECT ev.tenant, "    \
    "webhook_id('dlv_'), w.id, ev.id FROM ev JOIN webhooks w ON w.tenant = ev.tenant "         \
    "AND ev.type = ANY (w.events) ORDER BY ev.seq, w.id) "

/* A segment event's data: the dialect ('v1' or 'audiences') and the representation (text of
 * JSON, as GET …/{id} answers it). */
#define SEGMENT_DATA(dialect, json) "jsonb_build_object('dialect', '" dialect "', 'segment', (" json ")::jsonb)"

/* The position in a bulk's JSON array $2 of each id it names (the first), for the events of
 * the rows a bulk update or delete wrote: joined to src on src.id, so that they come in the
 * order of the request's items. elems: json_array_elements (records with "id") or
 * json_array_elements_text (ids); id_of: a's id as the text src has it. */
#define IN_ITEM_ORDER(src, elems, id_of)                                                       \
    src " JOIN (SELECT " id_of " AS id, min(a.ord) AS ord FROM " elems "($2::json) "           \
    "WITH ORDINALITY a(v, ord) GROUP BY 1) o ON o.id = " src ".id"

#endif

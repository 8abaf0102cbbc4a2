/* Every SQL statement segmentd runs, by id: the table, with what the store needs to know
 * of each (prepared or not, the rows it locks, whether it runs alone). */
#ifndef SEGMENTD_STORE_STATEMENTS_H
#define SEGMENTD_STORE_STATEMENTS_H

#include <stdbool.h>

typedef enum stmt_id {
    /* utility statements: sent as text (they cannot be prepared, or run before preparing) */
    STMT_SESSION_SETUP,
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_SAVEPOINT,
    STMT_RELEASE,
    STMT_ROLLBACK_TO,
    STMT_MIG_SESSION,
    STMT_MIG_LOCK,
    STMT_MIG_UNLOCK,
    STMT_MIG_TABLE,
    STMT_MIG_APPLIED,
    STMT_MIG_RECORD,
    /* the lifecycle sweeper's (store/sweeper.c), on its own session */
    STMT_AUD_RENEW,
    STMT_V1_RENEW,
    STMT_AUD_EXPIRE,
    STMT_V1_EXPIRE,
    STMT_HISTORY_PURGE,
    STMT_IDEM_PURGE,
    STMT_WEBHOOK_PURGE,
    /* device imports (store/imports.c, store/import_merge.c), on sessions of their own */
    STMT_IMPORT_CREATE,
    STMT_IMPORT_COPY,
    STMT_IMPORT_PROGRESS,
    STMT_IMPORT_RECEIVED,
    STMT_IMPORT_FAIL,
    STMT_IMPORT_UNLOCK,
    STMT_IMPORT_MERGE_SETUP,
    STMT_IMPORT_OPEN,
    STMT_IMPORT_TRY_LOCK,
    STMT_IMPORT_STATE,
    STMT_IMPORT_MERGE,
    STMT_IMPORT_PURGE,
    /* the size refresher's (store/size_refresher.c), on its own session */
    STMT_SIZE_DUE,
    STMT_SIZE_LOCK,
    STMT_SIZE_UNLOCK,
    /* the segment watch's (store/segment_watch.c), on its own session */
    STMT_WATCH_FINGERPRINTS,
    /* prepared on every new session */
    STMT_MIGRATION_VERSION,
    STMT_AUD_INSERT,
    STMT_AUD_GET,
    STMT_AUD_UPDATE,
    STMT_AUD_DELETE,
    STMT_AUD_LIST,
    STMT_AUD_PAGE,
    STMT_V1_INSERT,
    STMT_V1_GET,
    STMT_V1_UPDATE,
    STMT_V1_DELETE,
    STMT_V1_LIST,
    STMT_V1_PAGE,
    STMT_AUD_BULK_INSERT,
    STMT_AUD_BULK_UPDATE,
    STMT_AUD_BULK_DELETE,
    STMT_V1_BULK_INSERT,
    STMT_V1_BULK_UPDATE,
    STMT_V1_BULK_DELETE,
    STMT_DEVICE_PUT,
    STMT_DEVICE_GET,
    STMT_DEVICE_DELETE,
    STMT_DEVICE_LIST,
    STMT_DEVICE_BULK_UPSERT,
    STMT_DEVICE_BULK_DELETE,
    STMT_IMPORT_GET,
    STMT_IMPORT_LIST,
    STMT_EVAL_AUD_RULE,
    STMT_EVAL_V1_RULE,
    STMT_EVAL_AUD_CHECK,
    STMT_EVAL_V1_CHECK,
    STMT_EVAL_DEVICE,
    STMT_EVAL_RULES,
    STMT_MEMBERS_AUD,
    STMT_MEMBERS_V1,
    STMT_SIZE_AUD,
    STMT_SIZE_V1,
    STMT_HISTORY_AUD,
    STMT_HISTORY_V1,
    STMT_IDEM_LOCK,
    STMT_IDEM_FIND,
    STMT_IDEM_KEEP,
    STMT_IMPORT_KEY_LOCK,
    STMT_IMPORT_KEY_FIND,
    STMT_IMPORT_KEY_SAVE,
    STMT_IMPORT_KEY_UNLOCK,
    STMT_IDEM_SAVE,
    /* webhook subscriptions and their delivery log (store/webhooks.c); the delivery worker's,
     * on its own session (store/webhook_queue.c): statements_webhooks_api.inc */
    STMT_WEBHOOK_CREATE,
    STMT_WEBHOOK_GET,
    STMT_WEBHOOK_LIST,
    STMT_WEBHOOK_DELETE,
    STMT_WEBHOOK_ROTATE,
    STMT_WEBHOOK_DELIVERIES,
    STMT_WEBHOOK_RETRY,
    STMT_WEBHOOK_CLAIM,
    STMT_WEBHOOK_RECORD,
    STMT_WEBHOOK_RELEASE,
    STMT_WEBHOOK_PENDING,
    STMT__COUNT
} stmt_id;

/* Tables whose rows a statement locks by ($1 tenant, $2 id) until its transaction ends;
 * a batch sends such writes in the order (table, tenant, id), so that two batches never
 * wait on each other's locks (store/batch.c). */
typedef enum { LOCKS_NONE = 0, LOCKS_AUDIENCE_SEGMENTS, LOCKS_V1_SEGMENTS, LOCKS_DEVICES } stmt_locks;

typedef struct stmt_def {
    const char *name;   /* prepared statement name; NULL: a utility statement sent as text */
    const char *sql;
    int nparams;
    stmt_locks locks;   /* the existing row it locks, if any */
    bool alone;         /* moves up to megabytes: runs on a session of its own, not batched */
} stmt_def;

extern const stmt_def store_statements[STMT__COUNT];

/* A device row d's representation (as GET /v1/devices/{id} answers it), as SQL: for the
 * statements store/ builds around a rule (a member export's whole devices). */
extern const char store_device_json_sql[];

/* Whether the statement writes segments of tenant $1 (the lookup's copies of them are then
 * dropped: store_on_segments_changed). */
bool stmt_writes_segments(stmt_id id);

#endif

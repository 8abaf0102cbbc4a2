/* Every SQL statement segmentd runs, by id; prepared on each new connection. */
#ifndef SEGMENTD_STORE_STATEMENTS_H
#define SEGMENTD_STORE_STATEMENTS_H

typedef enum stmt_id {
    STMT_MIGRATION_VERSION,
    STMT_AUD_INSERT,
    STMT_AUD_GET,
    STMT_AUD_UPDATE,
    STMT_AUD_DELETE,
    STMT_AUD_LIST,
    STMT_V1_INSERT,
    STMT_V1_GET,
    STMT_V1_UPDATE,
    STMT_V1_DELETE,
    STMT_V1_LIST,
    STMT_AUD_BULK_INSERT,
    STMT_AUD_BULK_UPDATE,
    STMT_AUD_BULK_DELETE,
    STMT_V1_BULK_INSERT,
    STMT_V1_BULK_UPDATE,
    STMT_V1_BULK_DELETE,
    STMT__COUNT
} stmt_id;

typedef struct stmt_def {
    const char *name;
    const char *sql;
    int nparams;
} stmt_def;

extern const stmt_def store_statements[STMT__COUNT];

/* Bits of the partial-update mask ($3 of the *_UPDATE statements). */
enum {
    AUD_SET_MANAGEMENT_TYPE = 1, AUD_SET_NAME = 2, AUD_SET_OWNER_ID = 4, AUD_SET_SIZE = 8,
    AUD_SET_DESCRIPTION = 16, AUD_SET_PROPERTIES = 32, AUD_SET_DEPRECATED = 64,
    AUD_SET_ALL = 127
};
enum { V1_SET_NAME = 1, V1_SET_DESCRIPTION = 2, V1_SET_CONSTRAINTS = 4 };

#endif

/* SQLSTATE → HTTP status and problem code, by PostgreSQL's error classes (errcodes appendix). */
#include "store/sqlstate.h"

#include <string.h>

static void unavailable(seg_error *err, const char *code, const char *detail)
{
    err_set(err, 503, code, "%s", detail);
    err->retry_after = 1;
}

bool store_sqlstate_map(const char *state, bool session_lost, seg_error *err)
{
    /* class 08: connection exception; 57P: the server shutting down or restarting */
    if (session_lost || !state || !strncmp(state, "08", 2) || !strncmp(state, "57P", 3)) {
        unavailable(err, "database_unavailable", "the database connection was lost; retry shortly");
        return true;
    }
    if (!strcmp(state, "57014")) /* query_canceled: statement_timeout */
        unavailable(err, "database_timeout", "the database did not answer in time; retry shortly");
    else if (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strncmp(state, "53", 2) ||
             !strcmp(state, "55P03")) /* serialization, deadlock, resources, lock_not_available */
        unavailable(err, "database_busy", "the database is busy; retry shortly");
    else if (!strcmp(state, "23505")) /* unique_violation */
        err_set(err, 409, "conflict", "a segment with this id already exists");
    else if (!strncmp(state, "22", 2) || !strncmp(state, "23", 2)) /* data exception, integrity */
        err_set(err, 422, "rejected_by_database", "the database refused a value: %s",
                state[1] == '2' ? "out of range or malformed" : "constraint violated");
    else
        err_set(err, 500, "internal", "the database reported an unexpected error");
    return false;
}

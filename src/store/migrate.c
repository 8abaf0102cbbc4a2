/* The migration runner: numbered plain-SQL files applied in order, each in its own
 * transaction, recorded in schema_migrations, under a session advisory lock so that
 * instances starting together never race. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "store/store.h"
#include "store/session.h"

#define MAX_MIGRATIONS 512

typedef struct migration {
    long long version;
    char file[256];
} migration;

static int cmp_migration(const void *a, const void *b)
{
    long long x = ((const migration *)a)->version, y = ((const migration *)b)->version;
    return (x > y) - (x < y);
}

/* Lists NNNN_name.sql files, sorted by version. Returns the count or -1. */
static int list_migrations(const char *dir, migration *out, int cap, seg_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d) {
        err_startup(err, "migrate", "SEGMENTD_MIGRATIONS_DIR: cannot open \"%s\"", dir);
        return -1;
    }
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        char *end;
        long long v;
        if (len < 6 || strcmp(e->d_name + len - 4, ".sql") != 0)
            continue;
        v = strtoll(e->d_name, &end, 10);
        if (end == e->d_name || *end != '_' || v <= 0)
            continue;
        if (n == cap || len >= sizeof out[0].file) {
            closedir(d);
            err_startup(err, "migrate", "too many migrations or a file name too long in \"%s\"", dir);
            return -1;
        }
        out[n].version = v;
        memcpy(out[n].file, e->d_name, len + 1);
        n++;
    }
    closedir(d);
    qsort(out, (size_t)n, sizeof *out, cmp_migration);
    for (int i = 1; i < n; i++)
        if (out[i].version == out[i - 1].version) {
            err_startup(err, "migrate", "two migrations have version %lld", out[i].version);
            return -1;
        }
    return n;
}

long long store_migrations_expected(const seg_config *cfg)
{
    static migration list[MAX_MIGRATIONS];
    seg_error err;
    err_clear(&err);
    int n = list_migrations(cfg->migrations_dir, list, MAX_MIGRATIONS, &err);
    return n > 0 ? list[n - 1].version : 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    long size;
    char *buf;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        fclose(f);
        return NULL;
    }
    buf = malloc((size_t)size + 1);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[size] = '\0';
    fclose(f);
    return buf;
}

/* Runs a statement of the table (id >= 0) or a migration file's text (sql) on pg. */
static int run(PGconn *pg, int id, const char *sql, const char *const *params, seg_error *err,
               const char *what)
{
    PGresult *r = id >= 0 ? session_run(pg, (stmt_id)id, params) : PQexec(pg, sql);
    if (!session_result_ok(r)) {
        err_startup(err, "migrate", "%s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(pg));
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

int store_migrate(const seg_config *cfg, seg_error *err)
{
    static migration list[MAX_MIGRATIONS];
    PGconn *pg = NULL;
    int n, applied = 0, rc = -1;
    bool locked = false;

    n = list_migrations(cfg->migrations_dir, list, MAX_MIGRATIONS, err);
    if (n < 0)
        return -1;
    /* PostgreSQL may still be starting (compose, CI): retry the connection ~15 s. */
    for (int attempt = 0; attempt < 30; attempt++) {
        pg = store_connect_raw(cfg);
        if (pg && PQstatus(pg) == CONNECTION_OK)
            break;
        if (attempt == 29) {
            err_startup(err, "migrate", "SEGMENTD_DATABASE_URL: cannot connect: %s",
                    pg ? PQerrorMessage(pg) : "out of memory");
            goto done;
        }
        if (pg)
            PQfinish(pg);
        pg = NULL;
        struct timespec ts = {0, 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (run(pg, STMT_MIG_SESSION, NULL, NULL, err, "session setup") ||
        run(pg, STMT_MIG_LOCK, NULL, NULL, err, "advisory lock"))
        goto done;
    locked = true;
    if (run(pg, STMT_MIG_TABLE, NULL, NULL, err, "schema_migrations"))
        goto done;
    for (int i = 0; i < n; i++) {
        char v[24], path[1024];
        const char *params[2];
        PGresult *r;
        snprintf(v, sizeof v, "%lld", list[i].version);
        params[0] = v;
        params[1] = list[i].file;
        r = session_run(pg, STMT_MIG_APPLIED, params);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            err_startup(err, "migrate", "reading schema_migrations: %s",
                    r ? PQresultErrorMessage(r) : PQerrorMessage(pg));
            PQclear(r);
            goto done;
        }
        int present = PQntuples(r);
        PQclear(r);
        if (present)
            continue;
        snprintf(path, sizeof path, "%s/%s", cfg->migrations_dir, list[i].file);
        char *sql = read_file(path);
        if (!sql) {
            err_startup(err, "migrate", "cannot read %s", path);
            goto done;
        }
        if (run(pg, STMT_BEGIN, NULL, NULL, err, list[i].file)) {
            free(sql);
            goto done;
        }
        int bad = run(pg, -1, sql, NULL, err, list[i].file);
        free(sql);
        if (bad || run(pg, STMT_MIG_RECORD, NULL, params, err, list[i].file) ||
            run(pg, STMT_COMMIT, NULL, NULL, err, list[i].file)) {
            PQclear(session_run(pg, STMT_ROLLBACK, NULL));
            goto done;
        }
        log_msg(LOG_INFO, "migration applied", "file", list[i].file, NULL);
        applied++;
    }
    rc = applied;
done:
    if (locked)
        PQclear(session_run(pg, STMT_MIG_UNLOCK, NULL));
    if (pg)
        PQfinish(pg);
    return rc;
}

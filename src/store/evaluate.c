/* Evaluation statements: the counts, member pages and previews built around a rule's
 * compiled predicate (store/eval_sql.c) and run on the evaluation sessions
 * (store/eval_pool.c), and the prepared statements of the check, the lookup and explicit
 * membership. Members are (rule matches ∪ added) − removed. */
#include "store/evaluate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/eval_pool.h"
#include "store/eval_sql.h"
#include "store/store_private.h"

/* Below this many rows in the devices table an estimate is the exact count: sampling would
 * read most of the table anyway. Above it a first sample holds about ESTIMATE_FIRST_ROWS. */
#define ESTIMATE_MIN_ROWS 200000.0
#define ESTIMATE_FIRST_ROWS 20000.0
/* The estimate aims at a margin (95 %) of at most this share of its count, so that it lands
 * within ±5 % of the exact count (issue #22) for segments of at least 1 % of the tenant's
 * devices: when the first sample leaves a wider one, a second sample as large as that needs
 * is read (20 000 rows do for a 15 % segment, a 3 % one takes about 80 000, a 1 % one
 * 250 000: 2 % of 10 million devices, 25 % of a million). */
#define ESTIMATE_TARGET 0.045
/* A segment under this share of the tenant's sampled devices is not sampled further (the ±5 %
 * is promised from 1 %). */
#define ESTIMATE_SMALL_SHARE 0.005
/* A sample needing more than this share of the table: the exact count instead (three
 * processes scan the whole table about as fast as one reads a quarter of it). */
#define ESTIMATE_MAX_FRACTION 0.25
/* Fewer of the tenant's devices than this in the sample, and a larger sample is read, or the
 * exact count (a small tenant's devices sit on few pages: counting them is cheap, sampling
 * them poor). */
#define ESTIMATE_MIN_TENANT_ROWS 2000.0

#define NOW_TEXT "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
static char *keep(store_conn *c, const char *s, seg_error *err)
{
    char *k = s ? arena_strndup(c->arena, s, strlen(s)) : NULL;
    if (s && !k)
        err_set(err, 500, "internal", "out of memory");
    return k;
}

/* The predicate of r after the fixed parameters fixed[0..nfixed). */
static int predicate(eval_sql *p, const ev_rule *r, const char *const *fixed, int nfixed,
                     seg_error *err)
{
    for (int i = 0; i < nfixed; i++)
        (void)eval_sql_param(p, fixed[i]);
    eval_sql_predicate(p, r);
    if (!p->failed)
        return 0;
    err_set(err, 500, "internal", "the rule could not be compiled");
    return -1;
}

/* q with p's parameters on an evaluation session (wide: with the memory an estimate's
 * per-page aggregate wants). */
static PGresult *run(eval_sql *q, const eval_sql *p, bool wide, int *lag_ms, seg_error *err)
{
    if (q->failed) {
        err_set(err, 500, "internal", "out of memory");
        return NULL;
    }
    return eval_pool_run_wide(q->text, p->n, p->params, wide, lag_ms, err);
}

/* The devices table's size as PostgreSQL last estimated it (-1: never analysed). */
static double table_rows(int *lag_ms, seg_error *err)
{
    PGresult *r = eval_pool_run("SELECT reltuples FROM pg_class WHERE oid = 'devices'::regclass", 0,
                                NULL, lag_ms, err);
    double rows = r && PQntuples(r) == 1 ? atof(PQgetvalue(r, 0, 0)) : -2;
    PQclear(r);
    return rows;
}

/* The members' adjustments of segment (removed rule matches, added non-matches), exact, as
 * two columns; "0, 0" for a preview. */
static void put_adjustments(eval_sql *q, const eval_sql *p, const char *segment)
{
    if (!segment) {
        eval_sql_put(q, ", 0, 0");
        return;
    }
    eval_sql_put_adjustment(q, 2, p->text, false);
    eval_sql_put_adjustment(q, 2, p->text, true);
}

/* Up to 10 matching ids from `from`, ascending, as a JSON array column (NULL for a count). */
static void put_sample(eval_sql *q, const eval_sql *p, const char *segment, const char *from)
{
    if (segment) {
        eval_sql_put(q, ", NULL");
        return;
    }
    eval_sql_put(q, ", (SELECT coalesce(json_agg(s.id ORDER BY s.id), '[]') FROM (SELECT d.id FROM ");
    eval_sql_put(q, from);
    eval_sql_put(q, " WHERE d.tenant = $1 AND ");
    eval_sql_put(q, p->text);
    eval_sql_put(q, " ORDER BY d.id LIMIT 10) s)::text");
}

/* The statement. Exact: hits, then zeros. Sampled (SYSTEM samples pages): over the pages
 * read, Σh (the tenant's matches), Σm (rows), Σh², Σm², Σhm, the pages, the tenant's rows
 * and the table's rows now as the planner reckons them (reltuples / relpages × pages). Then
 * both: removed, added, the sample, computed_at. */
static void count_sql(eval_sql *q, const eval_sql *p, const char *segment, bool sampled)
{
    const char *from = sampled ? "devices d TABLESAMPLE SYSTEM ($3::float8)" : "devices d";
    if (sampled) {
        eval_sql_put(q, "SELECT coalesce(sum(h), 0), coalesce(sum(m), 0), coalesce(sum(h * h), 0), "
                        "coalesce(sum(m * m), 0), coalesce(sum(h * m), 0), count(*), coalesce(sum(t), 0), "
                        "(SELECT c.reltuples / greatest(c.relpages, 1) * (pg_relation_size(c.oid) / "
                        "current_setting('block_size')::float8) FROM pg_class c WHERE c.oid = "
                        "'devices'::regclass)");
    } else {
        eval_sql_put(q, "SELECT (SELECT count(*) FROM devices d WHERE d.tenant = $1 AND ");
        eval_sql_put(q, p->text);
        eval_sql_put(q, "), 0, 0, 0, 0, 0, 0, 0");
    }
    put_adjustments(q, p, segment);
    put_sample(q, p, segment, from);
    eval_sql_put(q, ", " NOW_TEXT ", $2::text, $3::text");
    if (sampled) {
        eval_sql_put(q, " FROM (SELECT count(*) FILTER (WHERE d.tenant = $1 AND ");
        eval_sql_put(q, p->text);
        eval_sql_put(q, ")::float8 AS h, count(*)::float8 AS m, count(*) FILTER (WHERE d.tenant = $1) AS t "
                        "FROM devices d TABLESAMPLE SYSTEM ($3::float8) "
                        "GROUP BY (d.ctid::text::point)[0]) pages");
    }
}

/* A ratio estimate over the sampled pages (cluster sampling): the tenant's matches per row
 * read, R = Σh / Σm, times the table's rows; its variance from the pages' residuals
 * d = h − R m: Var(R) ≈ (1 − f) Σd² / (n (n − 1) m̄²). */
static void ratio_estimate(const PGresult *res, double f, long long *count, long long *margin)
{
    double sh = atof(PQgetvalue(res, 0, 0)), sm = atof(PQgetvalue(res, 0, 1));
    double shh = atof(PQgetvalue(res, 0, 2)), smm = atof(PQgetvalue(res, 0, 3));
    double shm = atof(PQgetvalue(res, 0, 4)), n = atof(PQgetvalue(res, 0, 5));
    double rows = atof(PQgetvalue(res, 0, 7));
    double r = sm > 0 ? sh / sm : 0, mbar = n > 0 ? sm / n : 1;
    double sdd = shh - 2 * r * shm + r * r * smm;
    double var = n > 1 ? (1 - f) * (sdd > 0 ? sdd : 0) / (n * (n - 1) * mbar * mbar) : 0;
    *count = llround(r * rows);
    *margin = llround(1.96 * rows * sqrt(var));
    if (sh == 0) /* none seen: the rule of three, over the rows read */
        *margin = llround(3 * rows / (sm > 0 ? sm : 1));
}

/* The rows a sample should read, given one that read res at fraction f: more when it held
 * too few of the tenant's devices, or left the margin wider than ESTIMATE_TARGET of a
 * segment worth it; 0 when res will do. */
static double rows_wanted(const PGresult *res, double f)
{
    double sh = atof(PQgetvalue(res, 0, 0)), sm = atof(PQgetvalue(res, 0, 1));
    double tenant = atof(PQgetvalue(res, 0, 6)), want = 0;
    long long n, margin;
    if (tenant < ESTIMATE_MIN_TENANT_ROWS)
        want = sm * ESTIMATE_MIN_TENANT_ROWS / (tenant > 0 ? tenant : 1) * 1.1;
    ratio_estimate(res, f, &n, &margin);
    if (tenant > 0 && sh / tenant >= ESTIMATE_SMALL_SHARE && n > 0 &&
        (double)margin > ESTIMATE_TARGET * (double)n) {
        double k = (double)margin / (ESTIMATE_TARGET * (double)n);
        if (sm * k * k * 1.1 > want)
            want = sm * k * k * 1.1;
    }
    return want;
}

int store_eval_count(store_conn *c, const ev_rule *r, const char *tenant, const char *segment,
                     bool estimate, store_count *out, seg_error *err)
{
    memset(out, 0, sizeof *out);
    out->replica_lag_ms = -1;
    double fraction = 1, rows = 0;
    char pct[32];
    if (estimate) {
        rows = table_rows(&out->replica_lag_ms, err);
        if (rows < -1)
            return -1;
        if (rows >= ESTIMATE_MIN_ROWS)
            fraction = ESTIMATE_FIRST_ROWS / rows;
    }
    snprintf(pct, sizeof pct, "%.6f", fraction * 100);
    const char *fixed[3] = {tenant, segment ? segment : "", pct}; /* pct: changed in place */
    eval_sql p = {0}, q[2] = {{0}, {0}}; /* q[1]: the sampled statement, q[0]: the exact one */
    int rc = -1;
    if (predicate(&p, r, fixed, 3, err))
        goto out;
    /* samples: the first, and at most one larger (the same statement: only pct changes);
     * then (or at once) the exact count */
    PGresult *res = NULL;
    for (int pass = fraction < 1 ? 0 : 2; pass < 3 && !res; pass++) {
        bool sampled = pass < 2;
        if (!q[sampled].text)
            count_sql(&q[sampled], &p, segment, sampled);
        res = run(&q[sampled], &p, sampled, &out->replica_lag_ms, err);
        if (!res)
            goto out;
        out->estimate = sampled;
        double want = sampled ? rows_wanted(res, fraction) : 0;
        if (want <= 0)
            break;
        if (pass == 1 && atof(PQgetvalue(res, 0, 6)) >= ESTIMATE_MIN_TENANT_ROWS)
            break; /* the larger sample: its margin stands, whatever it is */
        PQclear(res);
        res = NULL;
        if (pass == 0 && want <= ESTIMATE_MAX_FRACTION * rows) {
            fraction = want / rows;
            snprintf(pct, sizeof pct, "%.6f", fraction * 100);
        } else {
            pass = 1; /* the exact count next */
        }
    }
    long long removed = atoll(PQgetvalue(res, 0, 8)), added = atoll(PQgetvalue(res, 0, 9));
    if (out->estimate)
        ratio_estimate(res, fraction, &out->count, &out->margin);
    else
        out->count = atoll(PQgetvalue(res, 0, 0));
    out->count += added - removed;
    if (out->count < 0)
        out->count = 0;
    out->sample = segment ? NULL : keep(c, PQgetvalue(res, 0, 10), err);
    out->computed_at = keep(c, PQgetvalue(res, 0, 11), err);
    PQclear(res);
    rc = out->computed_at && (segment || out->sample) ? 0 : -1;
out:
    eval_sql_free(&q[0]);
    eval_sql_free(&q[1]);
    eval_sql_free(&p);
    return rc;
}

int store_eval_members(store_conn *c, const ev_rule *r, const char *tenant, const char *segment,
                       const char *after, int limit, store_ids *out, seg_error *err)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *fixed[4] = {tenant, segment, after, lim};
    eval_sql p = {0}, q = {0};
    int rc = -1;
    memset(out, 0, sizeof *out);
    out->replica_lag_ms = -1;
    if (predicate(&p, r, fixed, 4, err))
        goto out;
    eval_sql_put(&q, "SELECT id FROM ((SELECT d.id FROM devices d WHERE d.tenant = $1 AND d.id > $3 AND ");
    eval_sql_put(&q, p.text);
    eval_sql_put(&q, " AND NOT EXISTS (SELECT 1 FROM segment_members r WHERE r.tenant = $1 AND "
                     "r.segment = $2 AND r.device = d.id AND NOT r.added) ORDER BY d.id LIMIT $4::int) "
                     "UNION (SELECT m.device FROM segment_members m WHERE m.tenant = $1 AND "
                     "m.segment = $2 AND m.added AND m.device > $3 ORDER BY m.device LIMIT $4::int)) u "
                     "ORDER BY id LIMIT $4::int");
    PGresult *res = run(&q, &p, false, &out->replica_lag_ms, err);
    if (!res)
        goto out;
    int n = PQntuples(res);
    out->more = n > limit;
    out->n = out->more ? limit : n;
    out->ids = arena_alloc(c->arena, sizeof *out->ids * (size_t)(out->n + 1));
    for (int i = 0; out->ids && i < out->n; i++)
        if (!(out->ids[i] = keep(c, PQgetvalue(res, i, 0), err)))
            break;
    PQclear(res);
    rc = out->ids && (out->n == 0 || out->ids[out->n - 1]) ? 0 : -1;
    if (rc)
        err_set(err, 500, "internal", "out of memory");
out:
    eval_sql_free(&p);
    eval_sql_free(&q);
    return rc;
}

int store_eval_rule(store_conn *c, bool v1, const char *tenant, const char *id,
                    store_seg_rule *out, seg_error *err)
{
    const char *p[2] = {tenant, id};
    PGresult *res = store_run(c, v1 ? STMT_EVAL_V1_RULE : STMT_EVAL_AUD_RULE, p, err);
    if (!res)
        return -1;
    if (PQntuples(res) == 0)
        return STORE_MISSING;
    out->rule = PQgetvalue(res, 0, 0);
    out->len = (size_t)PQgetlength(res, 0, 0);
    out->status = PQgetvalue(res, 0, 1);
    return STORE_DONE;
}

static void columns_of(const PGresult *res, int first, const char *col[EV_DEVICE_COLUMNS])
{
    for (int i = 0; i < EV_DEVICE_COLUMNS; i++)
        col[i] = PQgetisnull(res, 0, first + i) ? NULL : PQgetvalue(res, 0, first + i);
}

int store_eval_check(store_conn *c, bool v1, const char *tenant, const char *segment,
                     const char *device, store_check *out, seg_error *err)
{
    const char *p[3] = {tenant, segment, device};
    PGresult *res = store_run(c, v1 ? STMT_EVAL_V1_CHECK : STMT_EVAL_AUD_CHECK, p, err);
    if (!res)
        return -1;
    memset(out, 0, sizeof *out);
    out->segment_found = !PQgetisnull(res, 0, 0);
    out->rule = PQgetvalue(res, 0, 0);
    out->rule_len = (size_t)PQgetlength(res, 0, 0);
    out->status = PQgetvalue(res, 0, 1);
    columns_of(res, 2, out->col);
    out->device_found = out->col[14] != NULL; /* the id */
    int a = 2 + EV_DEVICE_COLUMNS;
    out->added = PQgetisnull(res, 0, a) ? -1 : PQgetvalue(res, 0, a)[0] == 't';
    return STORE_DONE;
}

int store_eval_device(store_conn *c, const char *tenant, const char *device,
                      store_device_eval *out, seg_error *err)
{
    const char *p[2] = {tenant, device};
    PGresult *res = store_run(c, STMT_EVAL_DEVICE, p, err);
    if (!res)
        return -1;
    int rows = PQntuples(res), seg = EV_DEVICE_COLUMNS;
    if (rows == 0)
        return STORE_MISSING;
    columns_of(res, 0, out->col);
    out->n_members = 0;
    out->member_segment = arena_alloc(c->arena, sizeof *out->member_segment * (size_t)rows);
    out->member_added = arena_alloc(c->arena, sizeof *out->member_added * (size_t)rows);
    if (!out->member_segment || !out->member_added) {
        err_set(err, 500, "internal", "out of memory");
        return -1;
    }
    for (int r = 0; r < rows; r++) {
        if (PQgetisnull(res, r, seg))
            continue;
        out->member_segment[out->n_members] = PQgetvalue(res, r, seg);
        out->member_added[out->n_members++] = PQgetvalue(res, r, seg + 1)[0] == 't';
    }
    return STORE_DONE;
}

int store_eval_rules(store_conn *c, const char *tenant, store_rule_entry **out, size_t *n,
                     const char **fingerprint, seg_error *err)
{
    const char *p[1] = {tenant};
    PGresult *res = store_run(c, STMT_EVAL_RULES, p, err);
    if (!res)
        return -1;
    int rows = PQntuples(res); /* row 0: the fingerprint */
    store_rule_entry *e = rows > 0 ? arena_alloc(c->arena, sizeof *e * (size_t)rows) : NULL;
    if (!e) {
        err_set(err, 500, "internal", rows > 0 ? "out of memory" : "no fingerprint read");
        return -1;
    }
    *fingerprint = PQgetvalue(res, 0, 7);
    for (int r = 1; r < rows; r++) {
        store_rule_entry *x = &e[r - 1];
        x->v1 = PQgetvalue(res, r, 0)[0] == 't';
        x->id = PQgetvalue(res, r, 1);
        x->rule = PQgetvalue(res, r, 2);
        x->rule_len = (size_t)PQgetlength(res, r, 2);
        x->active = PQgetvalue(res, r, 3)[0] == 't';
        x->has_start = !PQgetisnull(res, r, 4);
        x->start_us = x->has_start ? atoll(PQgetvalue(res, r, 4)) : 0;
        x->has_end = !PQgetisnull(res, r, 5);
        x->end_us = x->has_end ? atoll(PQgetvalue(res, r, 5)) : 0;
        x->extend = PQgetvalue(res, r, 6)[0] == 't';
    }
    *out = e;
    *n = (size_t)rows - 1;
    return STORE_DONE;
}

int store_members_apply(store_conn *c, bool v1, const char *tenant, const char *segment, bool add,
                        const char *ids, store_members_applied *out, seg_error *err)
{
    const char *p[6] = {tenant, segment, ids, add ? "t" : "f", c->actor, c->request_id};
    PGresult *res = store_run(c, v1 ? STMT_MEMBERS_V1 : STMT_MEMBERS_AUD, p, err);
    if (!res)
        return -1;
    if (atoll(PQgetvalue(res, 0, 0)) == 0)
        return STORE_MISSING;
    out->applied = atoll(PQgetvalue(res, 0, 1));
    out->unknown = atoll(PQgetvalue(res, 0, 2));
    out->unknown_ids = PQgetvalue(res, 0, 3);
    return STORE_DONE;
}

int store_eval_size(store_conn *c, bool v1, const char *tenant, const char *id,
                    const store_count *n, seg_error *err)
{
    char count[24];
    snprintf(count, sizeof count, "%lld", n->count);
    const char *p[5] = {tenant, id, count, n->estimate ? "estimate" : "exact", n->computed_at};
    return store_run(c, v1 ? STMT_SIZE_V1 : STMT_SIZE_AUD, p, err) ? 0 : -1;
}

/* The SQL compiler of evaluation: a typed rule → one predicate over devices d, its values as
 * parameters. The semantics are eval/match.c's: a lacking field (NULL) satisfies only != (IS
 * DISTINCT FROM), strings compare byte for byte (deterministic collation), attribute values
 * as jsonb values. */
#include "store/eval_sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The device table's column of each field, in the field table's order. */
static const char *const columns[VAL_FIELD_COUNT] = {
    "country", "language", "timezone", "app_version", "app_version_code", "os_api",
    "os_version", "custom_user_id", "email", "type", "first_session", "last_session",
    "session_count", "created_at", "id", "push_token", "un_registered_at", "device_model",
    "device_manufacturer", "tags",
};

/* PostgreSQL's limit on the parameters of one statement is 65 535; a rule with more values
 * than this reads each property's values from one parameter instead. */
#define PARAMS_INLINE_MAX 4000

const char *eval_sql_column(size_t i)
{
    return i < VAL_FIELD_COUNT ? columns[i] : NULL;
}

void eval_sql_put(eval_sql *q, const char *s)
{
    size_t n = strlen(s);
    if (q->failed)
        return;
    if (q->len + n + 1 > q->cap) {
        size_t cap = q->cap ? q->cap : 512;
        while (cap < q->len + n + 1)
            cap *= 2;
        char *t = realloc(q->text, cap);
        if (!t) {
            q->failed = true;
            return;
        }
        q->text = t;
        q->cap = cap;
    }
    memcpy(q->text + q->len, s, n + 1);
    q->len += n;
}

int eval_sql_param(eval_sql *q, const char *value)
{
    if (q->failed || q->n >= 65535) {
        q->failed = true;
        return 0;
    }
    if (q->n == q->nparams_cap) {
        int cap = q->nparams_cap ? q->nparams_cap * 2 : 16;
        const char **p = realloc(q->params, (size_t)cap * sizeof *p);
        if (!p) {
            q->failed = true;
            return 0;
        }
        q->params = p;
        q->nparams_cap = cap;
    }
    q->params[q->n++] = value;
    return q->n;
}

/* "$n::type" of a new parameter. */
static void put_param(eval_sql *q, const char *value, const char *type)
{
    char buf[48];
    snprintf(buf, sizeof buf, "$%d::%s", eval_sql_param(q, value), type);
    eval_sql_put(q, buf);
}

static void put_col(eval_sql *q, unsigned field)
{
    eval_sql_put(q, "d.");
    eval_sql_put(q, columns[field]);
}

/* fn(column, $n::text) then after. */
static void put_call(eval_sql *q, const char *fn, const ev_con *c, const char *after)
{
    eval_sql_put(q, fn);
    put_col(q, c->field);
    eval_sql_put(q, ", ");
    put_param(q, c->text, "text");
    eval_sql_put(q, after);
}

static void con_sql(eval_sql *q, const ev_con *c)
{
    const val_field *f = val_field_at(c->field);
    static const char *const cmp[] = {[EV_GT] = " > ", [EV_GE] = " >= ", [EV_LT] = " < ", [EV_LE] = " <= "};
    const char *type = f->type == VAL_FIELD_INT ? "integer" : f->type == VAL_FIELD_LONG ? "bigint" : "text";
    if (f->type == VAL_FIELD_STRING_ARRAY) {
        if (c->op == EV_EXISTS) {
            eval_sql_put(q, c->flag ? "cardinality(d.tags) > 0" : "cardinality(d.tags) = 0");
            return;
        }
        eval_sql_put(q, c->op == EV_NE ? "NOT (d.tags @> ARRAY[" : "(d.tags @> ARRAY[");
        put_param(q, c->text, "text");
        eval_sql_put(q, "])");
        return;
    }
    switch (c->op) {
    case EV_EXISTS:
        put_col(q, c->field);
        eval_sql_put(q, c->flag ? " IS NOT NULL" : " IS NULL");
        break;
    case EV_EQ:
    case EV_NE:
        put_col(q, c->field);
        eval_sql_put(q, c->op == EV_EQ ? " = " : " IS DISTINCT FROM ");
        put_param(q, c->text, type);
        break;
    case EV_STARTS_WITH:
        put_call(q, "starts_with(", c, ")");
        break;
    case EV_ENDS_WITH: {
        char buf[96];
        int n = eval_sql_param(q, c->text);
        eval_sql_put(q, "right(");
        put_col(q, c->field);
        snprintf(buf, sizeof buf, ", char_length($%d::text)) = $%d::text", n, n);
        eval_sql_put(q, buf);
        break;
    }
    case EV_CONTAINS:
        put_call(q, "strpos(", c, ") > 0");
        break;
    default:
        put_col(q, c->field);
        eval_sql_put(q, cmp[c->op]);
        put_param(q, c->text, type);
        break;
    }
}

static void v1_sql(eval_sql *q, const ev_rule *r)
{
    eval_sql_put(q, "(");
    for (size_t g = 0; g < r->n; g++) {
        const ev_group *grp = &r->groups[g];
        eval_sql_put(q, g ? " AND (" : "(");
        for (size_t i = 0; i < grp->n; i++) {
            if (i)
                eval_sql_put(q, grp->is_or ? " OR " : " AND ");
            con_sql(q, &grp->cons[i]);
        }
        eval_sql_put(q, ")");
    }
    eval_sql_put(q, ")");
}

/* The values of a property as one JSON array parameter (for rules past PARAMS_INLINE_MAX). */
static void prop_exists_sql(eval_sql *q, const ev_prop *p)
{
    char buf[320];
    int k = eval_sql_param(q, p->code);
    int v = eval_sql_param(q, p->values_json);
    snprintf(buf, sizeof buf,
             "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(d.attributes -> $%d::text) "
             "= 'array' THEN d.attributes -> $%d::text END) e WHERE e.value IN (SELECT "
             "jsonb_array_elements($%d::jsonb)))",
             k, k, v);
    eval_sql_put(q, buf);
}

static void aud_sql(eval_sql *q, const ev_rule *r)
{
    size_t total = 0;
    for (size_t i = 0; i < r->n; i++)
        total += r->props[i].n;
    eval_sql_put(q, "(");
    for (size_t i = 0; i < r->n; i++) {
        const ev_prop *p = &r->props[i];
        eval_sql_put(q, i ? " AND (" : "(");
        if (total > PARAMS_INLINE_MAX) {
            prop_exists_sql(q, p);
        } else {
            for (size_t j = 0; j < p->n; j++) {
                eval_sql_put(q, j ? " OR d.attributes @> " : "d.attributes @> ");
                put_param(q, p->contain[j], "jsonb");
            }
        }
        eval_sql_put(q, ")");
    }
    eval_sql_put(q, ")");
}

void eval_sql_predicate(eval_sql *q, const ev_rule *r)
{
    if (r->kind == EV_RULE_V1)
        v1_sql(q, r);
    else if (r->kind == EV_RULE_AUD)
        aud_sql(q, r);
    else
        eval_sql_put(q, "(false)");
}

void eval_sql_put_adjustment(eval_sql *q, int seg_param, const char *pred, bool added)
{
    char head[256];
    snprintf(head, sizeof head,
             ", (SELECT count(*) FROM segment_members m JOIN devices d ON d.tenant = m.tenant AND "
             "d.id = m.device WHERE m.tenant = $1 AND m.segment = $%d AND %s",
             seg_param, added ? "m.added AND NOT coalesce(" : "NOT m.added AND ");
    eval_sql_put(q, head);
    eval_sql_put(q, pred);
    eval_sql_put(q, added ? ", false))" : ")");
}

void eval_sql_free(eval_sql *q)
{
    free(q->text);
    free(q->params);
    memset(q, 0, sizeof *q);
}

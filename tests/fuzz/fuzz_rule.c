/* libFuzzer target: a segment's stored rule, as evaluation reads it. Byte 0: bit 0 chooses
 * the reader (0: ev_rule_v1, the /v1 constraint groups; 1: ev_rule_aud, the /audiences
 * properties), bits 1-2 how many parameters the statement holds before the predicate
 * (1 + (bits % 3)); the rest is the stored JSON. The rest also goes, as a POST /v1/segments
 * body, through the real validator (val_v1_segment, create), and its canonical constraints
 * through ev_rule_v1: what the validator keeps must always read back.
 *
 * A rule that reads is compiled by eval_sql_predicate and matched by ev_match against three
 * fixed devices (every field, none, edge values). Checked: the SQL is balanced in
 * parentheses, names only parameters that exist ($1..$n) and every parameter it adds, its
 * parameters are non-NULL, and its text does not depend on the rule's values (values go in
 * only as parameters: the text of the same rule with every value replaced is the same text,
 * and no value of 3 bytes or more that is not a plain word appears in it); != is the exact
 * negation of ==, and exists true of exists false, on every device. */
#include <stdbool.h>

#include "eval/match.h"
#include "eval/rule.h"
#include "fuzz_common.h"
#include "store/eval_sql.h"
#include "validate/formats.h"
#include "validate/v1_segment.h"
#include "validate/validate.h"

/* Three devices as EVAL_DEVICE_COLUMNS gives them: every field, none, edge values. */
static const char *const device_cols[3][EV_DEVICE_COLUMNS] = {
    {"PL", "pol", "Europe/Warsaw", "1.3.54", "135", "35", "15.1", "u42", "name@example.com",
     "phone", "1700000000000", "1700000100000", "12", "1690000000000", "dev-1", "tok:abc",
     "1700000300000", "Pixel 8", "Google", "[\"vip\",\"beta\"]",
     "{\"plan\":[\"pro\"],\"score\":[1,2.5],\"city\":[\"Kraków\"]}"},
    {NULL},
    {"", "\xc3\xa9t\xc3\xa9", "a\"b'c\\d", "1.", "-2147483648", "2147483647", "%_", "$1",
     "(", ")", "-9223372036854775808", "9223372036854775807", "2147483647", "0", "bulk", " ",
     "-1", "Pixel", "Pixel 8 Pro", "[\"\",\"vip\",\"VIP\",\"\\u00e9\"]",
     "{\"plan\":[4.0,\"4\",null,true,{\"a\":1},[1]],\"\":[\"x\"],\"score\":\"notalist\",\"n\":[],"
     "\"big\":[9223372036854775807,1e300]}"},
};
#define NDEV 3

static const char *const fixed_params[] = {"fixed-1", "fixed-2", "fixed-3"};
static const char placeholder[] = "\x01placeholder\x01";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_seed_jansson();
    return 0;
}

static void read_devices(ev_device d[NDEV])
{
    seg_error err;
    for (int i = 0; i < NDEV; i++) {
        err_clear(&err);
        FUZZ_CHECK(ev_device_read(&d[i], device_cols[i], &err) == 0, "fixed device %d not read: %s", i,
                   err.detail);
    }
}

static void compile(const ev_rule *r, int fixed, eval_sql *q)
{
    memset(q, 0, sizeof *q);
    for (int i = 0; i < fixed; i++)
        FUZZ_CHECK(eval_sql_param(q, fixed_params[i]) == i + 1, "fixed parameter %d", i + 1);
    eval_sql_predicate(q, r);
    FUZZ_CHECK(!q->failed, "compiling failed (%d parameters)", q->n);
    FUZZ_CHECK(q->text && strlen(q->text) == q->len, "text length %zu", q->len);
}

/* Parentheses balanced (outside '…' literals), every $n in 1..q->n, every parameter after the
 * fixed ones named by the text (PostgreSQL cannot type a parameter it never sees), the
 * fixed ones kept, none NULL. */
static void check_sql(const eval_sql *q, int fixed)
{
    int depth = 0;
    bool quoted = false;
    char *named = calloc((size_t)q->n + 1, 1);
    FUZZ_CHECK(named != NULL, "out of memory");
    for (const char *p = q->text; *p; p++) {
        if (*p == '\'') {
            quoted = !quoted;
            continue;
        }
        if (quoted)
            continue;
        if (*p == '(')
            depth++;
        else if (*p == ')')
            FUZZ_CHECK(--depth >= 0, "a ')' closes nothing at %zu: %.300s", (size_t)(p - q->text), q->text);
        else if (*p == '$') {
            FUZZ_CHECK(p[1] >= '0' && p[1] <= '9', "'$' without a number: %.300s", q->text);
            long n = strtol(p + 1, NULL, 10);
            FUZZ_CHECK(n >= 1 && n <= q->n, "$%ld with %d parameters: %.300s", n, q->n, q->text);
            named[n] = 1;
        }
    }
    FUZZ_CHECK(!quoted, "an unclosed quote: %.300s", q->text);
    FUZZ_CHECK(depth == 0, "%d parentheses left open: %.300s", depth, q->text);
    FUZZ_CHECK(q->text[0] == '(' , "the predicate is not in parentheses: %.300s", q->text);
    for (int i = 0; i < q->n; i++) {
        FUZZ_CHECK(q->params[i] != NULL, "parameter $%d is NULL", i + 1);
        if (i < fixed)
            FUZZ_CHECK(q->params[i] == fixed_params[i], "fixed parameter $%d replaced", i + 1);
        else
            FUZZ_CHECK(named[i + 1], "parameter $%d is never named: %.300s", i + 1, q->text);
    }
    free(named);
}

static bool plain_word(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* A value of the rule inside the SQL text: only when it is a plain word, or a piece of the
 * SQL the compiler writes for this rule's shape whatever its values (skeleton). */
static void check_value(const eval_sql *q, const char *skeleton, const char *v, size_t n, const char *what)
{
    if (n < 3 || strlen(v) != n || plain_word(v, n))
        return;
    FUZZ_CHECK(!strstr(q->text, v) || strstr(skeleton, v), "%s \"%s\" is inside the SQL text: %.300s",
               what, v, q->text);
}

/* The rule's values replaced by the placeholder (swap true), or put back (swap false). */
typedef struct saved {
    const char **text;
    const char **code;
    char **contain;
    char **values_json;
    size_t n;
} saved;

static void swap_values(ev_rule *r, saved *s, bool out)
{
    size_t k = 0;
    if (out) {
        size_t total = 0;
        for (size_t g = 0; r->kind == EV_RULE_V1 && g < r->n; g++)
            total += r->groups[g].n;
        for (size_t i = 0; r->kind == EV_RULE_AUD && i < r->n; i++)
            total += r->props[i].n + 2;
        memset(s, 0, sizeof *s);
        s->text = calloc(total + 1, sizeof *s->text);
        s->contain = calloc(total + 1, sizeof *s->contain);
        FUZZ_CHECK(s->text && s->contain, "out of memory");
        s->n = total;
    }
    if (r->kind == EV_RULE_V1) {
        for (size_t g = 0; g < r->n; g++)
            for (size_t i = 0; i < r->groups[g].n; i++, k++) {
                ev_con *c = &r->groups[g].cons[i];
                if (out) {
                    s->text[k] = c->text;
                    c->text = placeholder;
                } else {
                    c->text = s->text[k];
                }
            }
    } else if (r->kind == EV_RULE_AUD) {
        for (size_t i = 0; i < r->n; i++) {
            ev_prop *p = &r->props[i];
            if (out) {
                s->text[k] = p->code;
                s->contain[k++] = p->values_json;
                p->code = placeholder;
                p->values_json = (char *)placeholder;
                for (size_t j = 0; j < p->n; j++, k++) {
                    s->contain[k] = p->contain[j];
                    p->contain[j] = (char *)placeholder;
                }
            } else {
                p->code = s->text[k];
                p->values_json = s->contain[k++];
                for (size_t j = 0; j < p->n; j++, k++)
                    p->contain[j] = s->contain[k];
            }
        }
    }
    if (!out) {
        free(s->text);
        free(s->contain);
    }
}

static void check_compiled(ev_rule *r, int fixed)
{
    eval_sql q, sk;
    saved s;
    compile(r, fixed, &q);
    check_sql(&q, fixed);
    swap_values(r, &s, true);
    compile(r, fixed, &sk);
    swap_values(r, &s, false);

    if (r->kind == EV_RULE_V1) {
        for (size_t g = 0; g < r->n; g++)
            for (size_t i = 0; i < r->groups[g].n; i++) {
                const ev_con *c = &r->groups[g].cons[i];
                if (c->op != EV_EXISTS && !val_field_type_range(val_field_at(c->field)->type, NULL, NULL))
                    check_value(&q, sk.text, c->text, c->len, "the value");
            }
    } else if (r->kind == EV_RULE_AUD) {
        for (size_t i = 0; i < r->n; i++) {
            const ev_prop *p = &r->props[i];
            check_value(&q, sk.text, p->code, strlen(p->code), "the code");
            for (size_t j = 0; j < p->n; j++)
                if (json_is_string(p->values[j]))
                    check_value(&q, sk.text, json_string_value(p->values[j]),
                                json_string_length(p->values[j]), "the value");
        }
    }
    FUZZ_CHECK(q.n == sk.n && !strcmp(q.text, sk.text),
               "the SQL text depends on the rule's values:\n  %.300s\n  %.300s", q.text, sk.text);
    eval_sql_free(&q);
    eval_sql_free(&sk);
}

/* A one-constraint rule of c. */
static bool match_one(const ev_con *c, const ev_device *d)
{
    ev_group g = {.is_or = false, .n = 1, .cons = (ev_con *)c};
    ev_rule r = {.kind = EV_RULE_V1, .n = 1, .groups = &g};
    return ev_match(&r, d);
}

static void check_matches(const ev_rule *r, const ev_device d[NDEV])
{
    for (int i = 0; i < NDEV; i++)
        (void)ev_match(r, &d[i]);
    if (r->kind != EV_RULE_V1)
        return;
    for (size_t g = 0; g < r->n; g++) {
        const ev_group *grp = &r->groups[g];
        for (size_t k = 0; k < grp->n; k++) {
            const ev_con *c = &grp->cons[k];
            ev_con flip = *c;
            if (c->op == EV_EQ || c->op == EV_NE)
                flip.op = c->op == EV_EQ ? EV_NE : EV_EQ;
            else if (c->op == EV_EXISTS)
                flip.flag = !c->flag;
            else
                continue;
            for (int i = 0; i < NDEV; i++) {
                bool a = match_one(c, &d[i]), b = match_one(&flip, &d[i]);
                FUZZ_CHECK(a != b, "group %zu constraint %zu (field %s, op %d, value \"%.80s\"): %d on "
                                   "device %d, and %d with the relation flipped",
                           g, k, val_field_at(c->field)->name, (int)c->op, c->text ? c->text : "",
                           a, i, b);
            }
        }
    }
}

static void check_rule(ev_rule *r, int fixed, const ev_device d[NDEV])
{
    FUZZ_CHECK(r->root != NULL, "a rule without its JSON");
    if (r->kind == EV_RULE_V1) {
        FUZZ_CHECK(r->n >= 1 && r->groups, "v1 rule with %zu groups", r->n);
        for (size_t g = 0; g < r->n; g++) {
            FUZZ_CHECK(r->groups[g].n >= 1, "group %zu is empty", g);
            for (size_t i = 0; i < r->groups[g].n; i++) {
                const ev_con *c = &r->groups[g].cons[i];
                FUZZ_CHECK(c->field < VAL_FIELD_COUNT && c->op <= EV_LE, "constraint %zu/%zu", g, i);
                FUZZ_CHECK(c->op == EV_EXISTS || (c->text && strlen(c->text) == c->len),
                           "constraint %zu/%zu text", g, i);
            }
        }
    } else if (r->kind == EV_RULE_AUD) {
        FUZZ_CHECK(r->n >= 1 && r->props, "aud rule with %zu properties", r->n);
        for (size_t i = 0; i < r->n; i++) {
            const ev_prop *p = &r->props[i];
            FUZZ_CHECK(p->code && p->n >= 1 && p->values_json, "property %zu", i);
            for (size_t j = 0; j < p->n; j++) {
                /* contain[j] is {"code":[value j]}, what @> takes */
                json_t *one = json_loads(p->contain[j], 0, NULL);
                json_t *list = json_object_get(one, p->code);
                FUZZ_CHECK(json_object_size(one) == 1 && json_array_size(list) == 1 &&
                               json_equal(json_array_get(list, 0), p->values[j]),
                           "property %s value %zu contains %s", p->code, j, p->contain[j]);
                json_decref(one);
            }
        }
    } else {
        FUZZ_CHECK(r->kind == EV_RULE_NONE && r->n == 0, "rule kind %d", (int)r->kind);
    }
    check_compiled(r, fixed);
    check_matches(r, d);
}

static void read_failed(const ev_rule *r, const seg_error *err)
{
    FUZZ_CHECK(err->status == 500 && err->n_items == 0, "a refused rule with status %d", err->status);
    FUZZ_CHECK(!r->root && !r->groups && !r->props && r->n == 0, "a refused rule holds something");
    fuzz_check_problem(err);
}

/* The stored JSON through the reader the first byte chose. */
static void stored(bool aud, const char *json, size_t len, int fixed, const ev_device d[NDEV])
{
    ev_rule r;
    seg_error err;
    err_clear(&err);
    int rc = aud ? ev_rule_aud(json, len, &r, &err) : ev_rule_v1(json, len, &r, &err);
    if (rc == 0) {
        FUZZ_CHECK(err.status == 0, "a rule read with an error set");
        FUZZ_CHECK(r.kind == (aud ? (r.n ? EV_RULE_AUD : EV_RULE_NONE) : EV_RULE_V1), "kind %d",
                   (int)r.kind);
        check_rule(&r, fixed, d);
    } else {
        FUZZ_CHECK(rc == -1, "reader returned %d", rc);
        read_failed(&r, &err);
    }
    ev_rule_free(&r);
}

/* The same bytes as a POST /v1/segments body: what the validator keeps must read. */
static void body(const uint8_t *data, size_t size, int fixed, const ev_device d[NDEV])
{
    json_t *root = fuzz_parse_body(data, size);
    if (!root)
        return;
    v1_segment_in in;
    seg_error err;
    err_clear(&err);
    if (val_v1_segment(root, false, &in, &err) == 0) {
        ev_rule r;
        FUZZ_CHECK(in.constraints_json != NULL, "create without constraints");
        err_clear(&err);
        int rc = ev_rule_v1(in.constraints_json, strlen(in.constraints_json), &r, &err);
        FUZZ_CHECK(rc == 0, "the validator's constraints are not a readable rule (%s): %.400s",
                   err.log_detail, in.constraints_json);
        json_t *groups = json_loads(in.constraints_json, 0, NULL);
        FUZZ_CHECK(r.n == json_array_size(groups), "%zu groups read of %zu", r.n, json_array_size(groups));
        for (size_t g = 0; g < r.n; g++)
            FUZZ_CHECK(r.groups[g].n == json_array_size(json_object_get(json_array_get(groups, g), "constraints")),
                       "group %zu: %zu constraints read", g, r.groups[g].n);
        json_decref(groups);
        check_rule(&r, fixed, d);
        ev_rule_free(&r);
    } else {
        fuzz_check_problem(&err);
    }
    val_v1_segment_release(&in);
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool aud = data[0] & 1;
    int fixed = 1 + (data[0] >> 1 & 3) % 3;
    ev_device d[NDEV];
    read_devices(d);
    stored(aud, (const char *)data + 1, size - 1, fixed, d);
    body(data + 1, size - 1, fixed, d);
    for (int i = 0; i < NDEV; i++)
        ev_device_free(&d[i]);
    return 0;
}

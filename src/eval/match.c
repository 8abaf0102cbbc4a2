/* The in-process matcher: a rule against one device's values, with the semantics of the SQL
 * predicate store/eval_sql.c writes (a lacking field satisfies only !=; strings compare byte
 * for byte; attribute values compare as JSON values). */
#include "eval/match.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int ev_device_read(ev_device *d, const char *const col[EV_DEVICE_COLUMNS], seg_error *err)
{
    json_error_t je;
    memset(d, 0, sizeof *d);
    for (size_t i = 0; i < VAL_FIELD_COUNT; i++) {
        const val_field *f = val_field_at(i);
        if (f->type == VAL_FIELD_STRING_ARRAY) {
            d->tags = col[i] ? json_loads(col[i], 0, &je) : json_array();
            if (!json_is_array(d->tags))
                goto bad;
            continue;
        }
        d->text[i] = col[i];
        d->len[i] = col[i] ? strlen(col[i]) : 0;
        if (col[i] && val_field_type_range(f->type, NULL, NULL)) {
            char *end;
            errno = 0;
            long long v = strtoll(col[i], &end, 10);
            if (errno || end == col[i] || *end)
                goto bad;
            d->num[i] = v;
        }
    }
    d->attributes = col[VAL_FIELD_COUNT] ? json_loads(col[VAL_FIELD_COUNT], 0, &je) : json_object();
    if (json_is_object(d->attributes) &&
        (d->attrs = calloc(json_object_size(d->attributes) + 1, sizeof *d->attrs))) {
        const char *key;
        json_t *v;
        json_object_foreach(d->attributes, key, v) {
            d->attrs[d->n_attrs++] = (struct ev_attr){key, strlen(key), v};
        }
        return 0;
    }
bad:
    ev_device_free(d);
    err_set(err, 500, "internal", "a stored device could not be read");
    return -1;
}

void ev_device_free(ev_device *d)
{
    json_decref(d->tags);
    json_decref(d->attributes);
    free(d->attrs);
    d->tags = d->attributes = NULL;
    d->attrs = NULL;
    d->n_attrs = 0;
}

static bool has_tag(const ev_device *d, const ev_con *c)
{
    size_t i;
    json_t *t;
    json_array_foreach(d->tags, i, t) {
        if (json_string_length(t) == c->len && memcmp(json_string_value(t), c->text, c->len) == 0)
            return true;
    }
    return false;
}

static bool marked(const uint64_t *bits, uint32_t id)
{
    return bits[id / 64] >> (id % 64) & 1;
}

static bool con_holds(const ev_device *d, const ev_con *c, const uint64_t *bits)
{
    if (bits && c->vid) /* == or != on a text field or tags: whether d has the value */
        return marked(bits, c->vid) == (c->op == EV_EQ);
    if (c->kind == EV_FIELD_TAGS) {
        if (c->op == EV_EXISTS)
            return (json_array_size(d->tags) > 0) == c->flag;
        return has_tag(d, c) == (c->op == EV_EQ);
    }
    const char *s = d->text[c->field];
    size_t n = d->len[c->field];
    if (c->op == EV_EXISTS)
        return (s != NULL) == c->flag;
    bool numeric = c->kind == EV_FIELD_NUMBER;
    if (c->op == EV_NE || c->op == EV_EQ) {
        bool eq = s && (numeric ? d->num[c->field] == c->num : n == c->len && memcmp(s, c->text, n) == 0);
        return eq == (c->op == EV_EQ);
    }
    if (!s)
        return false;
    int64_t v = d->num[c->field];
    switch (c->op) {
    case EV_STARTS_WITH: return n >= c->len && memcmp(s, c->text, c->len) == 0;
    case EV_ENDS_WITH: return n >= c->len && memcmp(s + n - c->len, c->text, c->len) == 0;
    case EV_CONTAINS: return c->len == 0 || memmem(s, n, c->text, c->len) != NULL;
    case EV_GT: return v > c->num;
    case EV_GE: return v >= c->num;
    case EV_LT: return v < c->num;
    case EV_LE: return v <= c->num;
    default: return false;
    }
}

/* JSON values equal as jsonb compares them: strings byte for byte, numbers by value (4 and
 * 4.0 are one number), a string never equal to a number. */
static bool value_equal(const json_t *a, const json_t *b)
{
    if (json_is_string(a) && json_is_string(b))
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    if (json_is_integer(a) && json_is_integer(b))
        return json_integer_value(a) == json_integer_value(b);
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return false;
}

static bool prop_holds(const ev_device *d, const ev_prop *p, const uint64_t *bits)
{
    if (bits && p->vids) {
        for (size_t j = 0; j < p->n; j++)
            if (marked(bits, p->vids[j]))
                return true;
        return false;
    }
    json_t *list = NULL;
    for (size_t i = 0; i < d->n_attrs && !list; i++)
        if (d->attrs[i].len == p->code_len && memcmp(d->attrs[i].code, p->code, p->code_len) == 0)
            list = d->attrs[i].values;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        for (size_t j = 0; j < p->n; j++)
            if (value_equal(v, p->values[j]))
                return true;
    }
    return false;
}

bool ev_match(const ev_rule *r, const ev_device *d)
{
    return ev_match_with(r, d, NULL);
}

bool ev_match_with(const ev_rule *r, const ev_device *d, const uint64_t *bits)
{
    if (r->kind == EV_RULE_AUD) {
        for (size_t i = 0; i < r->n; i++)
            if (!prop_holds(d, &r->props[i], bits))
                return false;
        return true;
    }
    if (r->kind != EV_RULE_V1)
        return false;
    for (size_t g = 0; g < r->n; g++) {
        const ev_group *grp = &r->groups[g];
        /* an OR group holds at its first constraint that does, an AND group fails at its
         * first that does not: the rest are not looked at */
        bool holds = !grp->is_or;
        for (size_t i = 0; i < grp->n && holds == !grp->is_or; i++)
            holds = con_holds(d, &grp->cons[i], bits);
        if (!holds)
            return false;
    }
    return true;
}

bool ev_active(bool active, bool has_start, int64_t start_us, bool has_end, int64_t end_us,
               bool extend, int64_t now_us)
{
    return active && !(has_start && start_us > now_us) && !(has_end && end_us <= now_us && !extend);
}

const char *ev_status(bool active, bool has_start, int64_t start_us, bool has_end,
                      int64_t end_us, bool extend, int64_t now_us)
{
    if (!active)
        return "paused";
    if (has_start && start_us > now_us)
        return "scheduled";
    if (has_end && end_us <= now_us && !extend)
        return "expired";
    return "active";
}

int64_t ev_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The numbering of a set's equality values: one open-addressing hash table of (slot, bytes)
 * keys. Slots: a device field's index for its values (tags included); CODE_SLOT for the
 * attribute codes themselves (their entry's number is the code's, not a bit); for code k,
 * VAL_FIELD_COUNT + 2k for its string values and VAL_FIELD_COUNT + 2k + 1 for its numbers. */
#include "eval/lookup_index.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "validate/formats.h"

#define CODE_SLOT UINT32_MAX
#define NUM_KEY_LEN 9

typedef struct entry {
    uint64_t hash;
    uint32_t slot;
    uint32_t id;     /* 0: empty */
    size_t len;
    char *bytes;     /* malloc'd */
} entry;

typedef struct numbering {
    entry *t;
    size_t cap;      /* a power of two, 0 before the first key */
    size_t used;
    uint32_t next_id;   /* the last bit number given */
    uint32_t n_codes;
    bool field_used[VAL_FIELD_COUNT];
} numbering;

struct ev_lookup_index {
    numbering ids;
    size_t n_rules;
    uint64_t *always;      /* the rules that are candidates for every device */
    uint32_t *first;       /* value v's rules: need[first[v] .. first[v + 1]) */
    uint32_t *need;
};

static uint64_t hash_of(uint32_t slot, const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ slot;
    h *= 1099511628211ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static const entry *find(const numbering *ids, uint32_t slot, const char *s, size_t n)
{
    if (!ids->cap)
        return NULL;
    uint64_t h = hash_of(slot, s, n);
    for (size_t i = h & (ids->cap - 1);; i = (i + 1) & (ids->cap - 1)) {
        const entry *e = &ids->t[i];
        if (!e->id)
            return NULL;
        if (e->hash == h && e->slot == slot && e->len == n && memcmp(e->bytes, s, n) == 0)
            return e;
    }
}

static int grow(numbering *ids)
{
    size_t cap = ids->cap ? 2 * ids->cap : 64;
    entry *t = calloc(cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < ids->cap; i++) {
        entry *e = &ids->t[i];
        if (!e->id)
            continue;
        size_t j = e->hash & (cap - 1);
        while (t[j].id)
            j = (j + 1) & (cap - 1);
        t[j] = *e;
    }
    free(ids->t);
    ids->t = t;
    ids->cap = cap;
    return 0;
}

/* The key's number: the one it has, or a new one (*counter + 1). 0 when memory ran out. */
static uint32_t intern(numbering *ids, uint32_t slot, const char *s, size_t n, uint32_t *counter)
{
    const entry *found = find(ids, slot, s, n);
    if (found)
        return found->id;
    if ((ids->used + 1) * 2 > ids->cap && grow(ids))
        return 0;
    uint64_t h = hash_of(slot, s, n);
    size_t i = h & (ids->cap - 1);
    while (ids->t[i].id)
        i = (i + 1) & (ids->cap - 1);
    char *copy = malloc(n ? n : 1);
    if (!copy)
        return 0;
    memcpy(copy, s, n);
    ids->t[i] = (entry){h, slot, ++*counter, n, copy};
    ids->used++;
    return ids->t[i].id;
}

/* A number's key: its value as a double where a double holds it exactly (every integer
 * within ±2^53, every real: so 4 and 4.0 meet), else the integer's own bytes. */
static void num_key(const json_t *v, char out[NUM_KEY_LEN])
{
    double d;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < -(1LL << 53) || i > (1LL << 53)) {
            out[0] = 'i';
            memcpy(out + 1, &i, 8);
            return;
        }
        d = (double)i;
    } else {
        d = json_real_value(v);
    }
    if (d == 0)
        d = 0; /* -0.0 is 0 */
    out[0] = 'n';
    memcpy(out + 1, &d, 8);
}

/* The slot of a value of code number k (numbered from 1). */
static uint32_t value_slot(uint32_t k, bool number)
{
    return VAL_FIELD_COUNT + 2 * (k - 1) + (number ? 1 : 0);
}

/* Numbers the rule's equality values. 0, or -1 when memory ran out. */
static int number_rule(numbering *ids, ev_rule *r)
{
    if (r->kind == EV_RULE_V1) {
        for (size_t g = 0; g < r->n; g++)
            for (size_t i = 0; i < r->groups[g].n; i++) {
                ev_con *c = &r->groups[g].cons[i];
                if (c->kind == EV_FIELD_NUMBER || (c->op != EV_EQ && c->op != EV_NE))
                    continue;
                if (!(c->vid = intern(ids, c->field, c->text, c->len, &ids->next_id)))
                    return -1;
                ids->field_used[c->field] = true;
            }
    } else if (r->kind == EV_RULE_AUD) {
        for (size_t i = 0; i < r->n; i++) {
            ev_prop *p = &r->props[i];
            uint32_t k = intern(ids, CODE_SLOT, p->code, p->code_len, &ids->n_codes);
            free(p->vids); /* numbered by an index before */
            if (!k || !(p->vids = calloc(p->n, sizeof *p->vids)))
                return -1;
            for (size_t j = 0; j < p->n; j++) {
                const json_t *v = p->values[j];
                char key[NUM_KEY_LEN];
                if (json_is_string(v)) {
                    p->vids[j] = intern(ids, value_slot(k, false), json_string_value(v),
                                        json_string_length(v), &ids->next_id);
                } else {
                    num_key(v, key);
                    p->vids[j] = intern(ids, value_slot(k, true), key, sizeof key, &ids->next_id);
                }
                if (!p->vids[j])
                    return -1;
            }
        }
    }
    return 0;
}

static void mark(const numbering *ids, uint32_t slot, const char *s, size_t n, uint64_t *bits)
{
    const entry *e = find(ids, slot, s, n);
    if (e)
        bits[e->id / 64] |= 1ull << (e->id % 64);
}

static void mark_values(const numbering *ids, const ev_device *d, uint64_t *bits)
{
    for (uint32_t f = 0; f < VAL_FIELD_COUNT; f++) {
        if (!ids->field_used[f])
            continue;
        if (val_field_at(f)->type == VAL_FIELD_STRING_ARRAY) {
            size_t i;
            json_t *tag;
            json_array_foreach(d->tags, i, tag) {
                if (json_is_string(tag))
                    mark(ids, f, json_string_value(tag), json_string_length(tag), bits);
            }
        } else if (d->text[f]) {
            mark(ids, f, d->text[f], d->len[f], bits);
        }
    }
    for (size_t a = 0; ids->n_codes && a < d->n_attrs; a++) {
        const entry *code = find(ids, CODE_SLOT, d->attrs[a].code, d->attrs[a].len);
        if (!code)
            continue;
        size_t i;
        json_t *v;
        json_array_foreach(d->attrs[a].values, i, v) {
            char key[NUM_KEY_LEN];
            if (json_is_string(v)) {
                mark(ids, value_slot(code->id, false), json_string_value(v), json_string_length(v), bits);
            } else if (json_is_number(v)) {
                num_key(v, key);
                mark(ids, value_slot(code->id, true), key, sizeof key, bits);
            }
        }
    }
}

/* The values rule r cannot hold without one of: how many, written to out when not NULL;
 * NONE when it has no such values (the first AND group with an ==, the first OR group of
 * only ==, or an /audiences rule's first property give them). */
#define NONE SIZE_MAX

static size_t needed(const ev_rule *r, uint32_t *out)
{
    if (r->kind == EV_RULE_AUD) {
        if (out)
            memcpy(out, r->props[0].vids, r->props[0].n * sizeof *out);
        return r->props[0].n;
    }
    for (size_t g = 0; r->kind == EV_RULE_V1 && g < r->n; g++) {
        const ev_group *grp = &r->groups[g];
        bool all_eq = true;
        for (size_t i = 0; i < grp->n; i++) {
            const ev_con *c = &grp->cons[i];
            bool eq = c->vid && c->op == EV_EQ;
            if (eq && (!grp->is_or || grp->n == 1)) {
                if (out)
                    out[0] = c->vid;
                return 1;
            }
            all_eq = all_eq && eq;
        }
        if (grp->is_or && all_eq) {
            for (size_t i = 0; out && i < grp->n; i++)
                out[i] = grp->cons[i].vid;
            return grp->n;
        }
    }
    return NONE;
}

void ev_index_free(ev_lookup_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->ids.cap; i++)
        free(ix->ids.t[i].bytes);
    free(ix->ids.t);
    free(ix->always);
    free(ix->first);
    free(ix->need);
    free(ix);
}

size_t ev_index_value_words(const ev_lookup_index *ix)
{
    return ix->ids.next_id / 64 + 1;
}

size_t ev_index_rule_words(const ev_lookup_index *ix)
{
    return ix->n_rules / 64 + 1;
}

ev_lookup_index *ev_index_build(ev_rule *const *rules, size_t n)
{
    ev_lookup_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return NULL;
    ix->n_rules = n;
    for (size_t i = 0; i < n; i++)
        if (number_rule(&ix->ids, rules[i]))
            goto oom;
    size_t values = ix->ids.next_id + 1, total = 0, most = 0;
    if (!(ix->always = calloc(ev_index_rule_words(ix), sizeof *ix->always)) ||
        !(ix->first = calloc(values + 1, sizeof *ix->first)))
        goto oom;
    /* count each value's rules, then slice need by value (first[v + 1] ends v's slice) */
    for (size_t i = 0; i < n; i++) {
        size_t k = needed(rules[i], NULL);
        if (k == NONE) {
            if (rules[i]->kind != EV_RULE_NONE)
                ix->always[i / 64] |= 1ull << (i % 64);
            continue;
        }
        total += k;
        most = k > most ? k : most;
    }
    uint32_t *vids = malloc((most ? most : 1) * sizeof *vids);
    if (!vids || !(ix->need = malloc((total ? total : 1) * sizeof *ix->need))) {
        free(vids);
        goto oom;
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = needed(rules[i], vids);
        for (size_t j = 0; k != NONE && j < k; j++)
            ix->first[vids[j] + 1]++;
    }
    for (size_t v = 1; v <= values; v++)
        ix->first[v] += ix->first[v - 1];
    uint32_t *fill = calloc(values, sizeof *fill);
    if (!fill) {
        free(vids);
        goto oom;
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = needed(rules[i], vids);
        for (size_t j = 0; k != NONE && j < k; j++)
            ix->need[ix->first[vids[j]] + fill[vids[j]]++] = (uint32_t)i;
    }
    free(fill);
    free(vids);
    return ix;
oom:
    ev_index_free(ix);
    return NULL;
}

void ev_index_device(const ev_lookup_index *ix, const ev_device *d, uint64_t *values, uint64_t *rules)
{
    size_t vw = ev_index_value_words(ix), rw = ev_index_rule_words(ix);
    mark_values(&ix->ids, d, values);
    memcpy(rules, ix->always, rw * sizeof *rules);
    for (size_t w = 0; w < vw; w++)
        for (uint64_t bits = values[w]; bits; bits &= bits - 1) {
            size_t v = w * 64 + (size_t)__builtin_ctzll(bits);
            for (uint32_t k = ix->first[v]; k < ix->first[v + 1]; k++)
                rules[ix->need[k] / 64] |= 1ull << (ix->need[k] % 64);
        }
}

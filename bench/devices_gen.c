/* bench/devices_gen.c — the devices of bench/run's device_bulk and device_import scenarios,
 * written once per run, fast (a million lines in about a second), and the same rows for
 * both sides of each comparison.
 *
 *   devices_gen ndjson PREFIX LINES NDJSON [COPY IMPORT]
 *       LINES lines of NDJSON, one device a line (a PUT /v1/devices/{id} body with its id,
 *       ids PREFIX-0000001 …), for POST /v1/devices/imports; with COPY, the same rows as
 *       COPY text for device_import_rows (migrations/0004_device_imports.sql): import
 *       (= IMPORT), line, id, then the devices table's columns.
 *   devices_gen ndjson-bytes PREFIX BYTES NDJSON
 *       as many such lines as fit in BYTES (the memory step's 1 GB import).
 *   devices_gen bulk PREFIX BATCHES SIZE POOL SEED OUTDIR
 *       BATCHES requests of SIZE devices whose ids are drawn at random from PREFIX-1 …
 *       PREFIX-POOL (no id twice in one request): OUTDIR/bulk_K.json is the
 *       POST /v1/devices/bulk body {"data": [...]}, OUTDIR/bulk_K.recs the array alone —
 *       byte for byte the records segmentd binds to device_bulk_upsert (handlers/bulk_items.c:
 *       id, then the fields in the field table's order, then tags and attributes). Prints
 *       one line per request: K, the ids not drawn before (creates), the others (replaces).
 *
 * A device is a function of its number and of a version (the request's number), so that
 * a replace changes it: several fields, a few tags, an attributes object, some fields
 * left out as real devices leave them. Nothing in it needs escaping in JSON, in COPY text
 * or in an array literal. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const countries[] = {"PL", "DE", "FR", "US", "GB", "ES", "IT", "NL", "BR", "IN"};
static const char *const languages[] = {"pol", "deu", "fra", "eng", "eng", "spa", "ita", "dut", "por", "hin"};
static const char *const timezones[] = {"Europe/Warsaw", "Europe/Berlin", "Europe/Paris", "America/New_York",
                                        "Europe/London", "Europe/Madrid", "Europe/Rome", "Europe/Amsterdam",
                                        "America/Sao_Paulo", "Asia/Kolkata"};
static const char *const models[][2] = {{"Pixel 8", "Google"}, {"Galaxy S23", "Samsung"}, {"iPhone 15", "Apple"},
                                        {"Redmi Note 12", "Xiaomi"}, {"iPad Air", "Apple"},
                                        {"Galaxy Tab S9", "Samsung"}, {"Watch 6", "Samsung"}};
static const char *const types[] = {"phone", "phone", "phone", "phone", "tablet", "tablet", "smartwatch"};
static const char *const tag_names[] = {"vip", "beta", "newsletter", "churn-risk", "promo-2026", "loyal",
                                        "trial", "premium", "push-opt-in", "sms-opt-in", "gamer", "traveller"};
static const char *const interests[] = {"sports", "music", "travel", "cooking", "movies", "tech", "fashion",
                                        "finance"};
static const char *const plans[] = {"free", "basic", "premium", "family"};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t mix(uint64_t x) /* splitmix64's finaliser: a good hash of the device number */
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

typedef struct {
    char buf[2048];
    size_t n;
} out;

static void put(out *o, const char *s)
{
    size_t l = strlen(s);
    memcpy(o->buf + o->n, s, l);
    o->n += l;
}

static void putu(out *o, uint64_t v)
{
    char t[24];
    int i = 24;
    do
        t[--i] = (char)('0' + v % 10);
    while (v /= 10);
    memcpy(o->buf + o->n, t + i, (size_t)(24 - i));
    o->n += (size_t)(24 - i);
}

static void putid(out *o, const char *prefix, uint64_t k)
{
    char t[96];
    snprintf(t, sizeof t, "%s-%07llu", prefix, (unsigned long long)k);
    put(o, t);
}

/* One device's values; a NULL string or a negative number is a field left out. */
typedef struct {
    const char *country, *language, *timezone, *type, *model, *maker;
    char app_version[16], os_api[8], os_version[8], user[24], email[48], push[72];
    long long app_code, first, last, sessions, created, unreg;
    int ntags, tags[4];
    int ninterest, interest[3], plan, level;
} device;

static void make(device *d, uint64_t k, uint64_t version)
{
    uint64_t h = mix(k), v = mix(k * 1000003 + version);
    int c = (int)(h % N(countries)), m = (int)(h / 16 % N(models));
    d->country = countries[c];
    d->language = languages[c];
    d->timezone = timezones[c];
    d->model = models[m][0];
    d->maker = models[m][1];
    d->type = types[m];
    int major = 4 + (int)(v % 3), minor = (int)(v / 8 % 10);
    snprintf(d->app_version, sizeof d->app_version, "%d.%d.%d", major, minor, (int)(v / 128 % 5));
    d->app_code = major * 100 + minor * 10;
    snprintf(d->os_api, sizeof d->os_api, "%d", 28 + (int)(h / 256 % 7));
    snprintf(d->os_version, sizeof d->os_version, "%d", 9 + (int)(h / 256 % 7));
    d->first = 1700000000000LL + (long long)(h / 4096 % 50000000000ULL);
    d->created = d->first - 1000;
    d->last = d->first + (long long)(version * 3600000ULL) + (long long)(v / 65536 % 3600000);
    d->sessions = 1 + (long long)(version * 3 + v / 1024 % 200);
    d->user[0] = d->email[0] = d->push[0] = '\0';
    if (h / 7 % 2)
        snprintf(d->user, sizeof d->user, "u%llu", (unsigned long long)(k * 7919 % 100000000));
    if (h / 11 % 5 < 2)
        snprintf(d->email, sizeof d->email, "user%llu@example.com", (unsigned long long)k);
    if (h / 13 % 5 < 4)
        snprintf(d->push, sizeof d->push, "%016llx%016llx%016llx%016llx", (unsigned long long)mix(h),
                 (unsigned long long)mix(h + 1), (unsigned long long)mix(h + 2), (unsigned long long)mix(h + 3));
    d->unreg = h / 17 % 20 == 0 ? d->last + 86400000LL : -1;
    d->ntags = (int)(v / 3 % 5); /* 0 to 4 distinct tags */
    for (int i = 0; i < d->ntags; i++)
        d->tags[i] = (int)((v / 5 + (uint64_t)i * 5) % N(tag_names)); /* steps of 5 mod 12: distinct */
    d->ninterest = 1 + (int)(h / 19 % 3);
    for (int i = 0; i < d->ninterest; i++)
        d->interest[i] = (int)((h / 23 + (uint64_t)i * 3) % N(interests)); /* steps of 3 mod 8: distinct */
    d->plan = (int)(v / 29 % N(plans));
    d->level = 1 + (int)(v / 31 % 50);
}

static void kstr(out *o, const char *key, const char *v)
{
    if (!v || !*v)
        return;
    put(o, ",\"");
    put(o, key);
    put(o, "\":\"");
    put(o, v);
    put(o, "\"");
}

static void knum(out *o, const char *key, long long v)
{
    if (v < 0)
        return;
    put(o, ",\"");
    put(o, key);
    put(o, "\":");
    putu(o, (uint64_t)v);
}

/* The JSON object, keys in the order segmentd writes a bulk record. */
static void json(out *o, const device *d, const char *prefix, uint64_t k)
{
    put(o, "{\"id\":\"");
    putid(o, prefix, k);
    put(o, "\"");
    kstr(o, "country", d->country);
    kstr(o, "language", d->language);
    kstr(o, "timezone", d->timezone);
    kstr(o, "appVersion", d->app_version);
    knum(o, "appVersionCode", d->app_code);
    kstr(o, "osApi", d->os_api);
    kstr(o, "osVersion", d->os_version);
    kstr(o, "customUserId", d->user);
    kstr(o, "email", d->email);
    kstr(o, "type", d->type);
    knum(o, "firstSession", d->first);
    knum(o, "lastSession", d->last);
    knum(o, "sessionCount", d->sessions);
    knum(o, "createdAt", d->created);
    kstr(o, "pushToken", d->push);
    knum(o, "unRegisteredAt", d->unreg);
    kstr(o, "deviceModel", d->model);
    kstr(o, "deviceManufacturer", d->maker);
    put(o, ",\"tags\":[");
    for (int i = 0; i < d->ntags; i++) {
        put(o, i ? ",\"" : "\"");
        put(o, tag_names[d->tags[i]]);
        put(o, "\"");
    }
    put(o, "],\"attributes\":{\"interest\":[");
    for (int i = 0; i < d->ninterest; i++) {
        put(o, i ? ",\"" : "\"");
        put(o, interests[d->interest[i]]);
        put(o, "\"");
    }
    put(o, "],\"plan\":[\"");
    put(o, plans[d->plan]);
    put(o, "\"],\"level\":[");
    putu(o, (uint64_t)d->level);
    put(o, "]}}");
}

static void cstr(out *o, const char *v)
{
    put(o, "\t");
    put(o, v && *v ? v : "\\N");
}

static void cnum(out *o, long long v)
{
    put(o, "\t");
    if (v < 0)
        put(o, "\\N");
    else
        putu(o, (uint64_t)v);
}

/* The same device as a COPY text row of device_import_rows. */
static void copyrow(out *o, const device *d, uint64_t import, uint64_t line, const char *prefix, uint64_t k)
{
    putu(o, import);
    put(o, "\t");
    putu(o, line);
    put(o, "\t");
    putid(o, prefix, k);
    cstr(o, d->country);
    cstr(o, d->language);
    cstr(o, d->timezone);
    cstr(o, d->app_version);
    cnum(o, d->app_code);
    cstr(o, d->os_api);
    cstr(o, d->os_version);
    cstr(o, d->user);
    cstr(o, d->email);
    cstr(o, d->type);
    cnum(o, d->first);
    cnum(o, d->last);
    cnum(o, d->sessions);
    cnum(o, d->created);
    cstr(o, d->push);
    cnum(o, d->unreg);
    cstr(o, d->model);
    cstr(o, d->maker);
    put(o, "\t{");
    for (int i = 0; i < d->ntags; i++) {
        if (i)
            put(o, ",");
        put(o, tag_names[d->tags[i]]);
    }
    put(o, "}\t{\"interest\": [");
    for (int i = 0; i < d->ninterest; i++) {
        put(o, i ? ", \"" : "\"");
        put(o, interests[d->interest[i]]);
        put(o, "\"");
    }
    put(o, "], \"plan\": [\"");
    put(o, plans[d->plan]);
    put(o, "\"], \"level\": [");
    putu(o, (uint64_t)d->level);
    put(o, "]}\n");
}

static FILE *open_out(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "devices_gen: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    return f;
}

static void close_out(FILE *f, const char *path)
{
    if (ferror(f) || fclose(f)) {
        fprintf(stderr, "devices_gen: writing %s failed\n", path);
        exit(1);
    }
}

static int ndjson(const char *prefix, uint64_t lines, uint64_t max_bytes, const char *path, const char *copy_path,
                  uint64_t import)
{
    FILE *f = open_out(path), *c = copy_path ? open_out(copy_path) : NULL;
    uint64_t bytes = 0;
    out o;
    for (uint64_t k = 1; k <= lines; k++) {
        device d;
        make(&d, k, 0);
        o.n = 0;
        json(&o, &d, prefix, k);
        put(&o, "\n");
        if (max_bytes && bytes + o.n > max_bytes)
            break;
        bytes += o.n;
        fwrite(o.buf, 1, o.n, f);
        if (c) {
            o.n = 0;
            copyrow(&o, &d, import, k, prefix, k);
            fwrite(o.buf, 1, o.n, c);
        }
    }
    close_out(f, path);
    if (c)
        close_out(c, copy_path);
    return 0;
}

static int bulk(const char *prefix, int batches, int size, uint64_t pool, uint64_t seed, const char *dir)
{
    if ((uint64_t)size > pool) {
        fprintf(stderr, "devices_gen: a request of %d cannot draw distinct ids from %llu\n", size,
                (unsigned long long)pool);
        return 1;
    }
    unsigned char *seen = calloc(pool + 1, 1), *in = calloc(pool + 1, 1);
    uint64_t *ids = malloc((size_t)size * sizeof *ids), s = seed;
    if (!seen || !in || !ids)
        return 1;
    for (int b = 1; b <= batches; b++) {
        int creates = 0;
        for (int i = 0; i < size;) {
            uint64_t k = 1 + (s = mix(s)) % pool;
            if (in[k])
                continue;
            in[k] = 1;
            ids[i++] = k;
            creates += !seen[k];
            seen[k] = 1;
        }
        char jp[4096], rp[4096];
        snprintf(jp, sizeof jp, "%s/bulk_%d.json", dir, b);
        snprintf(rp, sizeof rp, "%s/bulk_%d.recs", dir, b);
        FILE *j = open_out(jp), *r = open_out(rp);
        fputs("{\"data\":[", j);
        fputs("[", r);
        out o;
        for (int i = 0; i < size; i++) {
            device d;
            make(&d, ids[i], (uint64_t)b);
            o.n = 0;
            if (i)
                put(&o, ",");
            json(&o, &d, prefix, ids[i]);
            fwrite(o.buf, 1, o.n, j);
            fwrite(o.buf, 1, o.n, r);
            in[ids[i]] = 0;
        }
        fputs("]}", j);
        fputs("]", r);
        close_out(j, jp);
        close_out(r, rp);
        printf("%d %d %d\n", b, creates, size - creates);
    }
    free(seen);
    free(in);
    free(ids);
    return 0;
}

static uint64_t arg(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s) {
        fprintf(stderr, "devices_gen: not a number: %s\n", s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "ndjson"))
        return ndjson(argv[2], arg(argv[3]), 0, argv[4], NULL, 0);
    if (argc == 7 && !strcmp(argv[1], "ndjson"))
        return ndjson(argv[2], arg(argv[3]), 0, argv[4], argv[5], arg(argv[6]));
    if (argc == 5 && !strcmp(argv[1], "ndjson-bytes"))
        return ndjson(argv[2], UINT64_MAX, arg(argv[3]), argv[4], NULL, 0);
    if (argc == 8 && !strcmp(argv[1], "bulk"))
        return bulk(argv[2], (int)arg(argv[3]), (int)arg(argv[4]), arg(argv[5]), arg(argv[6]), argv[7]);
    fprintf(stderr, "usage: devices_gen ndjson PREFIX LINES NDJSON [COPY IMPORT]\n"
                    "       devices_gen ndjson-bytes PREFIX BYTES NDJSON\n"
                    "       devices_gen bulk PREFIX BATCHES SIZE POOL SEED OUTDIR\n");
    return 2;
}

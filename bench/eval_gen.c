/* bench/eval_gen.c — the devices of bench/run's evaluation scenarios (issue #22): COPY text
 * for the devices table, fast (a million rows in about a second), with skewed distributions
 * over the /v1 fields as real devices have them.
 *
 *   eval_gen TENANT N   → stdout: N rows for
 *       COPY devices (tenant, id, country, language, timezone, app_version, app_version_code,
 *                     os_api, os_version, custom_user_id, email, type, first_session,
 *                     last_session, session_count, created_at, push_token, un_registered_at,
 *                     device_model, device_manufacturer, tags, attributes) FROM STDIN
 *
 * Ids ev-0000001 … in the order written, and devices registered over three years in that
 * order (createdAt grows with the id, as rows land in a real table): the physical order of
 * the table follows createdAt and firstSession. A device is a function of its number.
 * Distributions (weights, not uniform): country (US 22 %, IN 14 %, BR 10 %, DE 8 %, …),
 * the language of the country for 90 %, model with its manufacturer and type (iPhones,
 * Galaxy, Redmi, tablets, watches, desktops), app versions skewed towards the latest release,
 * session counts log-uniform 1–3000, last session exponential in recency (mean 45 days, or
 * long gone for churned devices), 0–5 tags from twelve with per-tag probabilities, and
 * attributes {"interest": 1–3 of ten (skewed), "plan": one of four, "level": one of 1–50}. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_MS 1796083200000LL              /* 2026-12-01 */
#define SPAN_MS (3LL * 365 * 86400000LL)    /* devices created over three years before NOW */
#define DAY_MS 86400000LL

typedef struct { const char *code, *lang, *tz; int w; } country_t;
static const country_t countries[] = {
    {"US", "eng", "America/New_York", 22}, {"IN", "hin", "Asia/Kolkata", 14}, {"BR", "por", "America/Sao_Paulo", 10},
    {"DE", "deu", "Europe/Berlin", 8},     {"GB", "eng", "Europe/London", 7}, {"FR", "fra", "Europe/Paris", 6},
    {"PL", "pol", "Europe/Warsaw", 5},     {"ES", "spa", "Europe/Madrid", 4}, {"IT", "ita", "Europe/Rome", 4},
    {"MX", "spa", "America/Mexico_City", 4}, {"NL", "dut", "Europe/Amsterdam", 3}, {"JP", "jpn", "Asia/Tokyo", 3},
    {"ID", "ind", "Asia/Jakarta", 3},      {"TR", "tur", "Europe/Istanbul", 2}, {"CA", "eng", "America/Toronto", 2},
    {"SE", "swe", "Europe/Stockholm", 1},  {"AR", "spa", "America/Argentina/Buenos_Aires", 1},
    {"ZA", "eng", "Africa/Johannesburg", 1}, {"KR", "kor", "Asia/Seoul", 1},
};
typedef struct { const char *model, *maker, *type; int w; } model_t;
static const model_t models[] = {
    {"iPhone 15", "Apple", "phone", 11},       {"iPhone 14", "Apple", "phone", 9},
    {"iPhone 13", "Apple", "phone", 7},        {"Galaxy A54", "Samsung", "phone", 8},
    {"Galaxy S23", "Samsung", "phone", 6},     {"Galaxy S24", "Samsung", "phone", 4},
    {"Redmi Note 13", "Xiaomi", "phone", 7},   {"Redmi Note 12", "Xiaomi", "phone", 5},
    {"Pixel 8", "Google", "phone", 3},         {"Pixel 7", "Google", "phone", 2},
    {"Moto G84", "Motorola", "phone", 3},      {"OnePlus 11", "OnePlus", "phone", 2},
    {"Galaxy Tab S9", "Samsung", "tablet", 2}, {"iPad Air", "Apple", "tablet", 4},
    {"iPad 10", "Apple", "tablet", 3},         {"Redmi Pad", "Xiaomi", "tablet", 1},
    {"Apple Watch 9", "Apple", "smartwatch", 2}, {"Galaxy Watch 6", "Samsung", "smartwatch", 2},
    {"MacBook Pro", "Apple", "desktop", 2},    {"XPS 13", "Dell", "desktop", 2},
    {"ThinkPad X1", "Lenovo", "desktop", 1},
};
typedef struct { const char *name; int permille; } tag_t;
static const tag_t tags[] = {
    {"push-opt-in", 600}, {"newsletter", 250}, {"promo-2026", 200}, {"loyal", 150}, {"trial", 120},
    {"churn-risk", 100}, {"sms-opt-in", 100}, {"premium", 80}, {"gamer", 70}, {"traveller", 60},
    {"beta", 50}, {"vip", 30},
};
static const char *const interests[] = {"sports", "music", "travel", "movies", "tech", "cooking",
                                        "fashion", "finance", "gardening", "pets"};
static const int interest_w[] = {20, 18, 14, 12, 10, 8, 7, 5, 3, 3};
static const char *const plans[] = {"free", "basic", "premium", "family"};
static const int plan_w[] = {70, 15, 10, 5};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t st;
static uint64_t next(void) /* splitmix64 */
{
    uint64_t x = (st += 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
static double unit(void) { return (double)(next() >> 11) / 9007199254740992.0; }
static int pick(const int *w, size_t n, size_t stride)
{
    int total = 0;
    for (size_t i = 0; i < n; i++)
        total += *(const int *)((const char *)w + i * stride);
    int x = (int)(next() % (uint64_t)total);
    for (size_t i = 0; i < n; i++) {
        x -= *(const int *)((const char *)w + i * stride);
        if (x < 0)
            return (int)i;
    }
    return (int)n - 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: eval_gen TENANT N\n");
        return 2;
    }
    const char *tenant = argv[1];
    long long n = atoll(argv[2]);
    static char buf[1 << 20];
    setvbuf(stdout, buf, _IOFBF, sizeof buf);
    for (long long k = 1; k <= n; k++) {
        st = (uint64_t)k * 0x2545F4914F6CDD1Dull + 22;
        const country_t *c = &countries[pick(&countries[0].w, N(countries), sizeof countries[0])];
        const char *lang = unit() < 0.9 ? c->lang : "eng";
        int mi = unit() < 0.02 ? -1 : pick(&models[0].w, N(models), sizeof models[0]);
        const model_t *m = mi < 0 ? NULL : &models[mi];
        /* releases 5.0 … 5.12, the latest most used: each older minor ~25 % less likely */
        int minor = 12;
        while (minor > 0 && unit() < 0.3)
            minor--;
        int patch = (int)(next() % 4);
        long long created = NOW_MS - SPAN_MS + (long long)((double)SPAN_MS * (double)(k - 1) / (double)n) +
                            (long long)(next() % 3600000);
        long long first = created + (long long)(next() % 600000);
        long long last;
        if (unit() < 0.35) /* churned: gone some time after the first session */
            last = first + (long long)(unit() * (double)(NOW_MS - first) * 0.5);
        else
            last = NOW_MS - (long long)(-log(1 - unit()) * 45.0 * DAY_MS);
        if (last < first)
            last = first;
        int sessions = (int)floor(exp(unit() * log(3000.0)));
        printf("%s\tev-%07lld\t%s\t%s\t%s\t5.%d.%d\t%d\t", tenant, k, c->code, lang, c->tz, minor, patch,
               50000 + minor * 100 + patch);
        int apple = m && !strcmp(m->maker, "Apple");
        int osv = apple ? 16 + (int)(next() % 3) : 12 + (int)(next() % 3);
        if (apple)
            printf("\\N\t%d\t", osv);
        else
            printf("%d\t%d\t", 20 + osv, osv);
        if (unit() < 0.5)
            printf("u%lld\t", k * 7919 % 100000000);
        else
            printf("\\N\t");
        if (unit() < 0.4)
            printf("user%lld@example.com\t", k);
        else
            printf("\\N\t");
        printf("%s\t%lld\t%lld\t%d\t%lld\t", m ? m->type : "phone", first, last, sessions, created);
        if (unit() < 0.8)
            printf("%016llx%016llx\t", (unsigned long long)next(), (unsigned long long)next());
        else
            printf("\\N\t");
        if (unit() < 0.05)
            printf("%lld\t", last + DAY_MS);
        else
            printf("\\N\t");
        if (m)
            printf("%s\t%s\t{", m->model, m->maker);
        else
            printf("\\N\t\\N\t{");
        int nt = 0;
        for (size_t t = 0; t < N(tags) && nt < 5; t++)
            if ((int)(next() % 1000) < tags[t].permille)
                printf(nt++ ? ",%s" : "%s", tags[t].name);
        printf("}\t{\"interest\": [");
        int ni = 1 + (int)(next() % 3), got[3], g = 0;
        while (g < ni) {
            int x = pick(interest_w, N(interest_w), sizeof interest_w[0]), dup = 0;
            for (int j = 0; j < g; j++)
                dup |= got[j] == x;
            if (!dup)
                got[g++] = x;
        }
        for (int j = 0; j < ni; j++)
            printf(j ? ", \"%s\"" : "\"%s\"", interests[got[j]]);
        printf("], \"plan\": [\"%s\"], \"level\": [%d]}\n", plans[pick(plan_w, N(plan_w), sizeof plan_w[0])],
               1 + (int)floor(50 * pow(unit(), 2)));
    }
    return fflush(stdout) ? 1 : 0;
}

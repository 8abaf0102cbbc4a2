/* Server-assigned identifiers and the base64url used by opaque cursors. */
#include "core/ids.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uuid/uuid.h>

static int getrandom_all(unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Random bytes from the kernel's CSPRNG, drawn 256 at a time per thread: a bulk request
 * of 1000 creates makes 40 getrandom calls instead of 1000. Bytes handed out are wiped
 * from the buffer. */
static int fill_random(unsigned char *buf, size_t n)
{
    static __thread unsigned char pool[256];
    static __thread size_t pos = sizeof pool;
    if (n > sizeof pool)
        return getrandom_all(buf, n);
    if (pos + n > sizeof pool) {
        if (getrandom_all(pool, sizeof pool))
            return -1;
        pos = 0;
    }
    memcpy(buf, pool + pos, n);
    memset(pool + pos, 0, n);
    pos += n;
    return 0;
}

int ids_uuid_v7(char out[37])
{
    uuid_t u;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) || fill_random(u + 6, 10))
        return -1;
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)(ts.tv_nsec / 1000000);
    for (int i = 0; i < 6; i++)
        u[i] = (unsigned char)(ms >> (40 - 8 * i));
    u[6] = (unsigned char)((u[6] & 0x0F) | 0x70); /* version 7 (RFC 9562) */
    u[8] = (unsigned char)((u[8] & 0x3F) | 0x80); /* variant 10 */
    uuid_unparse_lower(u, out);
    return 0;
}

/* prefix (4 characters) + 13 base62 characters. */
static int prefixed_id(const char prefix[5], char out[IDS_SEG_LEN + 1])
{
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char buf[32];
    int n = 0;
    memcpy(out, prefix, 4);
    while (n < 13) {
        if (fill_random(buf, sizeof buf))
            return -1;
        for (size_t i = 0; i < sizeof buf && n < 13; i++)
            if (buf[i] < 248) /* 248 = 4 * 62: rejection keeps the draw uniform */
                out[4 + n++] = b62[buf[i] % 62];
    }
    out[IDS_SEG_LEN] = '\0';
    return 0;
}

int ids_seg_id(char out[IDS_SEG_LEN + 1])
{
    return prefixed_id("seg_", out);
}

int ids_import_id(char out[IDS_IMPORT_LEN + 1])
{
    return prefixed_id("imp_", out);
}

bool ids_is_import_id(const char *s)
{
    return ids_is_prefixed(s, "imp_");
}

int ids_random(unsigned char *out, size_t n)
{
    return getrandom_all(out, n);
}

int ids_webhook_id(char out[IDS_WEBHOOK_LEN + 1])
{
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    struct timespec ts;
    char tail[IDS_SEG_LEN + 1];
    if (clock_gettime(CLOCK_REALTIME, &ts) || prefixed_id("xxx_", tail))
        return -1;
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)(ts.tv_nsec / 1000000);
    memcpy(out, "wh_", 3);
    for (int i = 6; i >= 0; i--) { /* 62^7 ms: until the year 2081 */
        out[3 + i] = b62[ms % 62];
        ms /= 62;
    }
    memcpy(out + 10, tail + 4, 6);
    out[IDS_WEBHOOK_LEN] = '\0';
    return 0;
}

bool ids_is_prefixed(const char *s, const char *prefix)
{
    size_t p = strlen(prefix);
    if (strncmp(s, prefix, p) != 0)
        return false;
    for (size_t i = p; i < p + 13; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')))
            return false;
    return s[p + 13] == '\0';
}

static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void ids_b64url_encode(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64u[(v >> 18) & 63];
        out[o++] = b64u[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = b64u[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = b64u[v & 63];
    }
    out[o] = '\0';
}

int ids_b64url_decode(const char *in, unsigned char *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (; *in; in++) {
        const char *p = strchr(b64u, *in);
        if (!p || !*in)
            return -1;
        acc = (acc << 6) | (uint32_t)(p - b64u);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (int)o;
}

/* The files of the API reference page (docs/reference/), assembled into the binary with
 * .incbin, so GET /docs needs no files at run time and works offline and in the image.
 * CMake rebuilds this object when one of them changes (OBJECT_DEPENDS in CMakeLists.txt).
 * Each file gets a strong ETag, a hash of its bytes computed once at first use. */
#include "handlers/docs_assets.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

/* Defines segmentd_docs_<sym> .. segmentd_docs_<sym>_end around the bytes of
 * docs/reference/<file>, followed by a NUL byte, in read-only data. The path comes from
 * SEGMENTD_SOURCE_DIR (CMake), so the assembler finds it whatever the build folder. */
#define DOCS_INCBIN(sym, file)                                                                 \
    __asm__(".pushsection .rodata\n"                                                           \
            ".balign 16\n"                                                                     \
            ".globl segmentd_docs_" #sym "\n"                                                  \
            ".hidden segmentd_docs_" #sym "\n"                                                 \
            "segmentd_docs_" #sym ":\n"                                                        \
            ".incbin \"" SEGMENTD_SOURCE_DIR "/docs/reference/" file "\"\n"                    \
            ".globl segmentd_docs_" #sym "_end\n"                                              \
            ".hidden segmentd_docs_" #sym "_end\n"                                             \
            "segmentd_docs_" #sym "_end:\n"                                                    \
            ".byte 0\n"                                                                        \
            ".popsection\n");                                                                  \
    extern const unsigned char segmentd_docs_##sym[] __attribute__((visibility("hidden")));    \
    extern const unsigned char segmentd_docs_##sym##_end[] __attribute__((visibility("hidden")))

DOCS_INCBIN(index, "index.html");
DOCS_INCBIN(reference, "reference.js");
DOCS_INCBIN(bundle, "vendor/swagger-ui-bundle.js");
DOCS_INCBIN(css, "vendor/swagger-ui.css");
DOCS_INCBIN(icon, "vendor/favicon-32x32.png");
DOCS_INCBIN(license, "vendor/LICENSE");
DOCS_INCBIN(notice, "vendor/NOTICE");
DOCS_INCBIN(bundle_licenses, "vendor/swagger-ui-bundle.js.LICENSE.txt");

#define JS "text/javascript; charset=utf-8" /* RFC 9239 */
#define TEXT "text/plain; charset=utf-8"

static const struct {
    const char *name;
    const char *content_type;
    const unsigned char *start, *end;
} files[] = {
    {"", "text/html; charset=utf-8", segmentd_docs_index, segmentd_docs_index_end},
    {"reference.js", JS, segmentd_docs_reference, segmentd_docs_reference_end},
    {"swagger-ui-bundle.js", JS, segmentd_docs_bundle, segmentd_docs_bundle_end},
    {"swagger-ui.css", "text/css; charset=utf-8", segmentd_docs_css, segmentd_docs_css_end},
    {"favicon-32x32.png", "image/png", segmentd_docs_icon, segmentd_docs_icon_end},
    {"LICENSE", TEXT, segmentd_docs_license, segmentd_docs_license_end},
    {"NOTICE", TEXT, segmentd_docs_notice, segmentd_docs_notice_end},
    {"swagger-ui-bundle.js.LICENSE.txt", TEXT, segmentd_docs_bundle_licenses,
     segmentd_docs_bundle_licenses_end},
};
#define N_FILES (sizeof files / sizeof files[0])

static docs_asset assets[N_FILES];
static char etags[N_FILES][20];
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* FNV-1a, 64 bits: a change of the bytes changes the tag (it guards no secret). 2 MB
 * take a few milliseconds, once per process. */
static uint64_t fnv1a64(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void assets_make(void)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < N_FILES; i++) {
        size_t len = (size_t)(files[i].end - files[i].start);
        uint64_t h = fnv1a64(files[i].start, len);
        char *t = etags[i];
        t[0] = '"';
        for (int d = 0; d < 16; d++)
            t[1 + d] = hex[(h >> (60 - 4 * d)) & 15];
        t[17] = '"';
        t[18] = '\0';
        assets[i] = (docs_asset){files[i].name, files[i].content_type, files[i].start, len, t};
    }
}

const docs_asset *docs_asset_at(size_t i)
{
    pthread_once(&once, assets_make);
    return i < N_FILES ? &assets[i] : NULL;
}

const docs_asset *docs_page(void)
{
    return docs_asset_at(0);
}

const docs_asset *docs_asset_find(const char *name)
{
    if (!*name)
        return NULL;
    for (size_t i = 1; i < N_FILES; i++)
        if (strcmp(files[i].name, name) == 0)
            return docs_asset_at(i);
    return NULL;
}

/* One entity tag of a list at *p: skips it and the comma after; true when it is etag. */
static bool next_tag_is(const char **p, const char *etag, size_t etag_len)
{
    const char *s = *p;
    if (s[0] == 'W' && s[1] == '/')
        s += 2;
    const char *end = s;
    if (*end == '"') {
        end = strchr(end + 1, '"');
        end = end ? end + 1 : s + strlen(s);
    } else {
        end += strcspn(end, ", \t");
    }
    bool same = (size_t)(end - s) == etag_len && memcmp(s, etag, etag_len) == 0;
    *p = end + strcspn(end, ",");
    if (**p == ',')
        (*p)++;
    return same;
}

bool docs_etag_matches(const char *if_none_match, const char *etag)
{
    if (!if_none_match)
        return false;
    size_t etag_len = strlen(etag);
    const char *p = if_none_match;
    for (;;) {
        p += strspn(p, " \t");
        if (!*p)
            return false;
        if (*p == '*')
            return true;
        if (next_tag_is(&p, etag, etag_len))
            return true;
    }
}

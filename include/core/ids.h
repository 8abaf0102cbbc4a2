/* Identifiers the server assigns: uuids (v7, time-ordered for B-tree locality) and
 * "seg_" and "imp_" ids, all from getrandom(2). */
#ifndef SEGMENTD_CORE_IDS_H
#define SEGMENTD_CORE_IDS_H

#include <stdbool.h>
#include <stddef.h>

#define IDS_SEG_LEN 17 /* "seg_" + 13 base62 */

/* Writes a lower-case uuid (37 bytes with NUL). Returns 0 or -1 (no entropy). */
int ids_uuid_v7(char out[37]);
/* Writes "seg_" + 13 base62 characters (18 bytes with NUL). Returns 0 or -1. */
int ids_seg_id(char out[IDS_SEG_LEN + 1]);
/* The same with "imp_": a device import's id. */
#define IDS_IMPORT_LEN IDS_SEG_LEN
int ids_import_id(char out[IDS_IMPORT_LEN + 1]);
/* true when s is "imp_" + 13 base62 characters. */
bool ids_is_import_id(const char *s);

/* A webhook subscription's id: "wh_" + 13 base62 characters, the first 7 the creation time in
 * milliseconds (base62, so that ids sort by creation: the list's keyset), the other 6 random.
 * 17 bytes with NUL. Returns 0 or -1. */
#define IDS_WEBHOOK_LEN 16
int ids_webhook_id(char out[IDS_WEBHOOK_LEN + 1]);
/* true when s is prefix followed by exactly 13 base62 characters ("wh_", "dlv_", "evt_" …). */
bool ids_is_prefixed(const char *s, const char *prefix);
/* n random bytes from the kernel's CSPRNG (secrets). Returns 0 or -1. */
int ids_random(unsigned char *out, size_t n);

/* base64url without padding; out needs 4 * ceil(len / 3) + 1 bytes. */
void ids_b64url_encode(const unsigned char *in, size_t len, char *out);
/* Returns the decoded length, or -1 on a character outside the alphabet. */
int ids_b64url_decode(const char *in, unsigned char *out, size_t cap);

#endif

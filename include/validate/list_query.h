/* Query parameters of the list routes (paging and filters) and the cursors they carry. */
#ifndef SEGMENTD_VALIDATE_LIST_QUERY_H
#define SEGMENTD_VALIDATE_LIST_QUERY_H

#include <stdbool.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/model.h"

#define VAL_PAGE_DEFAULT 50
#define VAL_PAGE_MAX 500
#define VAL_CURSOR_MAX 400         /* characters of an encoded cursor, NUL included */
#define VAL_CURSOR_KEY_MAX 288     /* bytes of the key a cursor carries, NUL included: µs:device id */

/* Looks a query parameter up: its value (percent-decoded), or NULL when absent. Sets *bad
 * when it is present but unusable (a NUL byte, more than 1024 bytes). */
typedef const char *(*val_query_fn)(void *cls, const char *name, bool *bad);

/* Records a problem with the query parameter name: 400 invalid_query_parameter, pointer
 * /query/NAME. Every problem of the query is collected. */
void val_query_fail(seg_error *err, const char *name, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* ?limit= (default 50, 1 to 500) and ?cursor= (opaque, of this kind) into *limit and
 * before (decimal text, "" when absent). 0, or -1 with err (400); the problems join those
 * already in err, so a caller may read the rest of the query before looking. */
int val_list_paging(val_query_fn q, void *cls, char kind, int *limit, char before[24],
                    seg_error *err);
/* ?limit= (l, NULL when absent; bad: unusable): 1 to VAL_PAGE_MAX, default VAL_PAGE_DEFAULT; a
 * bad one is recorded in err (400) and the default returned. */
int val_page_limit(const char *l, bool bad, seg_error *err);
/* The cursor a page gives for the rows after key (decimal text) in a list of this kind. */
void val_cursor_encode(char kind, const char *key, char out[VAL_CURSOR_MAX]);

/* GET /audiences/segments: paging and filters (owner_id, management_type, name,
 * updated_since, property=code:value or property_code + property_value, and the
 * lifecycle's status=a,b and active_at; GET /v1/segments takes these two as well). The texts live
 * in a. 0, or -1 with every problem in err (400). */
int val_aud_list_query(val_query_fn q, void *cls, seg_arena *a, aud_list_query *out,
                       seg_error *err) MUSTCHECK;
/* GET /v1/devices: limit, cursor (of kind 'd', "µs:id") and updated_since (epoch ms).
 * Texts live in a. 0, or -1 with every problem in err (400). */
int val_device_list_query(val_query_fn q, void *cls, seg_arena *a, device_list_query *out,
                          seg_error *err) MUSTCHECK;
/* GET /v1/segments: paging and name. Texts live in a. 0, or -1 with err (400). */
int val_v1_list_query(val_query_fn q, void *cls, seg_arena *a, v1_list_query *out,
                      seg_error *err) MUSTCHECK;

/* GET …/segments/{id}/members: limit and cursor (of kind 'm': "m:<device id>", the last id
 * shown) into *limit and *after ("" for the first page, else a text in a). 0, or -1 with err
 * (400). */
int val_members_query(val_query_fn q, void *cls, seg_arena *a, int *limit, const char **after,
                      seg_error *err) MUSTCHECK;

#endif

/* Private to store/ (and its unit test): a list page's items as JSON text, written from the list statements' columns. */
#ifndef SEGMENTD_STORE_LIST_JSON_H
#define SEGMENTD_STORE_LIST_JSON_H

#include <stddef.h>

#include "store/store.h"

/* Which list statement the rows came from: STMT_AUD_LIST or STMT_V1_LIST. */
typedef enum store_list_kind { STORE_LIST_AUD, STORE_LIST_V1 } store_list_kind;

/* Row row's representation is written byte for byte as the single routes' statements
 * write it with json_build_object, so a list item reads exactly as GET by id answers.
 * store_list_item_max gives a bound on its length (exact but for the timestamps);
 * store_list_item_write writes it (no NUL) to out, which has room for that many bytes,
 * and returns its length. */
size_t store_list_item_max(const store_rows *rows, int row, store_list_kind kind);
size_t store_list_item_write(const store_rows *rows, int row, store_list_kind kind, char *out);

/* Row row's paging key (no, or seq for /v1) as decimal text. */
const char *store_list_key(const store_rows *rows, int row, store_list_kind kind);

#endif

/* Private to handlers/: the lines of an import, validated on worker threads in batches and
 * handed back in line order as COPY text, counts and the invalid lines' problems. */
#ifndef SEGMENTD_HANDLERS_IMPORT_LINES_H
#define SEGMENTD_HANDLERS_IMPORT_LINES_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "store/imports.h"

#define IMPORT_ERRORS_KEPT 100 /* invalid lines an import reports */

/* An invalid line: its number and its first problem. */
typedef struct import_line_error {
    long long line;
    char pointer[ERR_POINTER_MAX];
    char detail[ERR_DETAIL_MAX];
} import_line_error;

/* A batch of lines once validated. */
typedef struct import_batch {
    struct import_batch *next;
    long long last_line;      /* the number of its last line */
    long long received, invalid;
    bool failed;              /* memory ran out: the import cannot go on */
    store_copy_text copy;     /* its valid lines as rows */
    import_line_error *errors; /* its first invalid lines, up to IMPORT_ERRORS_KEPT */
    int n_errors;
    /* the lines themselves, until validated */
    char *text;
    size_t text_len, text_cap;
    struct { size_t off, len; long long no; bool over; } *lines;
    size_t n_lines, cap_lines;
    bool done;
} import_batch;

typedef struct import_lines import_lines;

/* Starts the workers of one import: seq is its store seq, line_max the line limit
 * (SEGMENTD_MAX_BODY_BYTES). NULL when memory or threads ran out. */
import_lines *import_lines_start(const char *seq, size_t line_max);
/* Adds a line (its ending taken off; over: it passed the limit and was cut). Returns 1
 * when a batch was handed to the workers, 0 when it joined the current one, -1 when memory
 * ran out. */
int import_lines_add(import_lines *L, long long no, const char *s, size_t n, bool over);
/* Hands the current batch to the workers, however small. */
int import_lines_flush(import_lines *L);
/* The oldest batch when it is validated (NULL when none is, or none is in flight); with wait,
 * waits for it while one is in flight. The caller frees it with import_batch_free. */
import_batch *import_lines_next(import_lines *L, bool wait);
/* Batches handed over and not yet taken back. */
int import_lines_in_flight(import_lines *L);
void import_batch_free(import_batch *b);
/* Stops the workers (the batches in flight are dropped) and frees everything. */
void import_lines_stop(import_lines *L);

#endif

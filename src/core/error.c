/* Filling the one error type; a client sees it as a problem (core/problem.c). */
#include "core/error.h"

#include "core/utf8.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Client text quoted into a message may be cut mid-character by a %.40s or hold bytes
 * that are not UTF-8 at all (a percent-decoded path); every message must stay valid
 * UTF-8 or the problem document cannot be encoded. Invalid bytes become '?'. */
static void utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = utf8_seq_len(p);
        if (n == 0)
            *p++ = '?';
        else
            p += n;
    }
}

void err_clear(seg_error *e)
{
    e->kind = ERR_REQUEST;
    e->status = 0;
    e->code = NULL;
    e->title = NULL;
    e->detail[0] = '\0';
    e->log_detail[0] = '\0';
    e->www_authenticate = NULL;
    e->retry_after = 0;
    e->n_items = 0;
    e->truncated = 0;
}

const char *err_title_for(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

PRINTF_LIKE(2, 0) static void set_detail(seg_error *e, const char *fmt, va_list ap)
{
    vsnprintf(e->detail, sizeof e->detail, fmt, ap);
    utf8_sanitize(e->detail);
}

void err_set(seg_error *e, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    e->kind = ERR_REQUEST;
    e->status = status;
    e->code = code;
    e->title = err_title_for(status);
    va_start(ap, fmt);
    set_detail(e, fmt, ap);
    va_end(ap);
}

void err_startup(seg_error *e, const char *code, const char *fmt, ...)
{
    va_list ap;
    e->kind = ERR_STARTUP;
    e->status = 0;
    e->code = code;
    e->title = NULL;
    va_start(ap, fmt);
    set_detail(e, fmt, ap);
    va_end(ap);
}

int err_is_set(const seg_error *e)
{
    return e->status != 0 || e->kind == ERR_STARTUP;
}

void err_log(seg_error *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->log_detail, sizeof e->log_detail, fmt, ap);
    va_end(ap);
}

void err_add(seg_error *e, const char *pointer, const char *fmt, ...)
{
    va_list ap;
    if (!err_is_set(e)) {
        e->status = 422;
        e->code = "validation_failed";
        e->title = err_title_for(422);
        snprintf(e->detail, sizeof e->detail, "the request body is not valid; see errors");
    }
    if (e->n_items >= ERR_MAX_ITEMS) {
        e->truncated = 1;
        return;
    }
    err_item *it = &e->items[e->n_items++];
    snprintf(it->pointer, sizeof it->pointer, "%s", pointer);
    va_start(ap, fmt);
    vsnprintf(it->detail, sizeof it->detail, fmt, ap);
    va_end(ap);
    utf8_sanitize(it->pointer);
    utf8_sanitize(it->detail);
}

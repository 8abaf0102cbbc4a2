/* The access log: one JSON line per finished request, written with one write(2). */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/json_text.h"
#include "core/log.h"
#include "http/http_private.h"

/* Room for the line's end ("}\n") however much of the line was cut. */
#define LINE_TAIL 2

void http_access_log(const http_request *rq, bool authenticated, uint64_t dur_us)
{
    char line[1024], head[96], num[48];
    json_text t;
    if (!log_enabled(LOG_INFO))
        return;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    /* every piece goes through the fixed text, which never writes past the line: a long
     * method or path is cut, not overflowed */
    json_text_fixed(&t, line, sizeof line - LINE_TAIL, 0);
    snprintf(head, sizeof head, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"info\"",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             ts.tv_nsec / 1000000);
    json_text_raw(&t, head);
    json_text_key(&t, "msg");
    JSON_TEXT_LIT(&t, "\"request\"");
    json_text_key(&t, "method");
    /* a client's method: its first 64 bytes, so the fields after it always fit */
    json_text_string(&t, rq->method ? rq->method : "", rq->method ? strnlen(rq->method, 64) : 0,
                     JSON_ESC_LOG);
    json_text_key(&t, "route");
    json_text_cstr(&t, rq->route ? rq->route->pattern : "unmatched", JSON_ESC_LOG);
    json_text_key(&t, "status");
    json_text_int(&t, rq->status);
    json_text_key(&t, "duration_ms");
    snprintf(num, sizeof num, "%.3f", (double)dur_us / 1000.0);
    json_text_raw(&t, num);
    json_text_key(&t, "request_id");
    json_text_cstr(&t, rq->request_id, JSON_ESC_LOG);
    json_text_key(&t, "tenant");
    json_text_cstr(&t, authenticated ? rq->principal.tenant : "", JSON_ESC_LOG);
    if (rq->err.status && (rq->err.log_detail[0] || rq->err.code)) {
        json_text_key(&t, "error");
        json_text_cstr(&t, rq->err.code ? rq->err.code : "", JSON_ESC_LOG);
        if (rq->err.log_detail[0]) {
            json_text_key(&t, "detail");
            json_text_cstr(&t, rq->err.log_detail, JSON_ESC_LOG);
        }
    }
    size_t len = t.len;
    line[len++] = '}';
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

/* The access log: one JSON line per finished request, written with one write(2). */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "http/http_private.h"

void http_access_log(const http_request *rq, bool authenticated, uint64_t dur_us)
{
    char line[1024];
    size_t len = 0;
    if (!log_enabled(LOG_INFO))
        return;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    len += (size_t)snprintf(line, sizeof line,
                            "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"info\","
                            "\"msg\":\"request\",\"method\":",
                            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                            tm.tm_sec, ts.tv_nsec / 1000000);
    len = log_json_str(line, len, sizeof line, rq->method);
    len += (size_t)snprintf(line + len, sizeof line - len, ",\"route\":");
    len = log_json_str(line, len, sizeof line, rq->route ? rq->route->pattern : "unmatched");
    len += (size_t)snprintf(line + len, sizeof line - len,
                            ",\"status\":%d,\"duration_ms\":%.3f,\"request_id\":", rq->status,
                            (double)dur_us / 1000.0);
    len = log_json_str(line, len, sizeof line, rq->request_id);
    len += (size_t)snprintf(line + len, sizeof line - len, ",\"tenant\":");
    len = log_json_str(line, len, sizeof line, authenticated ? rq->principal.tenant : "");
    if (rq->err.status && (rq->err.log_detail[0] || rq->err.code)) {
        len += (size_t)snprintf(line + len, sizeof line - len, ",\"error\":");
        len = log_json_str(line, len, sizeof line, rq->err.code ? rq->err.code : "");
        if (rq->err.log_detail[0]) {
            len += (size_t)snprintf(line + len, sizeof line - len, ",\"detail\":");
            len = log_json_str(line, len, sizeof line, rq->err.log_detail);
        }
    }
    if (len + 2 >= sizeof line)
        len = sizeof line - 3;
    line[len++] = '}';
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

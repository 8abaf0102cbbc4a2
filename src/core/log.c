/* JSON-lines logging to stderr (written with core/json_text.h in a fixed buffer); the
 * access log line is assembled by http/access_log.c. */
#include "core/log.h"

#include "core/json_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static log_level current_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(log_level level)
{
    current_level = level;
}

int log_enabled(log_level level)
{
    return level >= current_level;
}

void log_msg(log_level level, const char *msg, ...)
{
    char buf[4096];
    int n;
    size_t len;
    struct timespec ts;
    struct tm tm;
    va_list ap;
    if (level < current_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(buf, sizeof buf - 2,
                 "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"msg\":",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000, level_names[level]);
    /* leave 2 bytes for the closing "}\n" */
    json_text t;
    json_text_fixed(&t, buf, sizeof buf - 2, n < 0 ? 0 : (size_t)n);
    json_text_cstr(&t, msg ? msg : "", JSON_ESC_LOG);
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        json_text_put(&t, ",", 1);
        json_text_cstr(&t, k, JSON_ESC_LOG);
        json_text_put(&t, ":", 1);
        json_text_cstr(&t, v ? v : "", JSON_ESC_LOG);
    }
    va_end(ap);
    len = t.len;
    buf[len] = '}';
    buf[len + 1] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, len + 2);
    (void)w;
}

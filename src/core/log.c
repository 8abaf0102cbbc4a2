/* JSON-lines logging to stderr; the access log line is assembled by http/server.c. */
#include "core/log.h"
#include "core/utf8.h"

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

size_t log_json_str(char *buf, size_t len, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (len + 2 >= cap)
        return len;
    buf[len++] = '"';
    for (; s && *s && len + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)c;
        } else if (c < 0x20) {
            buf[len++] = '\\';
            buf[len++] = 'u';
            buf[len++] = '0';
            buf[len++] = '0';
            buf[len++] = hex[c >> 4];
            buf[len++] = hex[c & 15];
        } else if (c < 0x80) {
            buf[len++] = (char)c;
        } else {
            /* copy a valid UTF-8 sequence whole; anything else becomes U+FFFD, so a
             * line stays valid JSON and UTF-8 whatever bytes a client sent */
            size_t n = utf8_seq_len((const unsigned char *)s);
            if (n == 0) {
                memcpy(buf + len, "\\ufffd", 6);
                len += 6;
            } else {
                memcpy(buf + len, s, n);
                len += n;
                s += n - 1;
            }
        }
    }
    buf[len++] = '"';
    buf[len] = '\0';
    return len;
}

static size_t put_char(char *buf, size_t len, size_t cap, char c)
{
    if (len + 1 < cap) {
        buf[len++] = c;
        buf[len] = '\0';
    }
    return len;
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
    len = n < 0 ? 0 : (size_t)n;
    /* leave 2 bytes for the closing "}\n" */
    len = log_json_str(buf, len, sizeof buf - 2, msg);
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        len = put_char(buf, len, sizeof buf - 2, ',');
        len = log_json_str(buf, len, sizeof buf - 2, k);
        len = put_char(buf, len, sizeof buf - 2, ':');
        len = log_json_str(buf, len, sizeof buf - 2, v ? v : "");
    }
    va_end(ap);
    buf[len] = '}';
    buf[len + 1] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, len + 2);
    (void)w;
}

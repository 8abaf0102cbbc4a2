/* Private to http/: what the acceptor, the loops, the dispatcher and the request parser share. */
#ifndef SEGMENTD_HTTP_PRIVATE_H
#define SEGMENTD_HTTP_PRIVATE_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/config.h"
#include "http/request.h"

/* ---- dispatch.c: one request through libmicrohttpd ---- */
/* Prepares the routing table; -1 when it has more than ROUTER_MAX routes. */
int http_dispatch_init(const seg_config *cfg, const http_route *routes, size_t n_routes);
/* libmicrohttpd's access handler, completion callback and URI unescaper. */
enum MHD_Result http_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **con_cls);
void http_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                       enum MHD_RequestTerminationCode toe);
size_t http_unescape_no_nul(void *cls, struct MHD_Connection *c, char *s);
/* Requests between their first call and their completion, all loops together. */
int http_inflight(void);
/* Set at shutdown: every answer from then on closes its connection. */
void http_set_draining(void);
/* The connection a request arrived on. */
struct MHD_Connection *http_conn_of(http_request *rq);

/* ---- loops.c: the event loops, each driving a libmicrohttpd daemon ---- */
int http_loops_start(const seg_config *cfg, seg_error *err);
/* Hands an accepted connection to the next loop in turn. */
void http_loops_deal(int fd, const struct sockaddr_storage *ss, socklen_t sl);
/* Wakes loop index from another thread, so that it runs its daemon: a connection that
 * thread resumed is served at once. */
void http_loops_wake(int index);
/* Stops the loops; their daemons too unless a request is still on a fiber (all: always).
 * Returns the number of daemons left running. */
int http_loops_stop(bool all);

/* ---- limits.c: the connection limits ---- */
void http_limits_init(const seg_config *cfg);
/* Counts a new connection in; false (nothing counted) past a limit. */
bool http_limits_take(const struct sockaddr *sa);
void http_limits_give(const struct sockaddr *sa);

/* ---- access_log.c ---- */
/* One JSON line per finished request. */
void http_access_log(const http_request *rq, bool authenticated, uint64_t dur_us);

#endif

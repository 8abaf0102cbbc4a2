/* Starting and stopping the HTTP server: the listening socket and its acceptor. */
#ifndef SEGMENTD_HTTP_LISTEN_H
#define SEGMENTD_HTTP_LISTEN_H

#include "core/config.h"
#include "http/request.h"

/* Starts serving; routes must outlive the server. Returns 0 or -1 with err set. */
int http_server_start(const seg_config *cfg, const http_route *routes, size_t n_routes,
                      seg_error *err) MUSTCHECK;
/* The port actually bound (useful with port 0). */
int http_server_port(void);
/* Stops accepting, lets requests in flight finish (up to grace_s), then stops. */
void http_server_stop(int grace_s);

#endif

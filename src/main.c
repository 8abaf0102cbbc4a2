/* segmentd: wires configuration, store, auth, handlers and the HTTP server. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/jwks.h"
#include "core/config.h"
#include "core/log.h"
#include "handlers/handlers.h"
#include "http/listen.h"
#include "store/store.h"
#include "store/imports.h"
#include "store/size_refresher.h"
#include "store/sweeper.h"
#include "webhooks/delivery.h"

static const char *env_lookup(const char *name, void *cls)
{
    return getenv(name);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: segmentd [serve|migrate|token|healthcheck] [options]\n"
            "  serve          run the HTTP server (default)\n"
            "  migrate        apply pending migrations and exit\n"
            "  token          print a development token signed with the HMAC secret\n"
            "                 --tenant T (default dev) --scope \"" AUTH_DEFAULT_SCOPES "\"\n"
            "                 --ttl SECONDS (default 3600) --sub SUBJECT (default dev)\n"
            "  healthcheck    GET /healthz on the configured port; exit 0 when it answers 200\n"
            "  --version      print the version\n"
            "  --help         this text\n\n");
    config_print_help(out);
}

static int fatal(const seg_error *err)
{
    log_msg(LOG_ERROR, err->detail, NULL);
    fprintf(stderr, "segmentd: %s\n", err->detail);
    return 1;
}

static int cmd_token(int argc, char **argv)
{
    const char *tenant = "dev", *scope = AUTH_DEFAULT_SCOPES, *sub = "dev";
    long long ttl = 3600;
    seg_error err;
    err_clear(&err);
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "segmentd token: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--tenant"))
            tenant = argv[++i];
        else if (!strcmp(argv[i], "--scope"))
            scope = argv[++i];
        else if (!strcmp(argv[i], "--sub"))
            sub = argv[++i];
        else if (!strcmp(argv[i], "--ttl")) {
            char *end;
            ttl = strtoll(argv[++i], &end, 10);
            if (*end || ttl < 1 || ttl > 31 * 86400) {
                fprintf(stderr, "segmentd token: --ttl must be 1 to 2678400 seconds\n");
                return 2;
            }
        } else {
            fprintf(stderr, "segmentd token: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!*tenant || strlen(tenant) > AUTH_TENANT_MAX) {
        fprintf(stderr, "segmentd token: --tenant must be 1 to %d bytes\n", AUTH_TENANT_MAX);
        return 2;
    }
    char *tok = auth_mint(tenant, sub, scope, ttl, (long long)time(NULL), &err);
    if (!tok)
        return fatal(&err);
    printf("%s\n", tok);
    free(tok);
    return 0;
}

static int cmd_healthcheck(const seg_config *cfg)
{
    struct addrinfo hints = {0}, *ai = NULL;
    char port[8], buf[64] = {0};
    const char *host = cfg->listen_host;
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if (!strcmp(host, "0.0.0.0") || !strcmp(host, "*"))
        host = "127.0.0.1";
    else if (!strcmp(host, "::"))
        host = "::1";
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof port, "%d", cfg->listen_port);
    if (getaddrinfo(host, port, &hints, &ai))
        return 1;
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    struct timeval tv = {3, 0};
    int ok = fd >= 0 && !setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) &&
             !connect(fd, ai->ai_addr, ai->ai_addrlen) &&
             write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1) &&
             read(fd, buf, sizeof buf - 1) > 12 && !strncmp(buf + 8, " 200", 4);
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return ok ? 0 : 1;
}

static int cmd_serve(seg_config *cfg)
{
    seg_error err;
    sigset_t sigs;
    int sig = 0;
    err_clear(&err);
    if (auth_jwks_start(cfg, &err)) /* keys first: a JWKS URL that cannot be read stops start-up */
        return fatal(&err);
    if (cfg->auto_migrate && store_migrate(cfg, &err) < 0) {
        auth_jwks_stop();
        return fatal(&err);
    }
    if (store_init(cfg, &err)) {
        auth_jwks_stop();
        return fatal(&err);
    }
    handlers_init(cfg);
    /* Block the stop signals in every thread; this one waits for them. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    if (http_server_start(cfg, handlers_routes, handlers_n_routes, &err)) {
        store_close();
        auth_jwks_stop();
        return fatal(&err);
    }
    if (store_sweeper_start(cfg, &err) || store_import_merge_start(cfg, &err) ||
        h_lookup_start(cfg, &err) || store_size_refresher_start(cfg, &err) ||
        wh_delivery_start(cfg, &err)) {
        http_server_stop(0);
        wh_delivery_stop(0);
        store_sweeper_stop();
        h_lookup_stop();
        store_import_merge_stop();
        store_close();
        auth_jwks_stop();
        return fatal(&err);
    }
    char port[8], loops[8], pool[8];
    snprintf(port, sizeof port, "%d", http_server_port());
    snprintf(loops, sizeof loops, "%d", cfg->loops);
    snprintf(pool, sizeof pool, "%d", cfg->pool_size);
    log_msg(LOG_INFO, "listening", "host", cfg->listen_host, "port", port, "loops", loops,
            "pool_size", pool, "version", SEGMENTD_VERSION, NULL);
    sigwait(&sigs, &sig);
    log_msg(LOG_INFO, "shutdown: draining requests in flight", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM", NULL);
    long long stop_at = (long long)time(NULL);
    wh_delivery_quiesce(); /* no new attempt; those in flight go on while requests drain */
    store_sweeper_stop();
    store_size_refresher_stop();
    http_server_stop(cfg->shutdown_grace_s);
    /* what is left of the grace for the attempts in flight (at least a second) */
    long long left_s = cfg->shutdown_grace_s - ((long long)time(NULL) - stop_at);
    wh_delivery_stop((int)(left_s > 1 ? left_s : 1) * 1000);
    h_imports_stop(5);
    h_exports_stop(5);
    store_import_merge_stop();
    h_lookup_stop();
    store_close();
    auth_jwks_stop();
    log_msg(LOG_INFO, "shutdown complete", NULL);
    return 0;
}

int main(int argc, char **argv)
{
    seg_config cfg;
    seg_error err;
    const char *cmd = argc > 1 ? argv[1] : "serve";
    int rc;

    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("segmentd %s\n", SEGMENTD_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") && strcmp(cmd, "migrate") && strcmp(cmd, "token") &&
        strcmp(cmd, "healthcheck")) {
        fprintf(stderr, "segmentd: unknown command \"%s\"\n\n", cmd);
        usage(stderr);
        return 2;
    }
    if (strcmp(cmd, "token") && argc > 2) {
        fprintf(stderr, "segmentd %s: takes no arguments (configuration is in SEGMENTD_* variables)\n", cmd);
        return 2;
    }
    json_object_seed(0); /* before any thread starts (jansson docs) */
    err_clear(&err);
    if (config_load(&cfg, env_lookup, NULL, &err)) {
        fprintf(stderr, "segmentd: %s\n", err.detail);
        return 1;
    }
    log_set_level(cfg.log_level);
    if (cfg.retired_set[0])
        log_msg(LOG_WARN, "settings of a retired threading model are ignored: segmentd runs "
                          "event loops with a pipelined store (SEGMENTD_LOOPS, SEGMENTD_POOL_SIZE)",
                "settings", cfg.retired_set, NULL);
    auth_init(&cfg);
    if (!strcmp(cmd, "token")) {
        rc = cmd_token(argc, argv);
    } else if (!strcmp(cmd, "healthcheck")) {
        rc = cmd_healthcheck(&cfg);
    } else if (!strcmp(cmd, "migrate")) {
        int n = store_migrate(&cfg, &err);
        if (n < 0) {
            rc = fatal(&err);
        } else {
            char num[16];
            snprintf(num, sizeof num, "%d", n);
            log_msg(LOG_INFO, "migrations up to date", "applied_now", num, NULL);
            rc = 0;
        }
    } else {
        rc = cmd_serve(&cfg);
    }
    config_free(&cfg);
    return rc;
}

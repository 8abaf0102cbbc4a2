/* Connection limits: open connections, all loops together, and per client address. */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/http_private.h"

/* Open connections, all loops together, and per client address when
 * SEGMENTD_PER_IP_LIMIT is set: counted when the acceptor takes a connection, uncounted
 * when its daemon closes it (or refuses it). */
#define IP_BUCKETS 256
typedef struct ip_count {
    struct ip_count *next;
    int family;
    unsigned char addr[16];
    int n;
} ip_count;
static pthread_mutex_t limits_mu = PTHREAD_MUTEX_INITIALIZER;
static const seg_config *scfg;

void http_limits_init(const seg_config *cfg)
{
    scfg = cfg;
}
static int open_conns;
static ip_count *ip_table[IP_BUCKETS];

static size_t ip_key(const struct sockaddr *sa, unsigned char out[16], int *family)
{
    *family = sa->sa_family;
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return 4;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return 16;
    }
    return 0;
}

static ip_count **ip_slot(const struct sockaddr *sa, unsigned char key[16], int *family, size_t *n)
{
    *n = ip_key(sa, key, family);
    unsigned h = 2166136261u;
    for (size_t i = 0; i < *n; i++)
        h = (h ^ key[i]) * 16777619u;
    ip_count **pp = &ip_table[h % IP_BUCKETS];
    while (*pp && ((*pp)->family != *family || memcmp((*pp)->addr, key, *n)))
        pp = &(*pp)->next;
    return pp;
}

bool http_limits_take(const struct sockaddr *sa)
{
    bool ok = false;
    pthread_mutex_lock(&limits_mu);
    if (open_conns < scfg->connection_limit) {
        ok = true;
        if (scfg->per_ip_limit > 0) {
            unsigned char key[16];
            int family;
            size_t n;
            ip_count **pp = ip_slot(sa, key, &family, &n);
            if (!*pp && (*pp = calloc(1, sizeof **pp))) {
                (*pp)->family = family;
                memcpy((*pp)->addr, key, n);
            }
            if (!*pp || (*pp)->n >= scfg->per_ip_limit)
                ok = false;
            else
                (*pp)->n++;
        }
        if (ok)
            open_conns++;
    }
    pthread_mutex_unlock(&limits_mu);
    return ok;
}

void http_limits_give(const struct sockaddr *sa)
{
    pthread_mutex_lock(&limits_mu);
    open_conns--;
    if (scfg->per_ip_limit > 0 && sa) {
        unsigned char key[16];
        int family;
        size_t n;
        ip_count **pp = ip_slot(sa, key, &family, &n);
        if (*pp && --(*pp)->n <= 0) {
            ip_count *dead = *pp;
            *pp = dead->next;
            free(dead);
        }
    }
    pthread_mutex_unlock(&limits_mu);
}


/* The SSRF rules of webhook delivery: which IPv4 and IPv6 addresses are not public. */
#include "core/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

/* An IPv4 address (host byte order) that is not public, and why. The ranges of RFC 6890's
 * special-purpose registry that can reach something other than the public internet. */
static const char *v4_refused(uint32_t a)
{
    static const struct {
        uint32_t net, mask;
        const char *why;
    } ranges[] = {
        {0x00000000u, 0xff000000u, "unspecified"},   /* 0.0.0.0/8 "this network" */
        {0x7f000000u, 0xff000000u, "loopback"},      /* 127.0.0.0/8 */
        {0x0a000000u, 0xff000000u, "private"},       /* 10.0.0.0/8 */
        {0xac100000u, 0xfff00000u, "private"},       /* 172.16.0.0/12 */
        {0xc0a80000u, 0xffff0000u, "private"},       /* 192.168.0.0/16 */
        {0x64400000u, 0xffc00000u, "private"},       /* 100.64.0.0/10 shared (carrier NAT) */
        {0xa9fe0000u, 0xffff0000u, "link-local"},    /* 169.254.0.0/16 (cloud metadata) */
        {0xc0000000u, 0xffffff00u, "reserved"},      /* 192.0.0.0/24 protocol assignments */
        {0xc6120000u, 0xfffe0000u, "reserved"},      /* 198.18.0.0/15 benchmarking */
        {0xe0000000u, 0xf0000000u, "multicast"},     /* 224.0.0.0/4 */
        {0xf0000000u, 0xf0000000u, "reserved"},      /* 240.0.0.0/4 and the broadcast */
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if ((a & ranges[i].mask) == ranges[i].net)
            return ranges[i].why;
    return NULL;
}

static uint32_t v4_at(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static const char *v6_refused(const unsigned char *b)
{
    static const unsigned char zero[16];
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (!memcmp(b, zero, 16))
        return "unspecified";
    if (!memcmp(b, zero, 15) && b[15] == 1)
        return "loopback";
    if (!memcmp(b, mapped, 12) || !memcmp(b, nat64, 12) || !memcmp(b, zero, 12))
        return v4_refused(v4_at(b + 12)); /* ::ffff:a.b.c.d, 64:ff9b::a.b.c.d, ::a.b.c.d */
    if (b[0] == 0x20 && b[1] == 0x02)
        return v4_refused(v4_at(b + 2)); /* 6to4: 2002:AABB:CCDD::/48 */
    if (b[0] == 0xff)
        return "multicast";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return "link-local"; /* fe80::/10 */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
        return "private";    /* fec0::/10, the deprecated site-local */
    if ((b[0] & 0xfe) == 0xfc)
        return "unique-local"; /* fc00::/7 */
    return NULL;
}

const char *netaddr_refused(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return v4_refused(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        return v6_refused(in6->sin6_addr.s6_addr);
    }
    return "not an IP address";
}

const char *netaddr_refused_literal(const char *host, bool *is_ip)
{
    char buf[64];
    size_t n = strlen(host);
    struct in_addr a4;
    struct in6_addr a6;
    *is_ip = false;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') { /* a URL's IPv6 host */
        host++;
        n -= 2;
    }
    if (n >= sizeof buf)
        return NULL;
    memcpy(buf, host, n);
    buf[n] = '\0';
    char *zone = strchr(buf, '%'); /* fe80::1%eth0: the zone does not change the address */
    if (zone)
        *zone = '\0';
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        *is_ip = true;
        return v4_refused(ntohl(a4.s_addr));
    }
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        *is_ip = true;
        return v6_refused(a6.s6_addr);
    }
    return NULL;
}

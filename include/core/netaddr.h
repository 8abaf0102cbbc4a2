/* Which network addresses a webhook may be delivered to: the SSRF rules. Pure. */
#ifndef SEGMENTD_CORE_NETADDR_H
#define SEGMENTD_CORE_NETADDR_H

#include <stdbool.h>
#include <sys/socket.h>

/* Why segmentd refuses to connect to sa for a webhook ("loopback", "private", "link-local",
 * "unique-local", "multicast", "unspecified", "reserved"; a static phrase), or NULL when the
 * address is public. IPv4-mapped, IPv4-compatible, NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
 * IPv6 addresses are judged by the IPv4 address they carry. Families other than AF_INET and
 * AF_INET6 are refused ("not an IP address"). */
const char *netaddr_refused(const struct sockaddr *sa);

/* The same for the text of an IP address ("127.0.0.1", "::1", "[fe80::1]"); *is_ip tells
 * whether host was an IP address at all (a name is never refused here: it is checked when it
 * is resolved, at delivery). */
const char *netaddr_refused_literal(const char *host, bool *is_ip);

#endif

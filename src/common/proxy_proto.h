/* SPDX-License-Identifier: MIT */
/*
 * proxy_proto: the PROXY protocol header (versions 1 and 2) that a load
 * balancer such as HAProxy sends first on a connection to name the real
 * client.  Pure: no I/O, no logging, no allocation.
 *
 * Incremental: the caller keeps the first bytes of the connection and calls
 * tp_proxy_parse() on all of them each time more arrive; the parser says
 * "need more" until it has the whole header, and rejects a malformed one as
 * early as the bytes allow.  A header is never longer than TP_PROXY_MAX, so
 * a caller's buffer of that size always suffices.
 */
#ifndef TP_PROXY_PROTO_H
#define TP_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TP_PROXY_V1_MAX 107  /* "PROXY TCP6 " + two addresses, two ports, CRLF (the spec's bound) */
#define TP_PROXY_V2_MAX 1024 /* 16-byte fixed part + addresses + TLVs: longer is refused */
#define TP_PROXY_MAX TP_PROXY_V2_MAX

/* A complete header. */
struct tp_proxy_hdr {
	size_t len;      /* its length: the request stream starts after it */
	uint8_t version; /* 1 or 2 */
	/*
	 * No client address in it (v1 UNKNOWN, v2 LOCAL, v2 PROXY over an
	 * unspecified or UNIX family): use the socket's own addresses.
	 */
	bool local;
	struct sockaddr_storage src, dst; /* AF_INET or AF_INET6, when !local */
};

/*
 * Parse the first len bytes of a connection.  Returns the header length
 * (> 0, *ret filled) when a whole header is there; 0 when more bytes are
 * needed to decide; -EINVAL when the bytes are not a valid header (no
 * PROXY signature, bad syntax, unsupported version or family); -E2BIG when
 * the header would be longer than TP_PROXY_MAX.  Never reads past len.
 */
int tp_proxy_parse(const uint8_t *buf, size_t len, struct tp_proxy_hdr *ret);

/*
 * Does the connection start with a PROXY header signature ("PROXY " or the
 * 12-byte v2 signature)?  Returns 1 (it does), 0 (it does not) or -EAGAIN
 * (the len bytes are a proper prefix of a signature: more are needed).
 */
int tp_proxy_detect(const uint8_t *buf, size_t len);

#endif

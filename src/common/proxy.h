/* SPDX-License-Identifier: MIT */
/*
 * proxy: the PROXY protocol header (versions 1 and 2) that a load
 * balancer such as HAProxy sends first on a connection to name the real
 * client.  Pure: no I/O, no logging, no allocation.
 *
 * Incremental: the caller keeps the first bytes of the connection and calls
 * tp_proxy_parse() on all of them each time more arrive; the parser says
 * "need more" until it has the whole header, and rejects a malformed one as
 * early as the bytes allow.  A caller's buffer of TP_PROXY_MAX bytes always
 * suffices: a v2 header longer than that (its TLVs, up to the format's
 * 16 + 65535 bytes) is decided on its first TP_PROXY_MAX bytes, which hold
 * its addresses, and the caller drops the rest as it arrives, checked by
 * tp_proxy_tail_feed() without being kept.
 */
#ifndef TP_PROXY_H
#define TP_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TP_PROXY_V1_MAX 107          /* "PROXY TCP6 " + two addresses, two ports, CRLF (the spec's bound) */
#define TP_PROXY_V2_MAX (16 + 65535) /* 16-byte fixed part + addresses + TLVs (the format's bound) */
#define TP_PROXY_MAX 1024            /* the bytes a header is decided on (the addresses are in them) */

/*
 * The part of a v2 header past the bytes it was decided on: its TLVs (or
 * bytes to ignore), checked as they pass (tp_proxy_tail_feed).
 */
struct tp_proxy_tail {
	uint32_t left;       /* header bytes still to come */
	uint16_t value_left; /* bytes of the current TLV's value still to come */
	uint8_t nhead;       /* bytes of the next TLV's 3-byte type and length seen */
};

/* A complete header, or one decided on its first TP_PROXY_MAX bytes. */
struct tp_proxy_hdr {
	size_t len;      /* its length: the request stream starts after it */
	uint8_t version; /* 1 or 2 */
	/*
	 * No client address in it (v1 UNKNOWN, v2 LOCAL, v2 PROXY over an
	 * unspecified or UNIX family): use the socket's own addresses.
	 */
	bool local;
	struct sockaddr_storage src, dst; /* AF_INET or AF_INET6, when !local */
	/*
	 * tail.left > 0: the header is longer than the len bytes parsed (a v2
	 * one over TP_PROXY_MAX bytes); the next tail.left bytes of the stream
	 * are its own, and it is valid only if tp_proxy_tail_feed() says so
	 * once they have passed.
	 */
	struct tp_proxy_tail tail;
};

/*
 * Parse the first len bytes of a connection.  Returns the header length
 * (> 0, *ret filled) when a whole header is there, or, for a v2 header
 * longer than TP_PROXY_MAX, when its first TP_PROXY_MAX bytes are (the
 * length is then more than len: ret->tail); 0 when more bytes are needed
 * to decide; -EINVAL when the bytes are not a valid header (no PROXY
 * signature, bad syntax, unsupported version or family, TLVs that do not
 * fill the header exactly); -E2BIG for a v1 line longer than
 * TP_PROXY_V1_MAX.  Never reads past len.
 */
int tp_proxy_parse(const uint8_t *buf, size_t len, struct tp_proxy_hdr *ret);

/*
 * Check the next n bytes of a header's tail (n at most t->left; more are
 * not looked at).  Returns 1 when they end the header and it is well
 * formed, 0 when more of it is to come, -EINVAL when it is malformed (a
 * TLV that runs past the header's end), as early as the bytes show it.
 */
int tp_proxy_tail_feed(struct tp_proxy_tail *t, const uint8_t *p, size_t n);

/*
 * Does the connection start with a PROXY header signature ("PROXY " or the
 * 12-byte v2 signature)?  Returns 1 (it does), 0 (it does not) or -EAGAIN
 * (the len bytes are a proper prefix of a signature: more are needed).
 */
int tp_proxy_detect(const uint8_t *buf, size_t len);

#endif

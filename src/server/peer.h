/* SPDX-License-Identifier: MIT */
/*
 * peer: who the client of a connection is: the address accept() gave, or,
 * with listen.proxy_protocol, the one a trusted proxy names in the PROXY
 * header it sends first.  The header bytes are read into a struct
 * tp_peer_hdr that the connection holds only until the header is decided;
 * what follows the header in it is the start of the request stream.
 *
 * No logging; the only I/O is tp_peer_read()'s read() of the connection's
 * socket.  Used by one loop thread.
 */
#ifndef TP_PEER_H
#define TP_PEER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cidr.h"
#include "proxy.h"

struct tp_config;

#define TP_PEER_HEADER_TIMEOUT_MS 3000 /* a trusted proxy's header must arrive this soon */

/* What a connection must send first. */
enum tp_peer_mode {
	TP_PEER_DIRECT = 0, /* no PROXY protocol: requests at once */
	TP_PEER_EXPECT,     /* a trusted proxy: a PROXY header, then requests */
	TP_PEER_REFUSE,     /* not trusted: requests, and a PROXY header is refused */
};

/* Why a connection was closed before its first request (the aggregated log's counters). */
enum tp_peer_refusal {
	TP_PEER_BAD_HEADER,    /* malformed, oversize, or no header from a trusted proxy */
	TP_PEER_UNTRUSTED,     /* a PROXY header from a client outside listen.proxy_trusted */
	TP_PEER_TIMEOUT,       /* a trusted proxy sent no whole header in time */
	TP_PEER_NOT_ALLOWED,   /* outside listen.allow */
	TP_PEER_REFUSAL_COUNT, /* the number of reasons, not one */
};

/*
 * The first bytes of a connection in TP_PEER_EXPECT or TP_PEER_REFUSE mode.
 * A v2 header longer than buf is decided on the bytes buf holds; while the
 * rest of it passes (tail.left > 0), buf keeps the address it names in its
 * first TP_PEER_KEPT bytes, and the rest is read after them and dropped.
 */
struct tp_peer_hdr {
	uint8_t buf[TP_PROXY_MAX];
	size_t len;
	uint64_t deadline_ns; /* EXPECT: the header is due */
	enum tp_peer_mode mode;
	bool named;                /* decided: a header named the client (not LOCAL or UNKNOWN) */
	struct tp_proxy_tail tail; /* the rest of a long v2 header, still to pass */
};

#define TP_PEER_KEPT sizeof(struct sockaddr_storage)

/* A header reader for mode (not DIRECT), accepted at now_ns, or NULL (out of memory). */
struct tp_peer_hdr *tp_peer_hdr_new(enum tp_peer_mode mode, uint64_t now_ns);

/* Free h; NULL is fine. */
void tp_peer_hdr_free(struct tp_peer_hdr *h);

/* What the first bytes decided. */
enum tp_peer_verdict {
	TP_PEER_MORE, /* undecided: read more into buf (len < sizeof(buf)) */
	TP_PEER_DONE, /* *ret_start: where the requests begin in buf; the address is set */
	TP_PEER_BAD,  /* close the connection; *ret_why says why */
};

/*
 * Decide on h's bytes.  On TP_PEER_DONE, *io_addr holds the client
 * address (the header's; unchanged for a LOCAL or UNKNOWN header and in
 * REFUSE mode; h->named tells) and *ret_start the offset of the first request byte in
 * h->buf.  On TP_PEER_BAD, *ret_why is the reason.  TP_PEER_MORE may
 * have dropped bytes of a long header (h->len is then less than before).
 * Never fails otherwise.
 */
enum tp_peer_verdict tp_peer_decide(struct tp_peer_hdr *h, struct sockaddr_storage *io_addr,
                                    size_t *ret_start, enum tp_peer_refusal *ret_why);

/* A loop's view of listen.allow, listen.proxy_trusted and listen.proxy_protocol. */
struct tp_peer_gate {
	struct tp_cidr_list allow, trusted;
	bool proxy_protocol;
};

/* Take the lists from cfg (at start and after each reload). Never fails: cfg was validated. */
void tp_peer_gate_set(struct tp_peer_gate *g, const struct tp_config *cfg);

/*
 * May the peer of the accepted socket fd connect, and what must it send
 * first?  Returns false (not allowed: fd closed, counted in turned_away),
 * or true with *ret_mode set.
 */
bool tp_peer_gate_check(const struct tp_peer_gate *g, int fd, const struct sockaddr_storage *peer,
                        _Atomic uint64_t *turned_away, enum tp_peer_mode *ret_mode);

/* Read the counters of closings by reason (any thread). */
void tp_peer_counts_load(_Atomic uint64_t *counts, uint64_t *ret);

/* What tp_peer_read() saw. */
struct tp_peer_outcome {
	bool got;            /* bytes came */
	bool readable;       /* the socket may have more (false: EAGAIN seen) */
	bool eof;            /* the client closed */
	bool done;           /* decided: the requests begin at start in h->buf; free h */
	size_t start;        /* with done */
	size_t nread;        /* bytes read from the socket */
	const char *refusal; /* refused (counted): why, for the close */
	int err;             /* read() failed: its errno */
};

/*
 * Read the first bytes of fd into h until they are decided or the socket
 * has no more, and decide (tp_peer_decide).  When a header names the
 * client, *io_addr, addr (its text) and *io_port take it.  A refusal is
 * counted in turned_away[why].  An untrusted client's last bytes before
 * its EOF are requests, decided as such; a trusted proxy's are a header
 * cut short, refused as malformed (a connect and close with no byte is a
 * health check, not counted).  Never fails otherwise.
 */
void tp_peer_read(struct tp_peer_hdr *h, int fd, struct sockaddr_storage *io_addr, char *addr, size_t addrlen,
                  uint16_t *io_port, _Atomic uint64_t *turned_away, struct tp_peer_outcome *ret);

/* Write an address as text (inet_ntop, "unknown" for other families) and its port. */
void tp_peer_addr_text(const struct sockaddr_storage *ss, char *buf, size_t len, uint16_t *ret_port);

/* Log at debug level "WHAT ADDR:PORT" with CLIENT_ADDR and CLIENT_PORT fields, under event. */
void tp_peer_log(const char *addr, uint16_t port, const char *event, const char *what);

/* A refusal's name for logs: "malformed header", "header from an untrusted peer", ... */
const char *tp_peer_refusal_name(enum tp_peer_refusal why);

/* Its name as a metric's label value: "proxy_bad_header", "proxy_untrusted", ... */
const char *tp_peer_refusal_label(enum tp_peer_refusal why);

#endif

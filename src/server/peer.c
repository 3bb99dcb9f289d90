/* SPDX-License-Identifier: MIT */
/*
 * peer: the PROXY header decision on a connection's first bytes.
 */
#include "peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

struct tp_peer_hdr *tp_peer_hdr_new(enum tp_peer_mode mode, uint64_t now_ns)
{
	struct tp_peer_hdr *h = malloc(sizeof(*h));

	if (h) {
		h->len = 0;
		h->mode = mode;
		h->named = false;
		h->tail = (struct tp_proxy_tail){0};
		h->deadline_ns = now_ns + TP_PEER_HEADER_TIMEOUT_MS * 1000000ull;
	}
	return h;
}

void tp_peer_hdr_free(struct tp_peer_hdr *h)
{
	free(h);
}

_Static_assert(TP_PEER_KEPT < TP_PROXY_MAX, "room to read a long header's tail after the kept address");

/* The bytes read after the kept address while a long header's tail passes: its own are dropped. */
static enum tp_peer_verdict decide_tail(struct tp_peer_hdr *h, struct sockaddr_storage *io_addr,
                                        size_t *ret_start, enum tp_peer_refusal *ret_why)
{
	size_t n = h->len - TP_PEER_KEPT, k = n < h->tail.left ? n : h->tail.left;
	int r = tp_proxy_tail_feed(&h->tail, h->buf + TP_PEER_KEPT, k);

	if (r < 0) {
		*ret_why = TP_PEER_BAD_HEADER;
		return TP_PEER_BAD;
	}
	if (r == 0) {
		h->len = TP_PEER_KEPT;
		return TP_PEER_MORE;
	}
	if (h->named)
		memcpy(io_addr, h->buf, TP_PEER_KEPT);
	*ret_start = TP_PEER_KEPT + k;
	return TP_PEER_DONE;
}

enum tp_peer_verdict tp_peer_decide(struct tp_peer_hdr *h, struct sockaddr_storage *io_addr,
                                    size_t *ret_start, enum tp_peer_refusal *ret_why)
{
	struct tp_proxy_hdr ph;
	int r;

	*ret_start = 0;
	if (h->mode == TP_PEER_REFUSE) {
		r = tp_proxy_detect(h->buf, h->len);
		/*
		 * An ordinary client: every byte is a request byte.  So are bytes
		 * that only start like a v2 signature once they hold a whole line
		 * ("\r\n", an empty request, then "\r"): its reply must not wait
		 * for bytes that may never come.
		 */
		if (r == 0 || (r < 0 && memchr(h->buf, '\n', h->len)))
			return TP_PEER_DONE;
		if (r < 0 && h->len < sizeof(h->buf))
			return TP_PEER_MORE;
		*ret_why = TP_PEER_UNTRUSTED;
		return TP_PEER_BAD;
	}
	if (h->tail.left > 0)
		return decide_tail(h, io_addr, ret_start, ret_why);
	r = tp_proxy_parse(h->buf, h->len, &ph);
	if (r == 0)
		return TP_PEER_MORE;
	if (r < 0) {
		*ret_why = TP_PEER_BAD_HEADER;
		return TP_PEER_BAD;
	}
	h->named = !ph.local;
	if (ph.tail.left > 0) {
		/* Longer than buf: keep the address, drop the rest as it comes. */
		h->tail = ph.tail;
		memcpy(h->buf, &ph.src, TP_PEER_KEPT);
		h->len = TP_PEER_KEPT;
		return TP_PEER_MORE;
	}
	if (h->named)
		*io_addr = ph.src;
	*ret_start = ph.len;
	return TP_PEER_DONE;
}

void tp_peer_read(struct tp_peer_hdr *h, int fd, struct sockaddr_storage *io_addr, char *addr, size_t addrlen,
                  uint16_t *io_port, _Atomic uint64_t *turned_away, struct tp_peer_outcome *ret)
{
	enum tp_peer_refusal why = TP_PEER_BAD_HEADER;
	enum tp_peer_verdict v = TP_PEER_MORE;

	*ret = (struct tp_peer_outcome){.readable = true};
	while (v == TP_PEER_MORE) {
		ssize_t n = read(fd, h->buf + h->len, sizeof(h->buf) - h->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret->eof = n == 0;
			ret->readable = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
			ret->err = n < 0 && ret->readable ? errno : 0;
			ret->done = ret->eof && h->mode == TP_PEER_REFUSE;
			if (!ret->eof || h->mode != TP_PEER_EXPECT || h->len == 0)
				return; /* nothing yet, an error, or a bare connect and close (a check) */
			why = TP_PEER_BAD_HEADER; /* a header cut short by the close */
			break;
		}
		ret->got = true;
		ret->nread += (size_t)n;
		h->len += (size_t)n;
		v = tp_peer_decide(h, io_addr, &ret->start, &why);
	}
	if (v != TP_PEER_DONE) {
		atomic_fetch_add_explicit(&turned_away[why], 1, memory_order_relaxed);
		ret->refusal = tp_peer_refusal_name(why);
		return;
	}
	ret->done = true;
	if (h->named) {
		tp_peer_addr_text(io_addr, addr, addrlen, io_port);
		tp_peer_log(addr, *io_port, "conn_proxied", "PROXY header names");
	}
}

void tp_peer_gate_set(struct tp_peer_gate *g, const struct tp_config *cfg)
{
	(void)tp_cidr_parse_list(cfg->allow, &g->allow);
	(void)tp_cidr_parse_list(cfg->proxy_trusted, &g->trusted);
	g->proxy_protocol = cfg->proxy_protocol;
}

bool tp_peer_gate_check(const struct tp_peer_gate *g, int fd, const struct sockaddr_storage *peer,
                        _Atomic uint64_t *turned_away, enum tp_peer_mode *ret_mode)
{
	if (g->allow.n > 0 && !tp_cidr_match(&g->allow, peer)) {
		close(fd);
		atomic_fetch_add_explicit(&turned_away[TP_PEER_NOT_ALLOWED], 1, memory_order_relaxed);
		return false;
	}
	if (!g->proxy_protocol)
		*ret_mode = TP_PEER_DIRECT;
	else
		*ret_mode = tp_cidr_match(&g->trusted, peer) ? TP_PEER_EXPECT : TP_PEER_REFUSE;
	return true;
}

void tp_peer_counts_load(_Atomic uint64_t *counts, uint64_t *ret)
{
	for (int i = 0; i < TP_PEER_REFUSAL_COUNT; i++)
		ret[i] = atomic_load_explicit(&counts[i], memory_order_relaxed);
}

void tp_peer_addr_text(const struct sockaddr_storage *ss, char *buf, size_t len, uint16_t *ret_port)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		(void)inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len);
		*ret_port = ntohs(s6->sin6_port);
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		(void)inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)len);
		*ret_port = ntohs(s4->sin_port);
	} else {
		snprintf(buf, len, "unknown");
		*ret_port = 0;
	}
}

void tp_peer_log(const char *addr, uint16_t port, const char *event, const char *what)
{
	char p[8], hp[80];
	snprintf(p, sizeof(p), "%u", port);
	tp_log_host_port(hp, sizeof(hp), addr, port); /* as the listeners are named */
	struct tp_log_field f[] = {{"CLIENT_ADDR", addr}, {"CLIENT_PORT", p}};
	tp_logf(TP_LOG_DEBUG, event, f, 2, "%s %s", what, hp);
}

/* Each refusal's name in the logs and as a metric's label value. */
static const struct {
	const char *name, *label;
} refusals[TP_PEER_REFUSAL_COUNT] = {
        [TP_PEER_BAD_HEADER] = {"bad PROXY header", "proxy_bad_header"},
        [TP_PEER_UNTRUSTED] = {"PROXY header from an untrusted peer", "proxy_untrusted"},
        [TP_PEER_TIMEOUT] = {"no PROXY header in time", "proxy_timeout"},
        [TP_PEER_NOT_ALLOWED] = {"not in listen.allow", "not_allowed"},
};

const char *tp_peer_refusal_name(enum tp_peer_refusal why)
{
	return (unsigned)why < TP_PEER_REFUSAL_COUNT ? refusals[why].name : "?";
}

const char *tp_peer_refusal_label(enum tp_peer_refusal why)
{
	return (unsigned)why < TP_PEER_REFUSAL_COUNT ? refusals[why].label : "unknown";
}

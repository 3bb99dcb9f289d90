/* SPDX-License-Identifier: MIT */
/*
 * conn_fixture: the rig the unit tests of a connection share: one
 * connection over a socketpair, with the test in the loop's place (it feeds
 * epoll events, plays the worker and reads what the client is sent).
 * Header only, so each test still links only the layer it tests.
 */
#ifndef TP_CONN_FIXTURE_H
#define TP_CONN_FIXTURE_H

#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "conn.h"
#include "proto.h"
#include "req.h"

#define MAX_BATCH 256

struct rig {
	struct tp_config cfg;
	struct tp_conn_env env;
	char scratch[16 * 1024];
	int peer; /* the client's end */
	struct tp_conn *c;
	struct tp_req *batch[MAX_BATCH]; /* the last turn's parsed requests */
	size_t nbatch;
};

static inline int setup(void **state)
{
	struct rig *g = calloc(1, sizeof(*g));
	int sv[2];
	struct sockaddr_storage peer = {0};

	assert_non_null(g);
	g->cfg.max_line_bytes = 1024;
	g->cfg.max_sleep_ms = 60000;
	g->cfg.queue_timeout_ms = 1000;
	g->cfg.max_unsent_kib = 256;
	g->cfg.queue_size = 1000;
	g->env.cfg = &g->cfg;
	g->env.unit_room = g->cfg.queue_size; /* an empty queue */
	tp_conn_env_now(&g->env, 1000);
	g->env.scratch = g->scratch;
	g->env.scratch_len = sizeof(g->scratch);
	g->env.epfd = epoll_create1(EPOLL_CLOEXEC);
	assert_true(g->env.epfd >= 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	g->peer = sv[1];
	g->c = tp_conn_new(&g->env, NULL, sv[0], &peer, TP_PEER_DIRECT);
	assert_non_null(g->c);
	*state = g;
	return 0;
}

static inline int teardown(void **state)
{
	struct rig *g = *state;

	if (g->c) {
		if (!g->c->closed)
			(void)tp_conn_close(g->c, "test over");
		g->c->ninflight = 0; /* requests the test left in flight are freed with it */
		tp_conn_free(g->c);
	}
	if (g->peer >= 0)
		close(g->peer);
	tp_req_cache_clear(&g->env.reqs);
	close(g->env.epfd);
	free(g);
	return 0;
}

static inline void send_peer(struct rig *g, const char *s)
{
	assert_int_equal(write(g->peer, s, strlen(s)), (ssize_t)strlen(s));
}

/* The loop's end of a turn: take the batch and let every connection parse anew. */
static inline void end_turn(struct rig *g)
{
	g->nbatch = 0;
	for (struct tp_req *r = g->env.batch.head; r; r = r->bnext) {
		assert_true(g->nbatch < MAX_BATCH);
		g->batch[g->nbatch++] = r;
	}
	assert_int_equal(g->nbatch, g->env.batch.n);
	g->env.batch = (struct tp_req_batch){0};
	g->env.turn++;
}

/* Readable: as epoll would report it. */
static inline unsigned readable(struct rig *g)
{
	return tp_conn_on_event(g->c, EPOLLIN);
}

/* The worker's part: format r's reply and hand it back. */
static inline unsigned run(struct rig *g, struct tp_req *r)
{
	if (r->op == TP_OP_ECHO)
		tp_proto_echo_finish(r->buf, r->len);
	else
		r->len = (uint32_t)tp_proto_format_sleep(r->sleep_ms, r->buf);
	r->status = TP_PROTO_OK;
	r->ran = true;
	return tp_conn_complete(g->c, r);
}

/* Read what the connection wrote to the client (waits up to 200 ms for the first byte). */
static inline size_t peer_read(struct rig *g, char *buf, size_t len)
{
	struct pollfd p = {g->peer, POLLIN, 0};
	size_t got = 0;

	if (poll(&p, 1, 200) <= 0)
		return 0;
	for (;;) {
		ssize_t n = read(g->peer, buf + got, len - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	return got;
}

static inline void assert_peer_reads(struct rig *g, const char *want)
{
	char buf[8192];
	peer_read(g, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of conn.c: one connection driven over a socketpair, with the
 * test in the loop's place: lines framed across reads, replies in request
 * order and counted once written, ops in any case and split anywhere
 * parsed alike, reading paused past the unsent bound and resumed, short
 * writes over TCP keeping the reply stream whole; and the struct within
 * the memory bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "conn.h"
#include "conn_fixture.h"
#include "metrics.h"
#include "proto.h"
#include "req.h"

/* As setup, over TCP on loopback with small buffers: writes may be cut short. */
static int setup_tcp(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int ls = socket(AF_INET, SOCK_STREAM, 0), cs = socket(AF_INET, SOCK_STREAM, 0), small = 4096;
	struct rig *g;

	assert_int_equal(setup(state), 0);
	g = *state;
	/* Small segments: one write of a few KiB spans several, and may stop between them. */
	assert_int_equal(setsockopt(ls, IPPROTO_TCP, TCP_MAXSEG, &(int){536}, sizeof(int)), 0);
	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(ls, 1), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
	assert_int_equal(setsockopt(cs, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	assert_int_equal(connect(cs, (struct sockaddr *)&a, sizeof(a)), 0);
	int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
	assert_true(fd >= 0);
	close(ls);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	assert_int_equal(fcntl(cs, F_SETFL, O_NONBLOCK), 0);
	/* Swap the socketpair for the TCP pair. */
	close(g->peer);
	g->peer = cs;
	assert_int_equal(dup2(fd, g->c->fd), g->c->fd);
	close(fd);
	return 0;
}

static void test_lines_framed_across_reads(void **state)
{
	struct rig *g = *state;

	send_peer(g, "ECHO a\nSLEEP 5\nEC");
	assert_true(readable(g) & TP_CONN_ACTIVE);
	end_turn(g);
	assert_int_equal(g->nbatch, 2);
	assert_int_equal(g->batch[0]->op, TP_OP_ECHO);
	/* Laid down as its reply will be, but for the "OK " a worker writes. */
	assert_int_equal(g->batch[0]->len, 5);
	assert_memory_equal(g->batch[0]->buf + 3, "a\n", 2);
	assert_int_equal(tp_req_lines(g->batch[0]), 1);
	assert_int_equal(g->batch[1]->op, TP_OP_SLEEP);
	assert_int_equal(g->batch[1]->sleep_ms, 5);
	/* Deadline: arrival (this turn's time) plus queue_timeout_ms. */
	assert_int_equal(g->batch[1]->qnode.deadline_ns, 1000 + 1000 * 1000000ull);
	assert_true(g->batch[0]->qnode.batchable);
	assert_false(g->batch[1]->qnode.batchable);

	/* The rest of the split line, then a line refused at parse time. */
	send_peer(g, "HO b\r\nFOO 1\n");
	unsigned ev = readable(g);
	assert_true(ev & TP_CONN_WRITE); /* the ERR reply is ready at once */
	end_turn(g);
	assert_int_equal(g->nbatch, 1);
	assert_int_equal(g->batch[0]->len, 5);
	assert_memory_equal(g->batch[0]->buf + 3, "b\n", 2);
	assert_int_equal(g->c->nreqs, 4);
	assert_int_equal(g->c->ninflight, 3);
}

static void test_replies_leave_in_request_order(void **state)
{
	struct rig *g = *state;
	struct tp_req *r[3];

	send_peer(g, "ECHO 1\nSLEEP 0\nBAD\nECHO 3\n");
	(void)readable(g);
	end_turn(g);
	assert_int_equal(g->nbatch, 3);
	memcpy(r, g->batch, sizeof(r));

	/* The second finishes first: nothing may be written before the first. */
	assert_false(run(g, r[1]) & TP_CONN_WRITE);
	(void)tp_conn_flush(g->c, false);
	char buf[64];
	assert_int_equal(peer_read(g, buf, sizeof(buf)), 0);

	/* The head is done: it goes, with everything done behind it, the ERR included. */
	assert_true(run(g, r[0]) & TP_CONN_WRITE);
	assert_int_equal(tp_conn_flush(g->c, false), TP_CONN_ACTIVE);
	assert_peer_reads(g, "OK 1\nOK 0\nERR unknown op BAD\n");
	assert_true(run(g, r[2]) & TP_CONN_WRITE);
	(void)tp_conn_flush(g->c, false);
	assert_peer_reads(g, "OK 3\n");
	assert_int_equal(atomic_load(&g->env.served), 4);
	assert_int_equal(g->c->nreqs, 0);
	assert_int_equal(g->c->pending_bytes, 0);
}

/*
 * Lines in any case, split anywhere (inside the op's name too), give the
 * requests their upper-case spelling gives.
 */
static void test_any_case_and_split_parse_alike(void **state)
{
	struct rig *g = *state;
	static const char *const chunks[] = {
	        "ECHO hi\necho hi\nEcHo hi\nSLEEP 7\nsleep 7\nsLEEP 7\nSLE",
	        "EP 7\nEC",
	        "HO hi\nech",
	        "o hi\nECHO",
	        " hi\nSLEEP",
	        " 7\n",
	};

	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		send_peer(g, chunks[i]);
		(void)readable(g);
	}
	end_turn(g);
	/* Lines 0-2 are read at once: one unit (any case is ECHO); 7-9 each end a read: alone. */
	assert_int_equal(g->nbatch, 9);
	for (size_t i = 0, line = 0; i < g->nbatch; line += tp_req_lines(g->batch[i]), i++) {
		struct tp_req *r = g->batch[i];
		bool echo = line < 3 || (line >= 7 && line < 10);
		assert_int_equal(r->op, echo ? TP_OP_ECHO : TP_OP_SLEEP);
		assert_int_equal(tp_req_lines(r), line == 0 ? 3 : 1);
		assert_int_equal(r->status, TP_PROTO_OK);
		if (echo) {
			assert_int_equal(r->len, 6 * tp_req_lines(r));
			for (size_t k = 0; k < tp_req_lines(r); k++)
				assert_memory_equal(r->buf + 6 * k + 3, "hi\n", 3);
		} else {
			assert_int_equal(r->sleep_ms, 7);
		}
	}
}

/* Replies are counted in the loop's metrics by the time their write returns. */
static void test_replies_counted_when_written(void **state)
{
	struct rig *g = *state;
	struct tp_metrics *m = tp_metrics_new(1);
	struct tp_metrics_slot sum;

	g->env.metrics = tp_metrics_slot(m, 0);
	send_peer(g, "ECHO a\nECHO b\nBAD\nSLEEP 0\nECHO c\n");
	(void)readable(g);
	end_turn(g);
	/* ECHO a and b: one unit, counted as the two requests it answers. */
	assert_int_equal(g->nbatch, 3);
	assert_int_equal(tp_req_lines(g->batch[0]), 2);
	for (size_t i = 0; i < 2; i++)
		(void)run(g, g->batch[i]);
	tp_conn_env_now(&g->env, g->env.now_ns + 30 * 1000); /* answered 30 us after they were read */
	(void)tp_conn_flush(g->c, false);
	assert_peer_reads(g, "OK a\nOK b\nERR unknown op BAD\nOK 0\n");
	tp_metrics_sum(m, &sum);
	assert_int_equal(sum.requests[TP_OP_ECHO][TP_PROTO_OK], 2);
	assert_int_equal(sum.requests[TP_METRICS_OP_NONE][TP_PROTO_UNKNOWN_OP], 1);
	assert_int_equal(sum.requests[TP_OP_SLEEP][TP_PROTO_OK], 1);
	assert_int_equal(sum.duration[TP_OP_ECHO].counts[tp_metrics_hist_bucket(30 * 1000)], 2);
	assert_int_equal(sum.duration[TP_OP_ECHO].sum_ns, 2 * 30 * 1000);
	assert_int_equal(sum.admission[TP_ADMIT_ADMITTED].counts[0], 3);

	(void)run(g, g->batch[2]);
	(void)tp_conn_flush(g->c, false);
	assert_peer_reads(g, "OK c\n");
	tp_metrics_sum(m, &sum);
	assert_int_equal(sum.requests[TP_OP_ECHO][TP_PROTO_OK], 3);
	g->env.metrics = NULL;
	tp_metrics_free(m);
}

static void test_pauses_past_the_unsent_bound(void **state)
{
	struct rig *g = *state;
	char line[500], text[401];
	size_t total = 0;

	g->cfg.max_unsent_kib = 1; /* 1024 bytes of replies held at most */
	tp_conn_env_now(&g->env, g->env.now_ns);
	/* Too long to share a unit's slot: each line is a request of its own. */
	memset(text, 'x', 400);
	text[400] = '\0';
	snprintf(line, sizeof(line), "ECHO %s\n", text);
	for (int i = 0; i < 10; i++)
		send_peer(g, line);

	(void)readable(g);
	end_turn(g);
	/* Each holds 404 bytes: reading stops once over 1024, after the third. */
	assert_int_equal(g->nbatch, 3);
	assert_true(g->c->pending_bytes > 1024);
	total += g->nbatch;
	/* Paused: another turn parses nothing, whatever epoll says. */
	assert_false(readable(g) & TP_CONN_READ);
	end_turn(g);
	assert_int_equal(g->nbatch, 0);

	/* The client reads the replies: below the bound, reading goes on. */
	for (struct tp_req *q = g->c->ohead; q; q = q->onext)
		if (!q->done)
			(void)run(g, q);
	assert_true(tp_conn_flush(g->c, false) & TP_CONN_READ);
	char buf[8192];
	assert_int_equal(peer_read(g, buf, sizeof(buf)), 3 * 404);
	(void)tp_conn_process(g->c);
	end_turn(g);
	assert_int_equal(g->nbatch, 3);
	total += g->nbatch;
	assert_true(total < 10);
}

/*
 * Replies gathered into one write survive a full socket and short writes:
 * the client reads every byte once, in order, however the kernel cut them.
 */
static void test_short_writes_keep_the_reply_stream(void **state)
{
	struct rig *g = *state;
	enum { N = 64 };
	char junk[512], lines[N * 80], want[N * 80], got[256 * 1024];
	const char *pad = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz";
	size_t njunk = 0, ngot = 0, nwant = 0, nlines = 0;

	memset(junk, '#', sizeof(junk));
	for (int i = 0; i < N; i++) {
		/* About 60 bytes each: the turn's replies fill one gathered write of some 3.8 KiB. */
		nlines += (size_t)snprintf(lines + nlines, sizeof(lines) - nlines, "ECHO r%02d-%s\n", i, pad);
		nwant += (size_t)snprintf(want + nwant, sizeof(want) - nwant, "OK r%02d-%s\n", i, pad);
	}
	send_peer(g, lines);
	(void)poll(&(struct pollfd){g->c->fd, POLLIN, 0}, 1, 200);
	(void)readable(g);
	end_turn(g);
	size_t nlines_read = 0;
	for (size_t i = 0; i < g->nbatch; i++) {
		nlines_read += tp_req_lines(g->batch[i]);
		(void)run(g, g->batch[i]);
	}
	assert_int_equal(nlines_read, N);
	/* Fill the socket, so the replies go out as the client frees room. */
	for (int tries = 0; tries < 50; tries++) {
		for (ssize_t w; (w = write(g->c->fd, junk, sizeof(junk))) > 0;)
			njunk += (size_t)w;
		usleep(1000); /* acknowledgements free the send buffer for a while */
	}
	(void)tp_conn_flush(g->c, false);
	/* The client reads a little at a time, so the kernel takes the replies in pieces. */
	for (int round = 0; round < 10000 && (g->c->ohead || ngot < njunk + nwant); round++) {
		ssize_t n = read(g->peer, got + ngot, 300);
		if (n > 0)
			ngot += (size_t)n;
		(void)tp_conn_on_event(g->c, EPOLLOUT);
		(void)tp_conn_flush(g->c, false);
	}
	assert_null(g->c->ohead);
	assert_int_equal(ngot, njunk + nwant);
	for (size_t i = 0; i < njunk; i++)
		assert_int_equal(got[i], '#');
	assert_memory_equal(got + njunk, want, nwant);
}

/*
 * docs/MEMORY.md's bound per connection counts struct tp_conn at 472 bytes
 * (480 with malloc's header): a field that grows it must move that bound.
 */
static void test_struct_within_the_memory_bound(void **state)
{
	(void)state;
	assert_true(sizeof(struct tp_conn) <= 472);
}

int main(void)
{
	/* A write to a client that left must be an EPIPE, as in the daemon. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_struct_within_the_memory_bound),
	        cmocka_unit_test_setup_teardown(test_lines_framed_across_reads, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_replies_leave_in_request_order, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_any_case_and_split_parse_alike, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_replies_counted_when_written, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pauses_past_the_unsent_bound, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_short_writes_keep_the_reply_stream, setup_tcp, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

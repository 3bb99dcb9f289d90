/* SPDX-License-Identifier: MIT */
/*
 * test_conn: one connection driven over a socketpair, with the test in the
 * loop's place: it feeds epoll events, plays the worker (formats replies
 * and completes requests) and checks what the connection reports.
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
#include "metrics.h"
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

static int setup(void **state)
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

static int teardown(void **state)
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

static void send_peer(struct rig *g, const char *s)
{
	assert_int_equal(write(g->peer, s, strlen(s)), (ssize_t)strlen(s));
}

/* The loop's end of a turn: take the batch and let every connection parse anew. */
static void end_turn(struct rig *g)
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
static unsigned readable(struct rig *g)
{
	return tp_conn_on_event(g->c, EPOLLIN);
}

/* The worker's part: format r's reply and hand it back. */
static unsigned run(struct rig *g, struct tp_req *r)
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
static size_t peer_read(struct rig *g, char *buf, size_t len)
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

static void assert_peer_reads(struct rig *g, const char *want)
{
	char buf[8192];
	peer_read(g, buf, sizeof(buf));
	assert_string_equal(buf, want);
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

/* Append n lines "ECHO <tag><i>" to buf (want: their replies), from i = first. */
static void echo_lines(char *buf, char *want, const char *tag, int first, int n)
{
	for (int i = first; i < first + n; i++) {
		sprintf(buf + strlen(buf), "ECHO %s%d\n", tag, i);
		sprintf(want + strlen(want), "OK %s%d\n", tag, i);
	}
}

/*
 * ECHO lines read together form units of up to TP_REQ_UNIT_LINES lines,
 * broken by any other line; each unit holds one slot, stands for its
 * lines in the queue and is answered line by line, in order.
 */
static void test_echo_lines_read_together_form_units(void **state)
{
	struct rig *g = *state;
	char in[1024] = "", want[1024] = "";
	static const uint32_t lines[] = {TP_REQ_UNIT_LINES, 4, 1, 2};

	echo_lines(in, want, "a", 0, TP_REQ_UNIT_LINES + 4);
	strcat(in, "SLEEP 0\n");
	strcat(want, "OK 0\n");
	echo_lines(in, want, "b", 0, 2);
	send_peer(g, in);
	(void)readable(g);
	end_turn(g);
	assert_int_equal(g->nbatch, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(tp_req_lines(g->batch[i]), lines[i]);
		assert_int_equal(g->batch[i]->qnode.more, lines[i] - 1);
		assert_true(g->batch[i]->qnode.batchable);
	}
	assert_int_equal(g->batch[2]->op, TP_OP_SLEEP);
	/* Slots: a unit's for ECHO lines followed by another, the smallest for the SLEEP. */
	assert_int_equal(g->c->pending_bytes, 3 * TP_REQ_UNIT_CAP + TP_REQ_MIN_CAP);
	assert_int_equal(g->c->nreqs, 4);
	assert_int_equal(g->c->ninflight, 4);
	for (size_t i = 4; i-- > 0;)
		(void)run(g, g->batch[i]);
	(void)tp_conn_flush(g->c, false);
	assert_peer_reads(g, want);
	assert_int_equal(atomic_load(&g->env.served), TP_REQ_UNIT_LINES + 4 + 1 + 2);
	assert_int_equal(g->c->pending_bytes, 0);
}

/* A unit takes lines of its own turn only: once the batch is pushed, the next line starts anew. */
static void test_units_end_with_their_turn(void **state)
{
	struct rig *g = *state;

	send_peer(g, "ECHO a\nECHO b\nECH");
	(void)readable(g);
	end_turn(g);
	assert_int_equal(g->nbatch, 1);
	assert_int_equal(tp_req_lines(g->batch[0]), 2);
	struct tp_req *u = g->batch[0];
	send_peer(g, "O c\nECHO d\n");
	(void)readable(g);
	end_turn(g);
	/* c completes a partial line: nothing is known to follow it, so d cannot join it. */
	assert_int_equal(g->nbatch, 2);
	assert_int_equal(tp_req_lines(g->batch[0]), 1);
	assert_int_equal(g->batch[0]->cap, TP_REQ_MIN_CAP);
	assert_int_equal(tp_req_lines(u), 2);
	(void)run(g, u);
	(void)run(g, g->batch[0]);
	(void)run(g, g->batch[1]);
	(void)tp_conn_flush(g->c, false);
	assert_peer_reads(g, "OK a\nOK b\nOK c\nOK d\n");
}

/* A unit that fails (expired, cancelled) answers each of its lines with the error, counted per line. */
static void test_failed_unit_answers_every_line(void **state)
{
	struct rig *g = *state;
	struct tp_metrics *m = tp_metrics_new(1);
	struct tp_metrics_slot sum;

	g->env.metrics = tp_metrics_slot(m, 0);
	send_peer(g, "ECHO a\nECHO b\nECHO c\n");
	(void)readable(g);
	end_turn(g);
	assert_int_equal(g->nbatch, 1);
	struct tp_req *u = g->batch[0];
	tp_conn_waiting(g->c, u);
	tp_req_fail(u, TP_PROTO_BUSY);
	(void)tp_conn_complete(g->c, u);
	(void)tp_conn_flush(g->c, false);
	assert_peer_reads(g, "ERR server busy\nERR server busy\nERR server busy\n");
	assert_int_equal(atomic_load(&g->env.served), 3);
	tp_metrics_sum(m, &sum);
	assert_int_equal(sum.requests[TP_OP_ECHO][TP_PROTO_BUSY], 3);
	g->env.metrics = NULL;
	tp_metrics_free(m);
}

/* A unit's slot is taken only when the next line would join it: not before an ECHO too long for it. */
static void test_no_unit_slot_before_a_line_that_cannot_join(void **state)
{
	struct rig *g = *state;
	char in[1024];

	snprintf(in, sizeof(in), "ECHO a\nECHO %0800d\nECHO b\nECHO c\n", 7);
	send_peer(g, in);
	(void)readable(g);
	end_turn(g);
	assert_int_equal(g->nbatch, 3);
	assert_int_equal(g->batch[0]->cap, TP_REQ_MIN_CAP);
	assert_int_equal(g->batch[1]->cap, 804);
	assert_int_equal(g->batch[2]->cap, TP_REQ_UNIT_CAP);
	assert_int_equal(tp_req_lines(g->batch[0]), 1);
	assert_int_equal(tp_req_lines(g->batch[1]), 1);
	assert_int_equal(tp_req_lines(g->batch[2]), 2);
	assert_int_equal(g->c->pending_bytes, TP_REQ_MIN_CAP + 804 + TP_REQ_UNIT_CAP);
}

/* Nor before a line over limits.max_line_bytes (answered too long, never joined). */
static void test_no_unit_slot_before_a_line_over_the_limit(void **state)
{
	struct rig *g = *state;
	char in[1024];

	g->cfg.max_line_bytes = 16;
	tp_framer_set_max_line(&g->c->framer, 16);
	snprintf(in, sizeof(in), "ECHO a\nECHO %040d\nECHO b\nECHO %040d\n", 7, 8);
	send_peer(g, in);
	(void)readable(g);
	end_turn(g);
	assert_int_equal(g->nbatch, 2);
	assert_int_equal(g->batch[0]->cap, TP_REQ_MIN_CAP);
	assert_int_equal(g->batch[1]->cap, TP_REQ_MIN_CAP);
	assert_int_equal(tp_req_lines(g->batch[0]), 1);
	assert_int_equal(tp_req_lines(g->batch[1]), 1);
}

/*
 * A turn's units stay within the places the queue had free (unit_room):
 * past them each line is a request of its own, and while requests wait
 * (room 0) no unit forms at all.
 */
static void test_units_stay_within_the_room(void **state)
{
	struct rig *g = *state;
	char in[256] = "", want[256] = "";
	static const uint32_t room3[] = {3, 1, 1, 1, 1};

	g->env.unit_room = 3;
	echo_lines(in, want, "", 0, 7);
	send_peer(g, in);
	(void)readable(g);
	end_turn(g);
	assert_int_equal(g->nbatch, 5);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(tp_req_lines(g->batch[i]), room3[i]);

	g->env.unit_room = 0;
	send_peer(g, in);
	(void)readable(g);
	end_turn(g);
	assert_int_equal(g->nbatch, 7);
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(tp_req_lines(g->batch[i]), 1);
}

/* The turn's share of a connection is counted in lines, units or not. */
static void test_turn_share_counts_lines(void **state)
{
	struct rig *g = *state;
	char in[2048] = "", want[2048] = "";
	size_t n = 0;

	echo_lines(in, want, "", 0, 70);
	send_peer(g, in);
	assert_true(readable(g) & TP_CONN_READ); /* its share is full: the rest next turn */
	end_turn(g);
	for (size_t i = 0; i < g->nbatch; i++)
		n += tp_req_lines(g->batch[i]);
	assert_int_equal(n, 64);
	assert_int_equal(g->nbatch, 64 / TP_REQ_UNIT_LINES);
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

static void test_half_close_gets_replies_then_closed(void **state)
{
	struct rig *g = *state;

	send_peer(g, "ECHO x\n");
	assert_int_equal(shutdown(g->peer, SHUT_WR), 0);
	unsigned ev = tp_conn_on_event(g->c, EPOLLIN | EPOLLRDHUP);
	assert_true(g->c->eof);
	assert_true(ev & TP_CONN_WRITE); /* so that the flush can decide to close */
	end_turn(g);
	assert_int_equal(g->nbatch, 1);

	/* Its request is still out: not closed yet. */
	assert_false(tp_conn_flush(g->c, false) & TP_CONN_CLOSED);
	assert_false(g->c->closed);

	(void)run(g, g->batch[0]);
	assert_true(tp_conn_flush(g->c, false) & TP_CONN_CLOSED);
	assert_true(g->c->closed);
	assert_true(tp_conn_is_gone(g->c));
	assert_true(tp_conn_unused(g->c));
	assert_peer_reads(g, "OK x\n");
	char b;
	assert_int_equal(read(g->peer, &b, 1), 0); /* then EOF */
}

static void test_more_input_delays_the_close(void **state)
{
	struct rig *g = *state;

	assert_int_equal(shutdown(g->peer, SHUT_WR), 0);
	(void)tp_conn_on_event(g->c, EPOLLIN | EPOLLRDHUP);
	assert_true(g->c->eof);
	/* Still on the ready list: the loop will come back; no close yet. */
	assert_int_equal(tp_conn_flush(g->c, true), 0);
	assert_int_equal(tp_conn_flush(g->c, false), TP_CONN_CLOSED);
	/* Reported once: closing again reports nothing. */
	assert_int_equal(tp_conn_close(g->c, "again"), 0);
}

static void test_close_with_work_in_flight(void **state)
{
	struct rig *g = *state;

	send_peer(g, "SLEEP 100\n");
	(void)readable(g);
	end_turn(g);
	assert_int_equal(tp_conn_close(g->c, "test"), TP_CONN_CLOSED);
	assert_true(tp_conn_is_gone(g->c));
	/* Its request is on a worker: it must not be freed yet. */
	assert_false(tp_conn_unused(g->c));
	/* It comes back: nothing to write on a closed connection, and now it may go. */
	assert_false(run(g, g->batch[0]) & TP_CONN_WRITE);
	assert_true(tp_conn_unused(g->c));
	assert_int_equal(tp_conn_flush(g->c, false), 0);
}

static void test_write_error_reported_as_closed(void **state)
{
	struct rig *g = *state;

	send_peer(g, "ECHO gone\n");
	(void)readable(g);
	end_turn(g);
	close(g->peer);
	g->peer = -1;
	(void)run(g, g->batch[0]);
	assert_true(tp_conn_flush(g->c, false) & TP_CONN_CLOSED);
	assert_true(g->c->closed);
}

static void test_shutdown_refuses_new_lines_but_serves_a_silent_first_one(void **state)
{
	struct rig *g = *state;

	/* Silent so far: its first request is served during the grace. */
	g->env.shutting_down = true;
	unsigned ev = tp_conn_shutdown(g->c, 5000);
	assert_true(ev & TP_CONN_WRITE);
	assert_true(g->c->grace);
	send_peer(g, "ECHO first\n");
	(void)readable(g);
	end_turn(g);
	assert_int_equal(g->nbatch, 1);
	assert_false(g->c->grace);
	/* Its first request is in: a later line is refused at once. */
	send_peer(g, "ECHO second\n");
	assert_true(readable(g) & TP_CONN_WRITE);
	end_turn(g);
	assert_int_equal(g->nbatch, 0);
	assert_false(tp_conn_flush(g->c, false) & TP_CONN_CLOSED); /* the first is still out */
	(void)run(g, g->c->ohead);
	assert_true(tp_conn_flush(g->c, false) & TP_CONN_CLOSED);
	assert_peer_reads(g, "OK first\nERR server shutting down\n");
}

static void test_grace_runs_out(void **state)
{
	struct rig *g = *state;

	(void)tp_conn_shutdown(g->c, 5000);
	assert_int_equal(tp_conn_grace_check(g->c, 4999), 0);
	assert_true(g->c->grace);
	assert_int_equal(tp_conn_grace_check(g->c, 5000), TP_CONN_WRITE);
	assert_false(g->c->grace);
}

/*
 * Keeping: what was framed is answered normally, the partial line is not
 * (nor read further); once the replies are out the connection asks to be
 * handed over, with the partial line in its record, and its fd is kept.
 */
static void test_keeping_answers_what_was_read_and_carries_the_rest(void **state)
{
	struct rig *g = *state;
	struct tp_handover_conn rec;
	int fd;

	send_peer(g, "ECHO one\nECHO tw");
	(void)readable(g);
	end_turn(g);
	assert_int_equal(g->nbatch, 1);
	g->env.shutting_down = g->env.keeping = true;
	assert_int_equal(tp_conn_shutdown(g->c, 5000), TP_CONN_WRITE);
	assert_false(g->c->grace);
	send_peer(g, "o\nECHO three\n"); /* stays in the socket */
	assert_false(readable(g) & TP_CONN_READ);
	end_turn(g);
	assert_int_equal(g->nbatch, 0);
	assert_false(tp_conn_flush(g->c, false) & (TP_CONN_HANDOFF | TP_CONN_CLOSED)); /* ECHO one is out */
	(void)run(g, g->c->ohead);
	assert_true(tp_conn_flush(g->c, false) & TP_CONN_HANDOFF);
	assert_peer_reads(g, "OK one\n");
	fd = tp_conn_handover_record(g->c, &rec);
	assert_int_equal(fd, g->c->fd);
	assert_int_equal(rec.input_len, 7);
	assert_memory_equal(rec.input, "ECHO tw", 7);
	assert_int_equal(tp_conn_handed_off(g->c), TP_CONN_CLOSED);
	assert_int_equal(g->c->fd, -1);
	/* The fd is the hand-over's now: still open, with the rest unread. */
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf));
	assert_int_equal(n, 13);
	assert_memory_equal(buf, "o\nECHO three\n", 13);
	close(fd);
}

/*
 * Keeping, a connection whose PROXY header came only in part is not handed
 * over (the next instance takes every connection as past its header and
 * would read the rest of it as requests): it ends as without keeping, its
 * grace to finish the header and send a first request, then the close.
 * One whose header is whole is handed over.
 */
static void test_keeping_does_not_hand_over_half_a_header(void **state)
{
	struct rig *g = *state;
	struct sockaddr_storage peer = {0};
	const char *sent[2] = {"PROXY TCP4 192.0.2.1 192.0", "PROXY TCP4 192.0.2.1 192.0.2.2 5000 9000\r\n"};
	struct tp_conn *c[2];
	int sv[2][2];
	char b;

	for (int i = 0; i < 2; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv[i]), 0);
		c[i] = tp_conn_new(&g->env, NULL, sv[i][0], &peer, TP_PEER_EXPECT);
		assert_non_null(c[i]);
		assert_int_equal(write(sv[i][1], sent[i], strlen(sent[i])), (ssize_t)strlen(sent[i]));
		(void)tp_conn_on_event(c[i], EPOLLIN);
		assert_false(c[i]->closed);
	}
	assert_non_null(c[0]->hdr); /* still waiting for the rest of its header */
	assert_null(c[1]->hdr);
	assert_string_equal(c[1]->addr, "192.0.2.1");
	g->env.shutting_down = g->env.keeping = true;
	assert_int_equal(tp_conn_shutdown(c[0], 5000), TP_CONN_READ | TP_CONN_WRITE);
	assert_int_equal(tp_conn_shutdown(c[1], 5000), TP_CONN_WRITE);
	assert_true(c[0]->grace);
	assert_int_equal(tp_conn_flush(c[0], false) & (TP_CONN_HANDOFF | TP_CONN_CLOSED), 0);
	assert_int_equal(tp_conn_grace_check(c[0], 5000), TP_CONN_WRITE);
	assert_int_equal(tp_conn_flush(c[0], false) & (TP_CONN_HANDOFF | TP_CONN_CLOSED), TP_CONN_CLOSED);
	assert_int_equal(read(sv[0][1], &b, 1), 0); /* its proxy sees the close */
	assert_int_equal(tp_conn_flush(c[1], false) & (TP_CONN_HANDOFF | TP_CONN_CLOSED), TP_CONN_HANDOFF);
	(void)tp_conn_close(c[1], "test over");
	for (int i = 0; i < 2; i++) {
		tp_conn_free(c[i]);
		close(sv[i][1]);
	}
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
	        cmocka_unit_test_setup_teardown(test_echo_lines_read_together_form_units, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_units_end_with_their_turn, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_failed_unit_answers_every_line, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_turn_share_counts_lines, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_units_stay_within_the_room, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_no_unit_slot_before_a_line_that_cannot_join, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_no_unit_slot_before_a_line_over_the_limit, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_pauses_past_the_unsent_bound, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_short_writes_keep_the_reply_stream, setup_tcp, teardown),
	        cmocka_unit_test_setup_teardown(test_half_close_gets_replies_then_closed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_more_input_delays_the_close, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_close_with_work_in_flight, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_write_error_reported_as_closed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_shutdown_refuses_new_lines_but_serves_a_silent_first_one,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_grace_runs_out, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_keeping_answers_what_was_read_and_carries_the_rest,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_keeping_does_not_hand_over_half_a_header, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of conn.c's units: ECHO lines read together go to the queue
 * as one unit, within their turn and within the queue's room; a failed
 * unit answers each of its lines; a unit's slot is taken only when the
 * next line would join it; and the turn's share counted in lines.
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

int main(void)
{
	/* A write to a client that left must be an EPIPE, as in the daemon. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_echo_lines_read_together_form_units, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_units_end_with_their_turn, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_failed_unit_answers_every_line, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_turn_share_counts_lines, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_units_stay_within_the_room, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_no_unit_slot_before_a_line_that_cannot_join, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_no_unit_slot_before_a_line_over_the_limit, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

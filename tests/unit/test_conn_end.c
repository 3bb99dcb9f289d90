/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of conn_end.c: a half-closed connection answered then closed
 * (later input delaying the close), a close with work in flight, a write
 * error reported as closed, and shutdown: new lines refused but a silent
 * connection's first one served, and the grace running out.
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

int main(void)
{
	/* A write to a client that left must be an EPIPE, as in the daemon. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_half_close_gets_replies_then_closed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_more_input_delays_the_close, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_close_with_work_in_flight, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_write_error_reported_as_closed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_shutdown_refuses_new_lines_but_serves_a_silent_first_one,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_grace_runs_out, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of conn_handover.c: a keeping connection answers what it
 * framed and hands over the rest in its record, its fd kept; and half a
 * PROXY header is closed rather than handed over.
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

int main(void)
{
	/* A write to a client that left must be an EPIPE, as in the daemon. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_keeping_answers_what_was_read_and_carries_the_rest,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_keeping_does_not_hand_over_half_a_header, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

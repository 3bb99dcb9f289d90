/* SPDX-License-Identifier: MIT */
/*
 * test_dispatch: the hand-off between the queue and the loops.  The loops'
 * posting functions are replaced by recorders defined here (the linker
 * then takes no loop.o from the library), so each test sees exactly what
 * the dispatcher posted to which loop, in which runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "conn.h"
#include "dispatch.h"
#include "loop.h"
#include "queue.h"
#include "req.h"

#define MAX_POSTS 16

struct post {
	struct tp_loop *loop;
	struct tp_req *first, *last;
	size_t n;
};

static struct post posts[MAX_POSTS];
static size_t nposts;
static struct {
	struct tp_loop *loop;
	struct tp_req *r;
} admits[MAX_POSTS];
static size_t nadmits;

void tp_loop_post_done(struct tp_loop *l, struct tp_req *first, struct tp_req *last, size_t n)
{
	assert_true(nposts < MAX_POSTS);
	posts[nposts++] = (struct post){l, first, last, n};
}

void tp_loop_post_admit(struct tp_loop *l, struct tp_req *r)
{
	assert_true(nadmits < MAX_POSTS);
	admits[nadmits].loop = l;
	admits[nadmits++].r = r;
}

/* Two stand-in loops: the dispatcher only compares and passes the pointers. */
static char loop_a, loop_b;
#define LOOP_A ((struct tp_loop *)(void *)&loop_a)
#define LOOP_B ((struct tp_loop *)(void *)&loop_b)

static int setup(void **state)
{
	(void)state;
	nposts = nadmits = 0;
	return 0;
}

static struct tp_conn *conn_of(struct tp_loop *l)
{
	struct tp_conn *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->loop = l;
	return c;
}

/* An ECHO request of c carrying n lines (a unit when n > 1), laid down as the loop lays them. */
static struct tp_req *echo_lines(struct tp_conn *c, const char *const *texts, size_t n)
{
	size_t cap = n > 1 ? TP_REQ_UNIT_CAP : TP_REQ_MIN_CAP;
	struct tp_req *r = calloc(1, sizeof(*r) + cap);
	assert_non_null(r);
	r->conn = c;
	r->op = TP_OP_ECHO;
	r->cap = (uint32_t)cap;
	r->qnode.batchable = true;
	r->qnode.more = (uint16_t)(n - 1);
	for (size_t i = 0; i < n; i++)
		r->len += (uint32_t)tp_proto_echo_place(texts[i], strlen(texts[i]), r->buf + r->len);
	return r;
}

static struct tp_req *echo(struct tp_conn *c, const char *text)
{
	return echo_lines(c, &text, 1);
}

static struct tp_req *sleep_req(struct tp_conn *c, uint32_t ms)
{
	struct tp_req *r = calloc(1, sizeof(*r) + TP_REQ_MIN_CAP);
	assert_non_null(r);
	r->conn = c;
	r->op = TP_OP_SLEEP;
	r->cap = TP_REQ_MIN_CAP;
	r->sleep_ms = ms;
	return r;
}

static void assert_reply(const struct tp_req *r, const char *want)
{
	assert_int_equal(r->status, TP_PROTO_OK);
	assert_int_equal(r->len, strlen(want));
	assert_memory_equal(r->buf, want, r->len);
}

/* The requests of one post, followed through dnext, are exactly want[0..n). */
static void assert_chain(const struct post *p, struct tp_req *const *want, size_t n)
{
	struct tp_req *r = p->first;
	assert_int_equal(p->n, n);
	for (size_t i = 0; i < n; i++) {
		assert_ptr_equal(r, want[i]);
		if (i + 1 < n)
			r = r->dnext;
	}
	assert_ptr_equal(r, p->last);
	assert_null(p->last->dnext);
}

static void test_batch_posted_in_runs_per_loop(void **state)
{
	struct tp_conn *a = conn_of(LOOP_A), *b = conn_of(LOOP_B);
	struct tp_req *r[5] = {echo(a, "a1"), echo(a, "a2"), echo(b, "b1"), echo(b, ""), echo(a, "a3")};
	struct tp_qnode *nodes[5];
	struct tp_dispatch d = {NULL};

	(void)state;
	for (int i = 0; i < 5; i++)
		nodes[i] = &r[i]->qnode;
	tp_dispatch_exec(nodes, 5, &d);

	assert_reply(r[0], "OK a1\n");
	assert_reply(r[1], "OK a2\n");
	assert_reply(r[2], "OK b1\n");
	assert_reply(r[3], "OK \n");
	assert_reply(r[4], "OK a3\n");
	/* One post per run of the same loop, in order: A A | B B | A. */
	assert_int_equal(nposts, 3);
	assert_ptr_equal(posts[0].loop, LOOP_A);
	assert_ptr_equal(posts[1].loop, LOOP_B);
	assert_ptr_equal(posts[2].loop, LOOP_A);
	assert_chain(&posts[0], &r[0], 2);
	assert_chain(&posts[1], &r[2], 2);
	assert_chain(&posts[2], &r[4], 1);
	for (int i = 0; i < 5; i++)
		free(r[i]);
	free(a);
	free(b);
}

static void test_work_of_a_client_that_left_is_skipped(void **state)
{
	struct tp_conn *gone = conn_of(LOOP_A), *here = conn_of(LOOP_A);
	/* A 10 s SLEEP; run, it would need the pool (NULL here) and take 10 s. */
	struct tp_req *r[3] = {sleep_req(gone, 10000), echo(gone, "lost"), echo(here, "kept")};
	struct tp_qnode *nodes[3] = {&r[0]->qnode, &r[1]->qnode, &r[2]->qnode};
	struct tp_dispatch d = {NULL};

	(void)state;
	atomic_store(&gone->gone, true);
	uint64_t t0 = tp_clock_ns();
	tp_dispatch_exec(nodes, 3, &d);
	assert_true(tp_clock_ns() - t0 < 1000000000ull);

	/* Skipped: an empty OK nobody will read, but still handed back to free. */
	assert_int_equal(r[0]->status, TP_PROTO_OK);
	assert_int_equal(r[0]->len, 0);
	assert_int_equal(r[1]->status, TP_PROTO_OK);
	assert_int_equal(r[1]->len, 0);
	assert_reply(r[2], "OK kept\n");
	assert_int_equal(nposts, 1);
	assert_chain(&posts[0], r, 3);
	for (int i = 0; i < 3; i++)
		free(r[i]);
	free(gone);
	free(here);
}

/* A unit is answered line by line; past pool.max_wait_ms each of its lines is refused, and counted. */
static void test_unit_answered_per_line(void **state)
{
	static const char *const texts[] = {"one", "", "three"};
	struct tp_conn *c = conn_of(LOOP_A);
	struct tp_req *r = echo_lines(c, texts, 3), *late = echo_lines(c, texts, 3);
	struct tp_qnode *node = &r->qnode;
	struct tp_dispatch d = {NULL};

	(void)state;
	tp_dispatch_exec(&node, 1, &d);
	assert_reply(r, "OK one\nOK \nOK three\n");
	assert_int_equal(tp_req_lines(r), 3);

	/* Read 2 s ago, and only 1 s of wait allowed. */
	atomic_store(&d.max_wait_ns, 1000000000ull);
	late->arrival_us = tp_req_us(tp_clock_ns() - 2000000000ull);
	node = &late->qnode;
	tp_dispatch_exec(&node, 1, &d);
	assert_int_equal(late->status, TP_PROTO_BUSY);
	assert_true(late->late);
	assert_string_equal("ERR server busy\nERR server busy\nERR server busy\n",
	                    (late->buf[late->len] = '\0', late->buf));
	free(r);
	free(late);
	free(c);
}

static void test_sleep_zero_runs_without_waiting(void **state)
{
	struct tp_conn *c = conn_of(LOOP_B);
	struct tp_req *r = sleep_req(c, 0);
	struct tp_qnode *node = &r->qnode;
	struct tp_dispatch d = {NULL};

	(void)state;
	tp_dispatch_exec(&node, 1, &d);
	assert_reply(r, "OK 0\n");
	assert_int_equal(nposts, 1);
	assert_ptr_equal(posts[0].loop, LOOP_B);
	free(r);
	free(c);
}

static void test_admission_told_to_the_owning_loop(void **state)
{
	struct tp_conn *a = conn_of(LOOP_A), *b = conn_of(LOOP_B);
	struct tp_req *ra = echo(a, "x"), *rb = echo(b, "y");

	(void)state;
	tp_dispatch_admit(&rb->qnode, NULL);
	tp_dispatch_admit(&ra->qnode, NULL);
	assert_int_equal(nadmits, 2);
	assert_ptr_equal(admits[0].loop, LOOP_B);
	assert_ptr_equal(admits[0].r, rb);
	assert_ptr_equal(admits[1].loop, LOOP_A);
	assert_ptr_equal(admits[1].r, ra);
	assert_int_equal(nposts, 0);
	free(ra);
	free(rb);
	free(a);
	free(b);
}

static void test_cancel_all_answers_queued_and_waiting(void **state)
{
	struct tp_queue *q = tp_queue_new(1, NULL, NULL);
	struct tp_conn *a = conn_of(LOOP_A), *b = conn_of(LOOP_B);
	struct tp_req *r[3] = {sleep_req(a, 100), sleep_req(b, 100), sleep_req(a, 100)};

	(void)state;
	assert_non_null(q);
	for (int i = 0; i < 3; i++) {
		r[i]->qnode.deadline_ns = UINT64_MAX;
		r[i]->qnode.next = i < 2 ? &r[i + 1]->qnode : NULL;
	}
	/* Capacity 1: one admitted, two waiting. */
	assert_int_equal(tp_queue_push(q, &r[0]->qnode, 3), 1);

	assert_int_equal(tp_dispatch_cancel_all(q), 3);
	assert_int_equal(nposts, 3);
	for (int i = 0; i < 3; i++) {
		/* One post each, to its own loop, in queue order. */
		assert_ptr_equal(posts[i].first, r[i]);
		assert_ptr_equal(posts[i].loop, r[i]->conn->loop);
		assert_int_equal(posts[i].n, 1);
		assert_int_equal(r[i]->status, TP_PROTO_SHUTDOWN);
		assert_int_equal(r[i]->len, strlen("ERR server shutting down\n"));
		assert_memory_equal(r[i]->buf, "ERR server shutting down\n", r[i]->len);
	}
	struct tp_queue_stats st;
	tp_queue_stats(q, &st);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.waiting, 0);
	tp_queue_free(q);
	for (int i = 0; i < 3; i++)
		free(r[i]);
	free(a);
	free(b);
}

/* Cancelling counts requests, not nodes: a unit's lines each get the error. */
static void test_cancel_counts_a_units_lines(void **state)
{
	static const char *const texts[] = {"a", "b", "c"};
	struct tp_queue *q = tp_queue_new(100, NULL, NULL);
	struct tp_conn *c = conn_of(LOOP_A);
	struct tp_req *u = echo_lines(c, texts, 3), *s = sleep_req(c, 100);

	(void)state;
	u->qnode.deadline_ns = s->qnode.deadline_ns = UINT64_MAX;
	u->qnode.next = &s->qnode;
	assert_int_equal(tp_queue_push(q, &u->qnode, 2), 2);
	assert_int_equal(tp_dispatch_cancel_all(q), 4);
	assert_int_equal(nposts, 2);
	assert_int_equal(u->status, TP_PROTO_SHUTDOWN);
	u->buf[u->len] = '\0';
	assert_string_equal(u->buf,
	                    "ERR server shutting down\nERR server shutting down\nERR server shutting down\n");
	tp_queue_free(q);
	free(u);
	free(s);
	free(c);
}

/* A closed connection's queued requests, admitted and waiting, leave; the place goes to another's waiter. */
static void test_cancel_flow_takes_one_connection(void **state)
{
	struct tp_queue *q = tp_queue_new(2, NULL, NULL);
	struct tp_conn *a = conn_of(LOOP_A), *b = conn_of(LOOP_B);
	struct tp_req *r[4] = {sleep_req(a, 100), sleep_req(a, 100), sleep_req(a, 100), sleep_req(b, 100)};
	struct tp_queue_stats st;

	(void)state;
	assert_non_null(q);
	tp_queue_set_fairness(q, TP_FAIR_CONNECTION);
	tp_qflow_init(&a->flow, NULL);
	tp_qflow_init(&b->flow, NULL);
	for (int i = 0; i < 4; i++) {
		r[i]->qnode.deadline_ns = UINT64_MAX;
		r[i]->qnode.flow = &r[i]->conn->flow;
		r[i]->qnode.next = i < 3 ? &r[i + 1]->qnode : NULL;
	}
	/* Capacity 2: a's first two admitted, a's third and b's waiting. */
	assert_int_equal(tp_queue_push(q, &r[0]->qnode, 4), 2);

	assert_int_equal(tp_dispatch_cancel_flow(q, a), 3);
	assert_int_equal(nposts, 3);
	for (int i = 0; i < 3; i++) {
		assert_ptr_equal(posts[i].first, r[i]);
		assert_ptr_equal(posts[i].loop, LOOP_A);
		assert_int_equal(r[i]->status, TP_PROTO_SHUTDOWN);
	}
	tp_queue_stats(q, &st);
	assert_int_equal(st.depth, 1); /* b's, admitted into a freed place */
	assert_int_equal(st.waiting, 0);
	assert_int_equal(tp_dispatch_cancel_flow(q, a), 0);
	tp_queue_free(q);
	for (int i = 0; i < 4; i++)
		free(r[i]);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(test_batch_posted_in_runs_per_loop, setup),
	        cmocka_unit_test_setup(test_work_of_a_client_that_left_is_skipped, setup),
	        cmocka_unit_test_setup(test_unit_answered_per_line, setup),
	        cmocka_unit_test_setup(test_sleep_zero_runs_without_waiting, setup),
	        cmocka_unit_test_setup(test_admission_told_to_the_owning_loop, setup),
	        cmocka_unit_test_setup(test_cancel_all_answers_queued_and_waiting, setup),
	        cmocka_unit_test_setup(test_cancel_flow_takes_one_connection, setup),
	        cmocka_unit_test_setup(test_cancel_counts_a_units_lines, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of fairq.c: shares of backlogged flows and groups over many
 * rounds, weighted by cost and with the cost floor; debt far past a
 * quantum paid in one pass; a flow with nothing queued served next; a
 * group's debt kept while it is away, less its time away; each flow's FIFO
 * order, only cheap nodes in batches; and a chain admitted at once
 * scheduled as the same nodes one by one.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fairq.h"
#include "fairq_fixture.h"
#include "queue.h"

/*
 * From a fresh start in mode, keep flows first..first+nflows-1 backlogged
 * with 4 nodes of cost[f] each and pop rounds times; count[f] gets each
 * flow's pops.
 */
static void run_backlogged(struct world *w, enum tp_fairness mode, int first, int nflows,
                           const uint32_t *cost, int rounds, int *count)
{
	struct tp_fairq fq;
	int last[64];

	world_reset(w);
	reset_seq(last);
	tp_fairq_init(&fq, mode);
	for (int f = first; f < first + nflows; f++)
		for (int i = 0; i < 4; i++)
			add(&fq, w, f, cost[f]);
	for (int i = 0; i < rounds; i++) {
		int f = pop_flow(&fq, last);
		count[f]++;
		add(&fq, w, f, cost[f]); /* stays backlogged */
		if (w->used == w->nitems)
			w->used = 0; /* the items popped long ago are free again */
	}
}

/* ADDRESS mode: groups share equally, then flows within a group; backlogged throughout. */
static void test_shares(void **state)
{
	static const uint32_t cost[4] = {500, 500, 500, 500};
	struct world w;
	int count[4] = {0};
	const int rounds = 4000;

	(void)state;
	world_init(&w, 4000);
	world_group(&w, 0, 0);
	world_group(&w, 1, 0);
	world_group(&w, 2, 0);
	world_group(&w, 3, 1);
	run_backlogged(&w, TP_FAIR_ADDRESS, 0, 4, cost, rounds, count);
	/* Group 1 (one flow) gets half; group 0's three flows share the other half. */
	assert_in_range(count[3], rounds / 2 - rounds / 50, rounds / 2 + rounds / 50);
	for (int f = 0; f < 3; f++)
		assert_in_range(count[f], rounds / 6 - rounds / 50, rounds / 6 + rounds / 50);
	/* CONNECTION mode: the four flows share equally, groups or not. */
	memset(count, 0, sizeof(count));
	run_backlogged(&w, TP_FAIR_CONNECTION, 0, 4, cost, rounds, count);
	for (int f = 0; f < 4; f++)
		assert_in_range(count[f], rounds / 4 - rounds / 50, rounds / 4 + rounds / 50);
	free(w.items);
}

/* Shares are of cost: SLEEP 1000s get the pool as long as SLEEP 10s do; cost 0 counts as the floor. */
static void test_cost(void **state)
{
	static const uint32_t cost[4] = {1000000, 10000, 0, TP_FAIRQ_MIN_COST_US};
	struct world w;
	int count[4] = {0};

	(void)state;
	world_init(&w, 4000);
	run_backlogged(&w, TP_FAIR_CONNECTION, 0, 2, cost, 20000, count);
	/* Equal cost, so about 100 small ones per big one. */
	assert_in_range(count[1], 95 * count[0], 105 * count[0]);
	/* Free requests are not free: cost 0 is charged the floor, like an ECHO. */
	run_backlogged(&w, TP_FAIR_CONNECTION, 2, 2, cost, 100000, count);
	assert_in_range(count[2], 49000, 51000);
	free(w.items);
}

/*
 * Debt far beyond a quantum (work charged, then answered without running)
 * is paid back a pass at a time, not a quantum per turn: each pop below
 * would take some four million turns per flow otherwise, and the alarm
 * would end the test.  Turns and shares stay those of the rotation.
 */
static void test_debt_paid_in_one_pass(void **state)
{
	static uint32_t cost[64];
	struct world w;
	int count[64] = {0};

	(void)state;
	world_init(&w, 4000);
	for (int f = 0; f < 64; f++) {
		cost[f] = UINT32_MAX;
		world_group(&w, f, f % 8); /* 64 flows on 8 addresses: both levels in debt */
	}
	alarm(30);
	run_backlogged(&w, TP_FAIR_ADDRESS, 0, 64, cost, 6400, count);
	for (int f = 0; f < 64; f++)
		assert_in_range(count[f], 99, 101);
	/* Shares of cost: charged a quarter as much, served four times as often. */
	cost[1] = UINT32_MAX / 4;
	memset(count, 0, sizeof(count));
	run_backlogged(&w, TP_FAIR_CONNECTION, 0, 2, cost, 5000, count);
	assert_in_range(count[1], 39 * count[0] / 10, 41 * count[0] / 10);
	free(w.items);
}

/* The alarm ends with its test, also one that failed. */
static int cancel_alarm(void **state)
{
	(void)state;
	alarm(0);
	return 0;
}

/* A flow with nothing queued goes ahead of backlogged ones, in another group or in theirs. */
static void test_new_flow_first(void **state)
{
	struct world w;
	struct tp_fairq fq;
	int last[64];

	(void)state;
	world_init(&w, 4000);
	for (int f = 0; f < 51; f++)
		world_group(&w, f, 0); /* 50 flooders and a victim (50) on one address */
	world_group(&w, 60, 1);        /* a victim on another */
	tp_fairq_init(&fq, TP_FAIR_ADDRESS);
	reset_seq(last);
	for (int i = 0; i < 20; i++)
		for (int f = 0; f < 50; f++)
			add(&fq, &w, f, 40000);
	/* The flood starts as 50 new flows; once each was served, all are backlogged. */
	for (int i = 0; i < 50; i++)
		assert_int_equal(pop_flow(&fq, last), i);
	for (int round = 0; round < 20; round++) {
		/* A few flooder requests go, then each victim's one request is next. */
		for (int i = 0; i < 7; i++)
			assert_true(pop_flow(&fq, last) < 50);
		add(&fq, &w, 50, 10000);
		assert_int_equal(pop_flow(&fq, last), 50);
		add(&fq, &w, 60, 10000);
		assert_int_equal(pop_flow(&fq, last), 60);
		/* Both at once: each still before any flooder. */
		add(&fq, &w, 60, 10000);
		add(&fq, &w, 50, 10000);
		int a = pop_flow(&fq, last), b = pop_flow(&fq, last);
		assert_true((a == 50 && b == 60) || (a == 60 && b == 50));
	}
	free(w.items);
}

/* Per-flow FIFO under any interleaving; only cheap nodes come in batches. */
static void test_flow_fifo_and_batches(void **state)
{
	struct world w;
	struct tp_fairq fq;
	int last[64];
	unsigned seed = 7;
	size_t out = 0;
	struct tp_qnode *b[16];

	(void)state;
	world_init(&w, 5000);
	for (int f = 0; f < 16; f++)
		world_group(&w, f, f % 3);
	tp_fairq_init(&fq, TP_FAIR_ADDRESS);
	reset_seq(last);
	for (int i = 0; i < 5000; i++) {
		seed = seed * 1103515245u + 12345u;
		int f = (int)(seed >> 16) % 16;
		tp_fairq_add_ready(&fq, &world_item(&w, f, (seed >> 8) % 50000, f < 8)->node);
		if (i % 3 == 0) {
			size_t n = tp_fairq_pop(&fq, b, 16);
			for (size_t k = 0; k < n; k++) {
				struct item *it = item_of(b[k]);
				assert_true(it->seq > last[it->flow]);
				last[it->flow] = it->seq;
				/* Only batchable nodes (flows 0..7) come more than one at a time. */
				assert_true(n == 1 || it->flow < 8);
			}
			out += n;
		}
	}
	for (size_t n; (n = tp_fairq_pop(&fq, b, 16)) > 0; out += n)
		for (size_t k = 0; k < n; k++) {
			struct item *it = item_of(b[k]);
			assert_true(it->seq > last[it->flow]);
			last[it->flow] = it->seq;
		}
	assert_int_equal(out, 5000);
	assert_int_equal(fq.nready, 0);
	assert_int_equal(fq.nflows, 0);
	free(w.items);
}

/*
 * A chain admitted at once (a loop turn's push) is scheduled as the same
 * nodes admitted one by one: same pops in the same order, same counts, in
 * both modes; runs of one flow are split where the flow changes, and the
 * count stops at n or at the chain's end.
 */
static void test_chain_is_one_by_one(void **state)
{
	enum { N = 300 };
	static const enum tp_fairness modes[] = {TP_FAIR_CONNECTION, TP_FAIR_ADDRESS};
	struct world a, b;

	(void)state;
	for (size_t m = 0; m < 2; m++) {
		struct tp_fairq fa, fb;
		world_init(&a, N);
		world_init(&b, N);
		for (int f = 0; f < 12; f++) {
			world_group(&a, f, f % 3);
			world_group(&b, f, f % 3);
		}
		tp_fairq_init(&fa, modes[m]);
		tp_fairq_init(&fb, modes[m]);
		/* Runs of 1 to 7 nodes of one flow, cheap and expensive mixed, some flows twice. */
		uint32_t seed = 7;
		for (int i = 0; i < N;) {
			seed = seed * 1103515245u + 12345u;
			int f = (int)(seed >> 16) % 12, run = 1 + (int)(seed >> 8) % 7;
			for (int k = 0; k < run && i < N; k++, i++) {
				bool cheap = (seed >> (k + 3)) & 1;
				uint32_t cost = cheap ? 0 : 100 + (seed >> 20) % 3000;
				tp_fairq_add_ready(&fa, &world_item(&a, f, cost, cheap)->node);
				(void)world_item(&b, f, cost, cheap);
			}
		}
		for (int i = 0; i + 1 < N; i++)
			b.items[i].node.next = &b.items[i + 1].node;
		/* Admitted in three chains: n stops the first two, the chain's end the last. */
		struct tp_qnode *pos = &b.items[0].node;
		assert_int_equal(tp_fairq_add_ready_chain(&fb, &pos, 100, SIZE_MAX), 100);
		assert_ptr_equal(pos, &b.items[100].node);
		assert_int_equal(tp_fairq_add_ready_chain(&fb, &pos, 1, SIZE_MAX), 1);
		assert_int_equal(tp_fairq_add_ready_chain(&fb, &pos, N, SIZE_MAX), N - 101);
		assert_null(pos);
		assert_int_equal(fb.nready, fa.nready);
		assert_int_equal(fb.nexpensive, fa.nexpensive);
		assert_int_equal(fb.nflows, fa.nflows);
		for (;;) {
			struct tp_qnode *ra[N], *rb[N];
			size_t na = tp_fairq_pop(&fa, ra, 16), nb = tp_fairq_pop(&fb, rb, 16);
			assert_int_equal(na, nb);
			if (!na)
				break;
			for (size_t i = 0; i < na; i++)
				assert_int_equal(item_of(ra[i]) - a.items, item_of(rb[i]) - b.items);
			assert_int_equal(fb.nexpensive, fa.nexpensive);
		}
		free(a.items);
		free(b.items);
	}
}

static uint64_t fake_now_us;
static uint64_t fake_clock(void)
{
	return fake_now_us;
}

/*
 * Group 1 runs a node of 3 000 µs on its quantum of 1 000 and empties;
 * group 0 is backlogged with nodes of 20.  Back 100 µs later, group 1
 * still owes 1 900 µs: group 0 is served about that much first (95 nodes,
 * give or take a quantum).  Back after 3 ms, it owes nothing and is served
 * next, as a new entry.
 */
static void test_a_group_keeps_its_debt_while_away(void **state)
{
	struct tp_fairq fq;
	struct world w;
	int last[64];
	(void)state;

	world_init(&w, 1000);
	world_group(&w, 0, 0);
	world_group(&w, 1, 1);
	for (int back_us = 100; back_us <= 3000; back_us += 2900) {
		world_reset(&w);
		reset_seq(last);
		tp_fairq_init(&fq, TP_FAIR_ADDRESS);
		fq.now_us = fake_clock;
		fake_now_us = 1000000;
		for (int i = 0; i < 400; i++)
			add(&fq, &w, 0, 20);
		add(&fq, &w, 1, 3000);
		while (pop_flow(&fq, last) != 1)
			;
		fake_now_us += (uint64_t)back_us;
		add(&fq, &w, 1, 20);
		int before = 0;
		while (pop_flow(&fq, last) == 0)
			before++;
		if (back_us == 100)
			assert_true(before >= 80 && before <= 150);
		else
			assert_true(before <= 1);
	}
	free(w.items);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_shares),
	        cmocka_unit_test(test_a_group_keeps_its_debt_while_away),
	        cmocka_unit_test(test_cost),
	        cmocka_unit_test_teardown(test_debt_paid_in_one_pass, cancel_alarm),
	        cmocka_unit_test(test_new_flow_first),
	        cmocka_unit_test(test_flow_fifo_and_batches),
	        cmocka_unit_test(test_chain_is_one_by_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

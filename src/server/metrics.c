/* SPDX-License-Identifier: MIT */
/*
 * metrics: per-loop slots of counters and histograms, summed on demand.
 */
#include "metrics.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define US 1000ull
#define MS 1000000ull
#define S 1000000000ull

const uint64_t tp_hist_bounds_ns[TP_HIST_BUCKETS] = {
        10 * US,   25 * US, 50 * US,   100 * US, 250 * US, 500 * US, 1 * MS,
        2500 * US, 5 * MS,  10 * MS,   25 * MS,  50 * MS,  100 * MS, 250 * MS,
        500 * MS,  1 * S,   2500 * MS, 5 * S,    10 * S,   25 * S,   50 * S,
};

struct tp_metrics {
	size_t nslots;
	struct tp_metrics_slot *slots;
	uint64_t refused[TP_REFUSE_COUNT];
	uint64_t reloads_ok, reloads_failed, unhealthy;
};

struct tp_metrics *tp_metrics_new(size_t nslots)
{
	struct tp_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->nslots = nslots;
	m->slots = aligned_alloc(64, nslots * sizeof(*m->slots));
	if (!m->slots) {
		free(m);
		return NULL;
	}
	memset(m->slots, 0, nslots * sizeof(*m->slots));
	return m;
}

void tp_metrics_free(struct tp_metrics *m)
{
	if (!m)
		return;
	free(m->slots);
	free(m);
}

struct tp_metrics_slot *tp_metrics_slot(struct tp_metrics *m, size_t i)
{
	return i < m->nslots ? &m->slots[i] : NULL;
}

size_t tp_hist_bucket(uint64_t ns)
{
	size_t i = 0;

	/* Most requests are short: a scan from the bottom ends in a few steps. */
	while (i < TP_HIST_BUCKETS && ns > tp_hist_bounds_ns[i])
		i++;
	return i;
}

void tp_hist_observe(struct tp_hist *h, uint64_t ns)
{
	tp_metrics_add(&h->counts[tp_hist_bucket(ns)], 1);
	tp_metrics_add(&h->sum_ns, ns);
}

/* ns from a to b (tp_req_us() stamps); 0 if b is before a (stamps of two threads' clocks reads). */
static uint64_t since(uint32_t a, uint32_t b)
{
	uint32_t d = b - a;
	return d > INT32_MAX ? 0 : (uint64_t)d * 1000;
}

void tp_metrics_request(struct tp_metrics_slot *s, const struct tp_req *r, uint64_t now_ns)
{
	size_t op = r->op < TP_METRICS_OPS ? r->op : TP_METRICS_OP_NONE;
	size_t result = r->late                          ? TP_METRICS_RESULT_BUSY_MAX_WAIT
	                : r->status < TP_METRICS_RESULTS ? r->status
	                                                 : TP_PROTO_INVALID_ARG;

	tp_metrics_add(&s->requests[op][result], 1);
	tp_hist_observe(&s->duration[op], since(r->arrival_us, tp_req_us(now_ns)));
	if (!r->pushed)
		return; /* refused at parse time: it never asked for queue space */

	/* Admitted at once: its wait for space is 0, and its queue wait starts at arrival. */
	uint32_t wait_end = r->waited ? r->wait_end_us : r->arrival_us;
	size_t a = r->ran                       ? TP_ADMIT_ADMITTED
	           : r->status == TP_PROTO_BUSY ? TP_ADMIT_BUSY_TIMEOUT
	                                        : TP_ADMIT_SHUTTING_DOWN;
	tp_hist_observe(&s->admission[a], since(r->arrival_us, wait_end));
	if (r->ran && op < TP_OP_COUNT) {
		tp_hist_observe(&s->queue_wait, since(wait_end, r->start_us));
		tp_hist_observe(&s->service[op], since(r->start_us, r->end_us));
	}
}

static void sum_into(uint64_t *dst, const uint64_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void tp_metrics_sum(const struct tp_metrics *m, struct tp_metrics_slot *ret)
{
	memset(ret, 0, sizeof(*ret));
	/* The slot is nothing but uint64_t counters: sum it as an array of them. */
	_Static_assert(sizeof(struct tp_metrics_slot) % sizeof(uint64_t) == 0, "a slot is counters only");
	for (size_t i = 0; i < m->nslots; i++)
		sum_into((uint64_t *)ret, (const uint64_t *)&m->slots[i], sizeof(*ret) / sizeof(uint64_t));
}

void tp_metrics_refused(struct tp_metrics *m, enum tp_refusal reason)
{
	__atomic_fetch_add(&m->refused[reason], 1, __ATOMIC_RELAXED);
}

void tp_metrics_reload(struct tp_metrics *m, bool ok)
{
	__atomic_fetch_add(ok ? &m->reloads_ok : &m->reloads_failed, 1, __ATOMIC_RELAXED);
}

void tp_metrics_unhealthy(struct tp_metrics *m)
{
	__atomic_fetch_add(&m->unhealthy, 1, __ATOMIC_RELAXED);
}

void tp_metrics_events(const struct tp_metrics *m, struct tp_metrics_events *ret)
{
	for (size_t i = 0; i < TP_REFUSE_COUNT; i++)
		ret->refused[i] = __atomic_load_n(&m->refused[i], __ATOMIC_RELAXED);
	ret->reloads_ok = __atomic_load_n(&m->reloads_ok, __ATOMIC_RELAXED);
	ret->reloads_failed = __atomic_load_n(&m->reloads_failed, __ATOMIC_RELAXED);
	ret->unhealthy_episodes = __atomic_load_n(&m->unhealthy, __ATOMIC_RELAXED);
}

const char *tp_metrics_op_name(size_t op)
{
	static const char *const names[TP_METRICS_OPS] = {"sleep", "echo", "none"};
	_Static_assert(TP_OP_SLEEP == 0 && TP_OP_ECHO == 1 && TP_METRICS_OPS == 3, "op label names");
	return op < TP_METRICS_OPS ? names[op] : "none";
}

const char *tp_metrics_result_name(size_t result)
{
	static const char *const names[TP_METRICS_RESULTS] = {
	        [TP_PROTO_OK] = "ok",
	        [TP_PROTO_EMPTY] = "empty",
	        [TP_PROTO_UNKNOWN_OP] = "unknown_op",
	        [TP_PROTO_INVALID_ARG] = "invalid",
	        [TP_PROTO_TOO_LONG] = "too_long",
	        [TP_PROTO_BUSY] = "busy_timeout",
	        [TP_PROTO_TOO_MANY] = "too_many_connections",
	        [TP_PROTO_SHUTDOWN] = "shutting_down",
	        [TP_METRICS_RESULT_BUSY_MAX_WAIT] = "busy_max_wait",
	};
	return result < TP_METRICS_RESULTS && names[result] ? names[result] : "other";
}

const char *tp_metrics_admission_name(size_t a)
{
	static const char *const names[TP_ADMIT_COUNT] = {"admitted", "busy_timeout", "shutting_down"};
	return a < TP_ADMIT_COUNT ? names[a] : "other";
}

const char *tp_metrics_refusal_name(size_t reason)
{
	static const char *const names[TP_REFUSE_COUNT] = {"max_connections", "max_connections_per_address"};
	return reason < TP_REFUSE_COUNT ? names[reason] : "other";
}

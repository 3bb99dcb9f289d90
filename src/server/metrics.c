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

/* The bucket bounds, increasing; each at least twice the one before (see bucket()). */
/* clang-format off */
#define BOUNDS(X, arg) \
	X(10 * US, arg)  X(25 * US, arg)   X(50 * US, arg) \
	X(100 * US, arg) X(250 * US, arg)  X(500 * US, arg) \
	X(1 * MS, arg)   X(2500 * US, arg) X(5 * MS, arg) \
	X(10 * MS, arg)  X(25 * MS, arg)   X(50 * MS, arg) \
	X(100 * MS, arg) X(250 * MS, arg)  X(500 * MS, arg) \
	X(1 * S, arg)    X(2500 * MS, arg) X(5 * S, arg) \
	X(10 * S, arg)   X(25 * S, arg)    X(50 * S, arg)
/* clang-format on */

#define BOUND_ROW(b, arg) b,
const uint64_t tp_metrics_hist_bounds_ns[TP_METRICS_HIST_BUCKETS] = {BOUNDS(BOUND_ROW, 0)};

/* The same with a last bound nothing exceeds, so the +Inf bucket needs no test of its own. */
static const uint64_t bound_or_max[TP_METRICS_HIST_BUCKETS + 1] = {BOUNDS(BOUND_ROW, 0) UINT64_MAX};

/* How many bounds lie below 2^k: the first bucket a value of k + 1 significant bits can fall in. */
#define LESS(b, p) +((b) < (p)) /* NOLINT(bugprone-macro-parentheses): one term of the sum in BELOW() */
#define BELOW(k) (0 BOUNDS(LESS, 1ull << (k)))
#define BELOW8(k)                                                                                 \
	BELOW(k), BELOW((k) + 1), BELOW((k) + 2), BELOW((k) + 3), BELOW((k) + 4), BELOW((k) + 5), \
	        BELOW((k) + 6), BELOW((k) + 7)
static const uint8_t first_bucket[64] = {BELOW8(0),  BELOW8(8),  BELOW8(16), BELOW8(24),
                                         BELOW8(32), BELOW8(40), BELOW8(48), BELOW8(56)};

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

/*
 * No search: the highest set bit of ns names its octave [2^k, 2^(k+1)), and
 * as each bound is at least twice the one before, an octave holds at most
 * one bound, the first at or above 2^k.  So ns is in that bound's bucket,
 * or in the next one if it is above it.  (ns | 1: 0 and 1 share octave 0.)
 */
static inline size_t bucket(uint64_t ns)
{
	size_t i = first_bucket[63 - __builtin_clzll(ns | 1)];
	return i + (ns > bound_or_max[i]);
}

static inline void observe_n(struct tp_metrics_hist *h, uint64_t ns, uint64_t n)
{
	tp_metrics_add(&h->counts[bucket(ns)], n);
	tp_metrics_add(&h->sum_ns, ns * n);
}

size_t tp_metrics_hist_bucket(uint64_t ns)
{
	return bucket(ns);
}

void tp_metrics_hist_observe(struct tp_metrics_hist *h, uint64_t ns)
{
	observe_n(h, ns, 1);
}

/* Stamps of two threads may be this far out of order: b "before" a by less reads as 0. */
#define STAMP_SKEW_US 1000000u

/*
 * ns from a to b (tp_req_us() stamps, which wrap after 71.6 minutes): any
 * interval up to 71.5 minutes, a SLEEP of limits.max_sleep_ms's 60 included.
 */
static uint64_t since(uint32_t a, uint32_t b)
{
	uint32_t d = b - a;
	return d > UINT32_MAX - STAMP_SKEW_US ? 0 : (uint64_t)d * 1000;
}

void tp_metrics_run_end(struct tp_metrics_slot *s, struct tp_metrics_run *run)
{
	uint64_t n = run->n;
	size_t op = run->op < TP_METRICS_OPS ? run->op : TP_METRICS_OP_NONE;
	size_t result = run->late                          ? TP_METRICS_RESULT_BUSY_MAX_WAIT
	                : run->status < TP_METRICS_RESULTS ? run->status
	                                                   : TP_PROTO_INVALID_ARG;

	run->n = 0;
	if (!n || !s)
		return;
	tp_metrics_add(&s->requests[op][result], n);
	observe_n(&s->duration[op], since(run->arrival_us, tp_req_us(run->now_ns)), n);
	if (!run->pushed)
		return; /* refused at parse time: it never asked for queue space */

	size_t a = run->ran                       ? TP_ADMIT_ADMITTED
	           : run->status == TP_PROTO_BUSY ? TP_ADMIT_BUSY_TIMEOUT
	                                          : TP_ADMIT_SHUTTING_DOWN;
	observe_n(&s->admission[a], since(run->arrival_us, run->wait_end_us), n);
	if (run->ran && op < TP_OP_COUNT) {
		observe_n(&s->queue_wait, since(run->wait_end_us, run->start_us), n);
		if (!run->late) /* answered busy unrun: no service time */
			observe_n(&s->service[op], since(run->start_us, run->end_us), n);
	}
}

void tp_metrics_run_start(struct tp_metrics_slot *s, struct tp_metrics_run *run, const struct tp_req *r,
                          uint64_t now_ns)
{
	tp_metrics_run_end(s, run);
	*run = (struct tp_metrics_run){
	        .n = tp_req_lines(r),
	        .arrival_us = r->arrival_us,
	        .wait_end_us = tp_metrics_wait_end_us(r),
	        .start_us = r->start_us,
	        .end_us = r->end_us,
	        .now_ns = now_ns,
	        .op = r->op,
	        .status = r->status,
	        .late = r->late,
	        .pushed = r->pushed,
	        .ran = r->ran,
	};
	memcpy(run->stamps, &r->arrival_us, sizeof(run->stamps));
	memcpy(run->outcome, &r->op, sizeof(run->outcome));
}

void tp_metrics_request(struct tp_metrics_slot *s, const struct tp_req *r, uint64_t now_ns)
{
	struct tp_metrics_run run = {0};

	tp_metrics_run_start(s, &run, r, now_ns);
	tp_metrics_run_end(s, &run);
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

void tp_metrics_busy(const struct tp_metrics *m, uint64_t *ret_timeout, uint64_t *ret_max_wait)
{
	*ret_timeout = *ret_max_wait = 0;
	for (size_t i = 0; i < m->nslots; i++) {
		for (size_t op = 0; op < TP_METRICS_OPS; op++) {
			const uint64_t *n = m->slots[i].requests[op];
			*ret_timeout += __atomic_load_n(&n[TP_PROTO_BUSY], __ATOMIC_RELAXED);
			*ret_max_wait +=
			        __atomic_load_n(&n[TP_METRICS_RESULT_BUSY_MAX_WAIT], __ATOMIC_RELAXED);
		}
	}
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
	return tp_proto_op_label(op < TP_OP_COUNT ? (enum tp_op)op : (enum tp_op)TP_OP_COUNT);
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

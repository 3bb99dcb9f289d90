/* SPDX-License-Identifier: MIT */
/*
 * metrics: what the request path counts, without a lock: one slot per
 * event loop holding its counters and latency histograms, summed only when
 * someone reads them (a scrape, the stats line).
 *
 * Threads: slot i is written by loop i's thread alone, with relaxed atomic
 * loads and stores (a plain add on the hardware; no read-modify-write
 * instruction is needed with one writer).  Any thread may sum the slots
 * (tp_metrics_sum); it reads each value once, relaxed, so a sum taken
 * while requests run mixes values a few requests apart but never a torn
 * one.  A histogram's count is the sum of its buckets as read, so the
 * +Inf bucket and _count always agree.  The global counters of rare
 * events (refused connections from any loop; reloads and watchdog
 * episodes from loop 0) take an atomic add.  Never logs, never allocates
 * after tp_metrics_new().
 */
#ifndef TP_METRICS_H
#define TP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto.h"
#include "req.h"

/* Finite buckets: 10 us to 50 s, 1-2.5-5 per decade (then +Inf). */
#define TP_METRICS_HIST_BUCKETS 21
/* The upper bounds, in nanoseconds, increasing. */
extern const uint64_t tp_metrics_hist_bounds_ns[TP_METRICS_HIST_BUCKETS];

struct tp_metrics_hist {
	uint64_t counts[TP_METRICS_HIST_BUCKETS + 1]; /* per bucket, not cumulative; the last is +Inf */
	uint64_t sum_ns;
};

/* A request's op as a label: the ops of proto.h, then "none" (no op could be read). */
#define TP_METRICS_OP_NONE TP_OP_COUNT
#define TP_METRICS_OPS (TP_OP_COUNT + 1)
/* Outcomes: enum tp_proto_status, then ERR server busy for waiting over pool.max_wait_ms. */
#define TP_METRICS_RESULT_BUSY_MAX_WAIT (TP_PROTO_SHUTDOWN + 1)
#define TP_METRICS_RESULTS (TP_METRICS_RESULT_BUSY_MAX_WAIT + 1)

/* How a request's wait for queue space ended. */
enum tp_admission {
	TP_ADMIT_ADMITTED,
	TP_ADMIT_BUSY_TIMEOUT,
	TP_ADMIT_SHUTTING_DOWN,
	TP_ADMIT_COUNT,
};

/* Why a client was turned away at accept. */
enum tp_refusal {
	TP_REFUSE_MAX_CONNECTIONS,
	TP_REFUSE_PER_ADDRESS, /* limits.max_connections_per_address */
	TP_REFUSE_COUNT,
};

/* One loop's figures (also the type of a sum). */
struct tp_metrics_slot {
	uint64_t requests[TP_METRICS_OPS][TP_METRICS_RESULTS];
	struct tp_metrics_hist admission[TP_ADMIT_COUNT];
	struct tp_metrics_hist queue_wait;
	struct tp_metrics_hist service[TP_OP_COUNT];
	struct tp_metrics_hist duration[TP_METRICS_OPS];
	uint64_t accepted; /* client connections set up */
	uint64_t adopted;  /* ... of them taken over from the previous instance */
	uint64_t bytes_in, bytes_out;
} __attribute__((aligned(64)));

struct tp_metrics;

/* Slots for nslots loops. NULL on ENOMEM. */
struct tp_metrics *tp_metrics_new(size_t nslots);
void tp_metrics_free(struct tp_metrics *m);

/* Loop i's slot (i < nslots). */
struct tp_metrics_slot *tp_metrics_slot(struct tp_metrics *m, size_t i);

/* Sum every slot into *ret (any thread). */
void tp_metrics_sum(const struct tp_metrics *m, struct tp_metrics_slot *ret);

/* ERR server busy replies written so far: at the queue's timeout, and past pool.max_wait_ms. */
void tp_metrics_busy(const struct tp_metrics *m, uint64_t *ret_timeout, uint64_t *ret_max_wait);

/* The index of the bucket that holds ns. */
size_t tp_metrics_hist_bucket(uint64_t ns);

/* Count ns in h (h's owner only). */
void tp_metrics_hist_observe(struct tp_metrics_hist *h, uint64_t ns);

/* Add 1 or n to a counter of a slot (its owner only). */
static inline void tp_metrics_add(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/*
 * Request r's reply was written at now_ns (loop thread): count it by op and
 * outcome and observe its times (those it has: a line refused at parse time
 * has only a duration).
 */
void tp_metrics_request(struct tp_metrics_slot *s, const struct tp_req *r, uint64_t now_ns);

/*
 * The same for replies written together, which nearly always share their
 * times and outcome (one loop turn read their lines, one worker batch ran
 * them, one write sent them): a run gathers requests alike and counts them
 * at once, as many tp_metrics_request() calls would.  A run starts zeroed;
 * tp_metrics_run_add() counts r in it, or first ends it when r differs;
 * tp_metrics_run_end() counts what it holds and empties it.  The slot's
 * owner ends its run before it lets go of the slot (at the end of each
 * write), so a sum lags by at most one write's replies.  With s NULL
 * nothing is counted.
 */
struct tp_metrics_run {
	uint64_t n;      /* requests gathered (0: empty) */
	uint64_t now_ns; /* when they were written */
	uint32_t arrival_us, wait_end_us, start_us, end_us;
	uint8_t op, status;
	bool late, pushed, ran;
	/* What a request must share with the run to join it, as its raw bytes (see run_matches()). */
	uint8_t stamps[16], outcome[8];
};

/* End run and start it anew with r (tp_metrics_run_add() when r differs). */
void tp_metrics_run_start(struct tp_metrics_slot *s, struct tp_metrics_run *run, const struct tp_req *r,
                          uint64_t now_ns);

/* The end of r's wait for space: admitted at once, it waited 0 and its queue wait starts at arrival. */
static inline uint32_t tp_metrics_wait_end_us(const struct tp_req *r)
{
	return r->waited ? r->wait_end_us : r->arrival_us;
}

/*
 * Does r count as the run's requests do?  Its four stamps and its outcome
 * (op, status and the flags from `done` to `late`) are two runs of bytes
 * in struct tp_req: two compares instead of eleven.  (A request's unused
 * stamps are zero, so raw bytes that differ never hide equal times.)
 */
static inline bool tp_metrics_run_matches(const struct tp_metrics_run *run, const struct tp_req *r,
                                          uint64_t now_ns)
{
	_Static_assert(offsetof(struct tp_req, end_us) - offsetof(struct tp_req, arrival_us) == 12,
	               "the four stamps are contiguous");
	_Static_assert(offsetof(struct tp_req, late) - offsetof(struct tp_req, op) == 7,
	               "op, status and the six flags are contiguous");
	return run->n && now_ns == run->now_ns && memcmp(&r->arrival_us, run->stamps, 16) == 0 &&
	       memcmp(&r->op, run->outcome, 8) == 0;
}

static inline void tp_metrics_run_add(struct tp_metrics_slot *s, struct tp_metrics_run *run,
                                      const struct tp_req *r, uint64_t now_ns)
{
	if (tp_metrics_run_matches(run, r, now_ns))
		run->n += tp_req_lines(r);
	else
		tp_metrics_run_start(s, run, r, now_ns);
}
/* Count what run holds in s and empty it (s's owner only). */
void tp_metrics_run_end(struct tp_metrics_slot *s, struct tp_metrics_run *run);

/* Any loop: a client was refused at accept. */
void tp_metrics_refused(struct tp_metrics *m, enum tp_refusal reason);
/* Loop 0: a reload was applied (ok) or rejected; an unhealthy episode began. */
void tp_metrics_reload(struct tp_metrics *m, bool ok);
void tp_metrics_unhealthy(struct tp_metrics *m);

struct tp_metrics_events {
	uint64_t refused[TP_REFUSE_COUNT];
	uint64_t reloads_ok, reloads_failed;
	uint64_t unhealthy_episodes;
};
/* Any thread: the counters of rare events, each read once. */
void tp_metrics_events(const struct tp_metrics *m, struct tp_metrics_events *ret);

/* Label values: "sleep", "echo", "none"; "ok", "busy_timeout", ...; "admitted", ...; "max_connections", ...
 */
const char *tp_metrics_op_name(size_t op);
const char *tp_metrics_result_name(size_t result);
const char *tp_metrics_admission_name(size_t a);
const char *tp_metrics_refusal_name(size_t reason);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * req: one request's life, from the line that carried it to its reply.
 *
 * Ownership moves with the request: the event loop that parsed it creates
 * it and keeps it on its connection's in-order list; while it is in the
 * queue it belongs to the queue; a worker owns it while executing; the
 * completion hands it back to its loop, which writes the reply and frees
 * it.  Fields are written only by the current owner; the hand-offs go
 * through mutexes (queue lock, loop completion lock), which order the
 * writes.
 */
#ifndef TP_REQ_H
#define TP_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "copy.h"
#include "proto.h"
#include "queue.h"
#include "tp_assert.h"

struct tp_conn;

/* Every reply fits a buffer of at least this size, except ECHO's. */
#define TP_REQ_MIN_CAP 48

struct tp_req {
	struct tp_qnode qnode; /* queue link */
	struct tp_req *dnext;  /* completion list link (tp_loop_post_done) */
	struct tp_req *anext;  /* admission-notice list link (tp_loop_post_admit) */
	struct tp_req *bnext;  /* the loop's unpushed batch, then the slot cache; loop only */
	struct tp_req *onext;  /* the connection's in-order list */
	struct tp_conn *conn;
	/*
	 * Times for the metrics, in tp_req_us() units (requests of one batch
	 * share them): the loop turn that read its line, the end of its wait
	 * for space (when waited), a worker's start and end (when ran).
	 */
	uint32_t arrival_us, wait_end_us, start_us, end_us;
	uint32_t sleep_ms;
	uint32_t len;   /* ECHO: its lines laid down (tp_proto_echo_place), then the replies' length */
	uint32_t cap;   /* size of buf */
	uint32_t woff;  /* bytes of the reply already written */
	uint8_t op;     /* enum tp_op */
	uint8_t status; /* enum tp_proto_status of the outcome */
	bool done;      /* the reply in buf is final (loop only) */
	bool waiting;   /* parked in the queue's wait list (loop only) */
	bool pushed;    /* went to the queue (not refused at parse time) */
	bool waited;    /* waited for space: wait_end_us is set */
	bool ran;       /* a worker took it: start_us and end_us are set */
	bool late;      /* answered ERR server busy for waiting over pool.max_wait_ms */
	char buf[];     /* ECHO: "OK <text>\n" per line, built in place; else the reply */
};

/*
 * An ECHO request may carry up to TP_REQ_UNIT_LINES consecutive ECHO lines
 * of its connection, read in one turn (a unit): one slot, one trip through
 * the queue and back, one reply buffer with a reply per line.  It stands
 * for that many requests everywhere they are counted (qnode.more: the
 * queue's bound, the fair share, metrics, `served`).  Its slot holds
 * TP_REQ_MIN_CAP bytes per line, so that an error reply per line fits.
 */
#define TP_REQ_UNIT_LINES 16
#define TP_REQ_UNIT_CAP (TP_REQ_UNIT_LINES * TP_REQ_MIN_CAP)

/* The requests (lines) r answers. */
static inline uint32_t tp_req_lines(const struct tp_req *r)
{
	return (uint32_t)tp_qnode_weight(&r->qnode);
}

/*
 * A CLOCK_MONOTONIC time in microseconds, cut to 32 bits: the difference of
 * two, taken as uint32_t, is right up to 71 minutes.
 */
static inline uint32_t tp_req_us(uint64_t ns)
{
	return (uint32_t)(ns / 1000);
}

/*
 * Give r an error outcome (no worker ran it, or it was cut short): the
 * error once per line it carries.
 */
static inline void tp_req_fail(struct tp_req *r, enum tp_proto_status status)
{
	size_t n = tp_proto_format_error(status, NULL, 0, r->buf);
	uint32_t lines = tp_req_lines(r);

	TP_ASSERT(n <= TP_REQ_MIN_CAP && (size_t)lines * TP_REQ_MIN_CAP <= r->cap);
	for (uint32_t i = 1; i < lines; i++)
		memcpy(r->buf + i * n, r->buf, n);
	r->status = (uint8_t)status;
	r->len = (uint32_t)(n * lines);
}

static inline struct tp_req *tp_req_of(struct tp_qnode *n)
{
	return (struct tp_req *)(void *)((char *)n - __builtin_offsetof(struct tp_req, qnode));
}

/*
 * One loop's parsed requests of a turn, not yet pushed: linked through
 * qnode.next (what the queue takes in one call) and through bnext (which
 * stays the loop's once the queue owns qnode.next).
 */
struct tp_req_batch {
	struct tp_req *head, *tail;
	size_t n;
	size_t ncheap; /* batchable ones */
	size_t lines;  /* requests they stand for (a unit's lines each) */
};

static inline void tp_req_batch_add(struct tp_req_batch *b, struct tp_req *r)
{
	r->qnode.next = NULL;
	r->bnext = NULL;
	if (b->tail) {
		b->tail->qnode.next = &r->qnode;
		b->tail->bnext = r;
	} else {
		b->head = r;
	}
	b->tail = r;
	b->n++;
	b->ncheap += r->qnode.batchable;
	b->lines++;
}

/*
 * A loop's recycled request slots of TP_REQ_MIN_CAP bytes (the common
 * ECHO/SLEEP size) and of TP_REQ_UNIT_CAP (ECHO units), so that steady
 * traffic allocates nothing.  Loop thread only.
 */
struct tp_req_cache {
	struct tp_req *head; /* linked through bnext */
	size_t n;
	struct tp_req *units; /* TP_REQ_UNIT_CAP slots, linked through bnext */
	size_t nunits;
};

/* Slots kept: enough for a few turns of full batches; beyond that memory goes back. */
#define TP_REQ_CACHE_MAX 4096
#define TP_REQ_UNIT_CACHE_MAX (TP_REQ_CACHE_MAX / TP_REQ_UNIT_LINES)

/*
 * Zero r's fields, in two parts of at most 64 bytes: a compiler stores each
 * with a few vector moves, where for the whole 128 bytes it may choose a
 * `rep stos` whose start-up costs more than all the rest of tp_req_new().
 */
static inline void tp_req_zero(struct tp_req *r)
{
	_Static_assert(sizeof(*r) >= 64 && sizeof(*r) <= 128, "two parts of at most 64 bytes");
	memset(r, 0, 64);
	memset((char *)r + 64, 0, sizeof(*r) - 64);
}

/* tp_req_new() from the heap (a larger slot, or the cache is empty). */
struct tp_req *tp_req_alloc(struct tp_conn *conn, size_t cap);

/*
 * A zeroed request of conn with room for cap bytes of reply (at least
 * TP_REQ_MIN_CAP), from the cache when it has one of that size (cap at
 * most TP_REQ_MIN_CAP, or exactly TP_REQ_UNIT_CAP).  NULL when out of
 * memory.  Inline: the cache's path is a few stores, one per request.
 */
static inline struct tp_req *tp_req_new(struct tp_req_cache *cache, struct tp_conn *conn, size_t cap)
{
	bool unit = cap == TP_REQ_UNIT_CAP;
	struct tp_req **head = unit ? &cache->units : &cache->head;
	struct tp_req *r = *head;

	if ((cap > TP_REQ_MIN_CAP && !unit) || !r)
		return tp_req_alloc(conn, cap);
	*head = r->bnext;
	--*(unit ? &cache->nunits : &cache->n);
	tp_req_zero(r);
	r->conn = conn;
	r->cap = unit ? TP_REQ_UNIT_CAP : TP_REQ_MIN_CAP;
	return r;
}

/* Give r back: kept in the cache (bounded) or freed. */
static inline void tp_req_free(struct tp_req_cache *cache, struct tp_req *r)
{
	if (r->cap == TP_REQ_MIN_CAP && cache->n < TP_REQ_CACHE_MAX) {
		r->bnext = cache->head;
		cache->head = r;
		cache->n++;
	} else if (r->cap == TP_REQ_UNIT_CAP && cache->nunits < TP_REQ_UNIT_CACHE_MAX) {
		r->bnext = cache->units;
		cache->units = r;
		cache->nunits++;
	} else {
		free(r);
	}
}

/* Free every cached slot. */
void tp_req_cache_clear(struct tp_req_cache *cache);

/*
 * Write the replies of the run of done requests that starts at r (r->woff
 * bytes of the first are gone already) with one write or writev call, and
 * return what that call returned.  Small runs are copied into one buffer
 * first: one contiguous write costs the kernel less than many segments.
 */
ssize_t tp_req_write_run(int fd, struct tp_req *r);

#endif

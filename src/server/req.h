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

#include "proto.h"
#include "queue.h"

struct tp_conn;

struct tp_req {
	struct tp_qnode qnode; /* queue link; reused as the completion-list link */
	struct tp_req *anext;  /* admission-notice list link (see loop.h) */
	struct tp_req *bnext;  /* the loop's unpushed batch; loop only, stable after the push */
	struct tp_req *onext;  /* the connection's in-order list */
	struct tp_conn *conn;
	uint64_t arrival_ns;
	uint32_t sleep_ms;
	uint32_t len;   /* ECHO: text length, then the reply length */
	uint32_t cap;   /* size of buf */
	uint32_t woff;  /* bytes of the reply already written */
	uint8_t op;     /* enum tp_op */
	uint8_t status; /* enum tp_proto_status of the outcome */
	bool done;      /* the reply in buf is final (loop only) */
	bool waiting;   /* parked in the queue's wait list (loop only) */
	char buf[];     /* ECHO: "OK <text>\n" built in place; else the reply */
};

/* Every reply fits a buffer of at least this size, except ECHO's. */
#define TP_REQ_MIN_CAP 48

/* Give r an error outcome (no worker ran it, or it was cut short). */
static inline void tp_req_fail(struct tp_req *r, enum tp_proto_status status)
{
	r->status = (uint8_t)status;
	r->len = (uint32_t)tp_proto_format_error(status, NULL, 0, r->buf);
}

static inline struct tp_req *tp_req_of(struct tp_qnode *n)
{
	return (struct tp_req *)(void *)((char *)n - __builtin_offsetof(struct tp_req, qnode));
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * client_req: one request of tpclient, drawn from the client's generator,
 * written as a line, and checked against its reply.  A request stores its
 * op, argument and text seed, not its text: the ECHO text is generated
 * again from the seed to check the reply, so memory does not grow with
 * --echo-bytes.
 *
 * No I/O, no logging, no locking.
 */
#ifndef TP_CLIENT_REQ_H
#define TP_CLIENT_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client_settings.h"
#include "verify.h"

/* One request: enough to write it again and to rebuild what its reply must say. */
struct tp_client_req {
	int64_t start_ns; /* send time, or scheduled time in the open loop: latency counts from it */
	int64_t due_ns;   /* a waiting retry: when it may be sent again */
	uint64_t seed;    /* ECHO: the text's generator seed */
	uint32_t arg;     /* SLEEP: ms; ECHO: text length */
	uint8_t op;       /* enum tp_op */
	uint16_t retries; /* times it was sent again after ERR server busy (--retry-busy: up to 1000) */
	bool measured;    /* counts in the totals (not sent during --warmup) */
};

/* Draw the next request of group g from the client's generator *rng: op and argument into *ret. */
void tp_client_req_draw(const struct tp_client_group *g, uint64_t *rng, struct tp_client_req *ret);

/* Write req's line ("SLEEP 12\n", "ECHO text\n") at dst, which has room for room bytes. Returns its length.
 */
size_t tp_client_req_write(const struct tp_client_req *req, char *dst, size_t room);

/* Check a reply line against req; text: scratch room for the longest ECHO text of the run. */
enum tp_verify_result tp_client_req_check(const struct tp_client_req *req, char *text, const char *line,
                                          size_t len);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * verify: judges one reply line against the request it answers, for
 * tpclient.
 *
 * The expected wire text is written out here rather than taken from the
 * server's proto.c: a client that formatted its expectations with the
 * server's own code would agree with any bug in it.  Pure: no I/O, no
 * allocation, no logging; safe from any thread.
 */
#ifndef TP_VERIFY_H
#define TP_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

enum tp_verify_result {
	TP_VERIFY_OK,       /* the OK reply this request must get */
	TP_VERIFY_BUSY,     /* "ERR server busy": the backpressure rejection */
	TP_VERIFY_ERR,      /* any other "ERR ..." line */
	TP_VERIFY_MISMATCH, /* an OK with the wrong payload, or not a reply at all */
};

/* What a request expects back. */
struct tp_verify_expect {
	enum tp_op op;
	uint32_t sleep_ms; /* TP_OP_SLEEP: "OK <sleep_ms>" */
	const char *text;  /* TP_OP_ECHO: "OK <text>" */
	size_t text_len;
};

/*
 * Classify reply line (len bytes, its "\n" already removed) as the answer to
 * exp.  Nothing is tolerated beyond the protocol: a "\r", a sign, a leading
 * zero or trailing blank makes an OK a mismatch.  Never fails.
 */
enum tp_verify_result tp_verify_reply(const struct tp_verify_expect *exp, const char *line, size_t len);

/* A short lowercase name for a result ("ok", "busy", "err", "mismatch"). */
const char *tp_verify_result_name(enum tp_verify_result r);

#endif

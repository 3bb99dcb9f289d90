/* SPDX-License-Identifier: MIT */
/*
 * source: the first member of everything a loop registers with epoll (a
 * connection, a listening socket, the wake eventfd, the signalfd, the
 * metrics endpoint), so that
 * the loop tells from data.ptr alone what an event is for.  The one list of
 * source kinds.
 */
#ifndef TP_SOURCE_H
#define TP_SOURCE_H

#include <stdint.h>

enum tp_source_kind {
	TP_SOURCE_CONN = 1, /* struct tp_conn (conn.h) */
	TP_SOURCE_LISTEN,   /* struct tp_listener (listener.h) */
	TP_SOURCE_WAKE,     /* the loop's eventfd */
	TP_SOURCE_SIGNAL,   /* loop 0's signalfd */
	TP_SOURCE_REFUSED,  /* struct tp_refused (listener.h): a refused client draining */
	TP_SOURCE_SCRAPE,   /* the metrics endpoint's socket or one of its connections (scrape.h) */
};

struct tp_source {
	uint32_t kind; /* enum tp_source_kind */
};

#endif

/* SPDX-License-Identifier: MIT */
/*
 * scrape: the metrics endpoint, HTTP/1.1 served from loop 0.  It answers
 * `GET /metrics` (and HEAD) with what its render callback writes, 404 for
 * another path, 405 for another method, 400 for a malformed request and
 * 431 for a head over TP_SCRAPE_HEADER_MAX bytes, then closes (Connection:
 * close).  It cannot hurt the data path: its sockets are non-blocking, at
 * most TP_SCRAPE_MAX_CONNS connections are open (a new one takes the place
 * of the oldest that has not sent its request, else it is accepted and
 * closed at once), each is closed TP_SCRAPE_TIMEOUT_MS after it was
 * accepted, whatever it sent, and its memory is the fixed connection table
 * plus one reply per connection.
 *
 * Threads: everything runs on the thread of the loop that watches it
 * (loop 0), including the render callback.  Never logs.
 */
#ifndef TP_SCRAPE_H
#define TP_SCRAPE_H

#include <stddef.h>
#include <stdint.h>

#include "expo.h"
#include "listener.h"
#include "source.h"

#define TP_SCRAPE_MAX_CONNS 8
#define TP_SCRAPE_HEADER_MAX 8192
#define TP_SCRAPE_TIMEOUT_MS 5000
#define TP_SCRAPE_REPLY_MAX (4 * 1024 * 1024)

/* Write the exposition into e (loop 0).  Returns 0, or -errno for a 500. */
typedef int (*tp_scrape_render_fn)(void *ctx, struct tp_expo *e);

struct tp_scrape;

/*
 * The endpoint on listening socket fd, which it owns from now on (closed by
 * tp_scrape_free).  NULL with errno set on failure (fd is closed then).
 */
struct tp_scrape *tp_scrape_new(int fd, tp_scrape_render_fn render, void *ctx);
void tp_scrape_free(struct tp_scrape *s);

/*
 * The endpoint on the listening socket ml, if it is open (fd >= 0): it owns
 * the fd from here on, even on failure (ml->fd becomes -1); its address goes
 * to name.  *ret stays NULL without a socket.  Returns 0, or -ENOMEM with a
 * message in err.
 */
int tp_scrape_start(struct tp_listener *ml, tp_scrape_render_fn render, void *ctx, char *name, size_t namelen,
                    struct tp_scrape **ret, char *err, size_t errlen);

/*
 * Watch the endpoint with the epoll set of ls (the loop's): its listening
 * socket as one of ls's others (tp_listener_watch_other), its connections
 * directly.  Returns 0 or -errno.
 */
int tp_scrape_watch(struct tp_scrape *s, struct tp_listen_set *ls);

/*
 * epoll reported events for src, a TP_SOURCE_SCRAPE (of the endpoint it
 * belongs to).  Returns 0, or the errno of an accept on the listening
 * socket that failed for another reason than an empty backlog (out of
 * fds: the caller pauses the socket, tp_listener_pause_other()).
 */
int tp_scrape_on_event(struct tp_source *src, uint32_t events, uint64_t now_ns);

/* Close the connections past their time limit (loop 0's tick; s may be NULL). */
void tp_scrape_expire(struct tp_scrape *s, uint64_t now_ns);

/* Connections open now (for tests and the log). */
size_t tp_scrape_open(const struct tp_scrape *s);

#endif

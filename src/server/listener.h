/* SPDX-License-Identifier: MIT */
/*
 * listener: the listening sockets, bound here or inherited from systemd,
 * and accepting from them on behalf of a loop: a burst of accept() calls,
 * the pause when the process is out of fds, and the refusal of a client
 * over max_connections.  Binding and adopting never log (errors name the
 * call and the address in err); the accept path logs its failures, at most
 * one EMFILE line every 10 s.
 *
 * A refused client is told so, its side of the stream is shut, and its
 * input is drained for up to REFUSE_DRAIN_MS before the close, so a client
 * that spoke first reads the refusal instead of a reset (closing with
 * unread input sends RST, which discards the line in flight).  At most
 * TP_LISTENER_MAX_REFUSED drain at once per loop; beyond that a refused
 * client is closed as soon as what it sent already is read, as a flood
 * must not cost more than that.
 */
#ifndef TP_LISTENER_H
#define TP_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "source.h"

struct tp_metrics_slot;

/* A listening socket as an epoll source. */
struct tp_listener {
	struct tp_source src; /* TP_SOURCE_LISTEN */
	int fd;
	char name[64]; /* "127.0.0.1:9000", for logs */
};

#define TP_LISTENER_MAX_REFUSED 64

/* A refused client whose input is drained until EOF or until_ns. */
struct tp_refused {
	struct tp_source src; /* TP_SOURCE_REFUSED */
	int fd;               /* -1: free */
	uint64_t until_ns;
};

/*
 * A listening socket that the set watches but its owner accepts from (loop
 * 0's agent-check socket and metrics endpoint), level-triggered, its
 * events carrying src.  Out of fds it stays readable with nothing
 * accepted, so it leaves the epoll set for a while as the set's own
 * sockets do; a connection waits in the backlog meanwhile, and is reported
 * again when the socket is watched again.
 */
struct tp_listen_other {
	int fd;
	struct tp_source *src;
	const char *what; /* for the warning: "agent check", "metrics" */
	bool paused;
	uint64_t resume_ns;
	uint64_t logged_ns; /* last warning */
};

#define TP_LISTENER_MAX_OTHER 2

/*
 * One loop's watch over the shared listening sockets (loop thread only):
 * in its epoll set while accepting, out of it while paused for lack of fds
 * (until resume_ns) and after tp_listener_stop().
 */
struct tp_listen_set {
	struct tp_listener *ls;
	size_t n;
	int epfd;
	bool accepting; /* in the epoll set */
	bool stopped;   /* for good (shutdown) */
	uint64_t resume_ns;
	uint64_t logged_ns; /* last EMFILE log line */
	struct tp_refused refused[TP_LISTENER_MAX_REFUSED];
	size_t nrefusing; /* slots of refused in use */
	struct tp_listen_other other[TP_LISTENER_MAX_OTHER];
	size_t nother;
	/* Set by the owner (watch keeps it): a refusal's line counts in its bytes_out; or NULL. */
	struct tp_metrics_slot *metrics;
};

/*
 * Bind and listen on host:port (port 0: an ephemeral port) with SO_REUSEADDR
 * and a non-blocking, close-on-exec socket.  Fills *ret (name is the bound
 * address, e.g. "127.0.0.1:9000").  Returns 0 or a negative errno.  what
 * ("listen", "metrics", "agent") names the address in the error.
 */
int tp_listener_bind(const char *what, const char *host, int port, int backlog, struct tp_listener *ret,
                     char *err, size_t errlen);

/*
 * Adopt an inherited socket (socket activation): it must be a listening
 * stream socket of AF_INET or AF_INET6; it is made non-blocking and
 * close-on-exec.  Returns 0, or -EINVAL with a message naming the fd.
 */
int tp_listener_adopt(int fd, struct tp_listener *ret, char *err, size_t errlen);

/*
 * What can be said of host before binding its port: when it looks like a
 * numeric address (only digits and dots, or a ':'), it must be one
 * (checked without DNS); other names are resolved only when resolve is
 * true, as tp_listener_bind() would, and then the address must be one of
 * this host's (a bind to port 0 there).  Returns 0, -EINVAL (not an
 * address, or a name that does not resolve), -EADDRNOTAVAIL (not one of
 * this host's addresses, perhaps not yet: a virtual address still to come
 * up) or -EAGAIN (no answer from DNS, perhaps not yet), with the message
 * in err.
 */
int tp_listener_check(const char *what, const char *host, int port, bool resolve, char *err, size_t errlen);

/* Describe a bound socket's local address as "host:port" ("[::1]:9000"). */
void tp_listener_describe(int fd, char *buf, size_t len);

/* Watch the n sockets ls with epfd (EPOLLEXCLUSIVE). Returns 0 or -errno. */
int tp_listener_watch(struct tp_listen_set *s, struct tp_listener *ls, size_t n, int epfd);

/*
 * After tp_listener_watch(): watch the listening socket fd too (-1:
 * nothing), which its owner accepts from (struct tp_listen_other); its
 * events carry src, and what names it in the warning.  tp_listener_stop()
 * does not touch it (the agent answers and metrics are served while the
 * server stops).  Returns 0, -ENOSPC (TP_LISTENER_MAX_OTHER watched
 * already) or -errno.
 */
int tp_listener_watch_other(struct tp_listen_set *s, int fd, struct tp_source *src, const char *what);

/* Tell the client on fd `ERR too many connections` (one line, best effort; fd stays open); bytes sent. */
size_t tp_listener_say_too_many(int fd);

/*
 * Refuse the client on fd (not in the epoll set), over max_connections or
 * its address's cap: tp_listener_say_too_many(), then a drained close as
 * above.  Takes fd.
 */
void tp_listener_refuse(struct tp_listen_set *s, int fd, uint64_t now_ns);

/*
 * The owner's accept on the other socket whose events carry src failed
 * with err (0: it did not): out of fds (as tp_listener_accept() says),
 * that socket leaves the epoll set for 100 ms.  Anything else: nothing.
 */
void tp_listener_pause_other(struct tp_listen_set *s, const struct tp_source *src, int err, uint64_t now_ns);

/* Stop accepting for good (shutdown): the sockets leave the epoll set. */
void tp_listener_stop(struct tp_listen_set *s);

/*
 * When the set's next timer is due (CLOCK_MONOTONIC ns): the end of a
 * pause, or of a refused client's drain; 0 when none runs.
 */
uint64_t tp_listener_next_timer(const struct tp_listen_set *s);

/* Timers that are due: after a pause watch the sockets again; close refused clients whose time is up. */
void tp_listener_timers(struct tp_listen_set *s, uint64_t now_ns);

/*
 * A refused client's socket is readable: drain it; close it at EOF or on an
 * error.  A client that keeps sending is read TP_LISTENER_DISCARD_MAX bytes a call,
 * then closed at its deadline.
 */
void tp_listener_drain(struct tp_listen_set *s, struct tp_refused *rf);

/* What tp_listener_discard() reads at most in one call. */
#define TP_LISTENER_DISCARD_MAX (64 * 1024)

enum tp_listener_discard { TP_LISTENER_DISCARD_EMPTY, TP_LISTENER_DISCARD_MORE, TP_LISTENER_DISCARD_END };

struct epoll_event;

/*
 * Read and drop what the non-blocking socket fd holds, TP_LISTENER_DISCARD_MAX bytes
 * at most, adding their count to *ret_dropped: a peer that keeps sending
 * cannot hold the loop.  Returns END at EOF or an error, EMPTY when
 * nothing more is there, MORE when it stopped with bytes perhaps left; fd
 * is then watched again in epfd with ev (its edge-triggered events as
 * registered), which reports it at the next wait if bytes are left.  With
 * epfd -1 (fd in no epoll set, ev NULL), a single pass before a close.
 */
enum tp_listener_discard tp_listener_discard(int epfd, int fd, struct epoll_event *ev, size_t *ret_dropped);

/*
 * Takes an accepted non-blocking socket and the client's address.  Returns
 * true when it took fd (even if only to close it), false when the client is
 * over max_connections: the listener then tells it so and closes fd.
 */
typedef bool (*tp_listener_take_fn)(void *ctx, int fd, const struct sockaddr_storage *peer);

/*
 * ls is readable: accept a burst of clients and hand each to take.  Out of
 * fds (EMFILE, ENFILE, ENOBUFS, ENOMEM), the set is paused for 100 ms
 * instead of spinning on a socket that stays readable.
 */
void tp_listener_accept(struct tp_listen_set *s, struct tp_listener *ls, uint64_t now_ns,
                        tp_listener_take_fn take, void *ctx);

#endif

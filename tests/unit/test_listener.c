/* SPDX-License-Identifier: MIT */
/*
 * test_listener: listening sockets watched by one epoll set, and the ones
 * their owner accepts from, paused when the process is out of fds and
 * watched again afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "listener.h"

static int nconns;

static bool take(void *ctx, int fd, const struct sockaddr_storage *peer)
{
	(void)ctx;
	(void)peer;
	nconns++;
	close(fd);
	return true;
}

static int port_of(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

static int connect_to(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Accept from whichever listener epoll reports. */
static void poll_accept(struct tp_listen_set *s, int epfd, uint64_t now)
{
	struct epoll_event ev[4];
	int n = epoll_wait(epfd, ev, 4, 200);
	for (int i = 0; i < n; i++)
		tp_listener_accept(s, ev[i].data.ptr, now, take, NULL);
}

/* Two listening sockets on the loopback; returns a new epoll set. */
static int two_listeners(struct tp_listener ls[2])
{
	char err[256];

	for (int i = 0; i < 2; i++)
		assert_int_equal(tp_listener_bind("listen", "127.0.0.1", 0, 16, &ls[i], err, sizeof(err)), 0);
	return epoll_create1(EPOLL_CLOEXEC);
}

/* Lower the fd limit so that no fd number is free above fd; the limit before goes to ret_saved. */
static void no_fd_above(int fd, struct rlimit *ret_saved)
{
	struct rlimit low;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, ret_saved), 0);
	low = *ret_saved;
	low.rlim_cur = (rlim_t)fd + 1;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
}

/* A socket that epoll cannot watch for now: its fd number becomes a file; what it was is kept. */
struct broken {
	int fd, saved, file;
};

static struct broken break_fd(int fd)
{
	struct broken b = {fd, dup(fd), open("/proc/self/stat", O_RDONLY | O_CLOEXEC)};

	assert_true(b.saved >= 0 && b.file >= 0);
	assert_int_equal(dup2(b.file, fd), fd);
	return b;
}

static void mend_fd(struct broken *b)
{
	assert_int_equal(dup2(b->saved, b->fd), b->fd);
	close(b->saved);
	close(b->file);
}

/*
 * After an EMFILE pause with two sockets, re-adding one of them fails once:
 * accepting must come back at a later try, not stop for good.
 */
static void test_resume_after_a_failed_re_add(void **state)
{
	struct tp_listener ls[2];
	struct tp_listen_set s;
	struct rlimit rl;
	int epfd = two_listeners(ls);

	(void)state;
	assert_int_equal(tp_listener_watch(&s, ls, 2, epfd), 0);

	/* Out of fds: the set pauses. */
	int c1 = connect_to(port_of(ls[0].fd));
	no_fd_above(c1, &rl);
	uint64_t now = tp_clock_ns();
	poll_accept(&s, epfd, now);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_false(s.accepting);
	assert_int_equal(nconns, 0);

	/* The second socket cannot be watched again at the first try. */
	struct broken b = break_fd(ls[1].fd);
	now = tp_listener_next_timer(&s);
	assert_true(now > 0);
	tp_listener_timers(&s, now);
	assert_false(s.accepting);
	/* No spinning on a pause that is over: the next try is later. */
	assert_true(tp_listener_next_timer(&s) > now);

	mend_fd(&b);
	for (int i = 0; i < 50 && !s.accepting; i++)
		tp_listener_timers(&s, tp_listener_next_timer(&s));
	assert_true(s.accepting);
	poll_accept(&s, epfd, now);
	assert_int_equal(nconns, 1);
	int c2 = connect_to(port_of(ls[1].fd));
	poll_accept(&s, epfd, now);
	assert_int_equal(nconns, 2);

	close(c1);
	close(c2);
	for (int i = 0; i < 2; i++)
		close(ls[i].fd);
	close(epfd);
}

/* How many events epfd reports for src within timeout_ms. */
static int events_for(int epfd, const struct tp_source *src, int timeout_ms)
{
	struct epoll_event ev[4];
	int n = epoll_wait(epfd, ev, 4, timeout_ms), got = 0;
	for (int i = 0; i < n; i++)
		got += ev[i].data.ptr == src;
	return got;
}

/*
 * A socket its owner accepts from (the agent's, the metrics endpoint's):
 * out of fds it leaves the epoll set, and once watched again a connection
 * that waited in the backlog is reported again, with no new one to wake it.
 * A re-add that fails is tried again a pause later, not at once.
 */
static void test_other_paused_and_reported_again(void **state)
{
	struct tp_listener ls[2];
	struct tp_listen_set s;
	struct tp_source agent = {TP_SOURCE_AGENT}, other = {TP_SOURCE_SCRAPE};
	struct rlimit rl;
	int epfd = two_listeners(ls);

	(void)state;
	assert_int_equal(tp_listener_watch(&s, ls, 1, epfd), 0);
	assert_int_equal(tp_listener_watch_other(&s, -1, &agent, "agent check"), 0); /* none */
	assert_int_equal(tp_listener_watch_other(&s, ls[1].fd, &other, "metrics"), 0);
	assert_int_equal(s.nother, 1);

	int c = connect_to(port_of(ls[1].fd));
	assert_int_equal(events_for(epfd, &other, 200), 1);
	no_fd_above(c, &rl);
	assert_true(accept4(ls[1].fd, NULL, NULL, SOCK_NONBLOCK) < 0);
	int e = errno;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_int_equal(e, EMFILE);
	uint64_t now = tp_clock_ns();
	tp_listener_pause_other(&s, &agent, EMFILE, now); /* not watched: nothing */
	tp_listener_pause_other(&s, &other, EAGAIN, now); /* not out of fds: nothing */
	assert_false(s.other[0].paused);
	tp_listener_pause_other(&s, &other, e, now);
	assert_true(s.other[0].paused);
	assert_int_equal(events_for(epfd, &other, 0), 0); /* out of the set: no spin */
	assert_int_equal(tp_listener_next_timer(&s), now + 100000000ull);

	/* The socket cannot be watched again at the first try: a later try, not a spin. */
	struct broken b = break_fd(ls[1].fd);
	now = tp_listener_next_timer(&s);
	tp_listener_timers(&s, now);
	assert_true(s.other[0].paused);
	assert_true(tp_listener_next_timer(&s) > now);
	mend_fd(&b);
	tp_listener_timers(&s, tp_listener_next_timer(&s));
	assert_false(s.other[0].paused);
	assert_int_equal(events_for(epfd, &other, 200), 1); /* the waiting connection, again */
	int fd = accept4(ls[1].fd, NULL, NULL, SOCK_NONBLOCK);
	assert_true(fd >= 0);

	close(fd);
	close(c);
	for (int i = 0; i < 2; i++)
		close(ls[i].fd);
	close(epfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_resume_after_a_failed_re_add),
	        cmocka_unit_test(test_other_paused_and_reported_again),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

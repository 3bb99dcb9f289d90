/* SPDX-License-Identifier: MIT */
/*
 * test_listener: listening sockets watched by one epoll set, paused when
 * the process is out of fds and watched again afterwards.
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

/*
 * After an EMFILE pause with two sockets, re-adding one of them fails once:
 * accepting must come back at a later try, not stop for good.
 */
static void test_resume_after_a_failed_re_add(void **state)
{
	struct tp_listener ls[2];
	struct tp_listen_set s;
	struct rlimit rl, low;
	char err[256];
	int epfd = epoll_create1(EPOLL_CLOEXEC);

	(void)state;
	for (int i = 0; i < 2; i++)
		assert_int_equal(tp_listener_bind("listen", "127.0.0.1", 0, 16, &ls[i], err, sizeof(err)), 0);
	assert_int_equal(tp_listener_watch(&s, ls, 2, epfd), 0);

	/* Out of fds: the set pauses. */
	int c1 = connect_to(port_of(ls[0].fd));
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	low = rl;
	low.rlim_cur = (rlim_t)c1 + 1; /* no fd number free above the client's */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	uint64_t now = tp_clock_ns();
	poll_accept(&s, epfd, now);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_false(s.accepting);
	assert_int_equal(nconns, 0);

	/* The second socket cannot be watched again at the first try (its fd is a file then). */
	int saved = dup(ls[1].fd);
	int file = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	assert_true(saved >= 0 && file >= 0);
	assert_int_equal(dup2(file, ls[1].fd), ls[1].fd);
	now = tp_listener_next_timer(&s);
	assert_true(now > 0);
	tp_listener_timers(&s, now);
	assert_false(s.accepting);
	/* No spinning on a pause that is over: the next try is later. */
	assert_true(tp_listener_next_timer(&s) > now);

	assert_int_equal(dup2(saved, ls[1].fd), ls[1].fd);
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
	close(saved);
	close(file);
	for (int i = 0; i < 2; i++)
		close(ls[i].fd);
	close(epfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_resume_after_a_failed_re_add),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of fdpass.c: 600 fds cross a socket pair in messages of 253,
 * each received one message at a time and still the same open file; the
 * end of what was sent and a closed sender read as -ENODATA; a receiver
 * out of fds is told that the kernel closed the rest (MSG_CTRUNC).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fdpass.h"

#define N 600

static int pair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
}

/* n open fds (one pipe's ends, duplicated), their inode in *ino. */
static void open_fds(int *fds, size_t n, ino_t *ino)
{
	int p[2];
	struct stat st;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fstat(p[0], &st), 0);
	*ino = st.st_ino;
	for (size_t i = 0; i < n; i++) {
		fds[i] = fcntl(p[i % 2], F_DUPFD_CLOEXEC, 3);
		assert_true(fds[i] >= 0);
	}
	close(p[0]);
	close(p[1]);
}

static void close_fds(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

static void test_batches_arrive_whole_and_in_order(void **state)
{
	int sv[2], fds[N], got[TP_FDPASS_BATCH], err = -1, sizes[4] = {0}, k = 0, n;
	ino_t ino;
	bool truncated = false;
	struct stat st;

	(void)state;
	open_fds(fds, N, &ino);
	assert_int_equal(pair(sv), 0);
	assert_int_equal(tp_fdpass_send(sv[0], fds, N, &err), N);
	assert_int_equal(err, 0);
	close_fds(fds, N); /* the copies in flight keep the pipe open */
	assert_int_equal(tp_fdpass_recv(sv[1], got, &truncated), TP_FDPASS_BATCH);
	sizes[k++] = TP_FDPASS_BATCH;
	assert_int_equal(fstat(got[0], &st), 0);
	assert_int_equal(st.st_ino, ino);
	close_fds(got, TP_FDPASS_BATCH);
	close(sv[0]); /* what is in flight stays readable */
	while ((n = tp_fdpass_recv(sv[1], got, &truncated)) >= 0) {
		assert_true(k < 4);
		sizes[k++] = n;
		close_fds(got, (size_t)n);
	}
	assert_int_equal(n, -ENODATA);
	assert_int_equal(k, 3);
	assert_int_equal(sizes[1], TP_FDPASS_BATCH);
	assert_int_equal(sizes[2], N - 2 * TP_FDPASS_BATCH);
	assert_false(truncated);
	close(sv[1]);
}

static void test_nothing_waiting_is_no_data(void **state)
{
	int sv[2], got[TP_FDPASS_BATCH], err = 0;
	bool truncated = false;

	(void)state;
	assert_int_equal(pair(sv), 0);
	assert_int_equal(tp_fdpass_recv(sv[1], got, &truncated), -ENODATA);
	assert_int_equal(tp_fdpass_send(sv[0], NULL, 0, &err), 0);
	assert_int_equal(tp_fdpass_send(-1, got, 1, &err), 0);
	assert_int_equal(err, EBADF);
	close(sv[0]);
	close(sv[1]);
}

static void test_a_receiver_out_of_fds_is_told(void **state)
{
	int sv[2], fds[TP_FDPASS_BATCH], got[TP_FDPASS_BATCH], err = -1, n;
	ino_t ino;
	bool truncated = false;
	struct rlimit old, low;

	(void)state;
	open_fds(fds, TP_FDPASS_BATCH, &ino);
	assert_int_equal(pair(sv), 0);
	assert_int_equal(tp_fdpass_send(sv[0], fds, TP_FDPASS_BATCH, &err), TP_FDPASS_BATCH);
	close_fds(fds, TP_FDPASS_BATCH);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 64; /* room for a few dozen more than are open */
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	n = tp_fdpass_recv(sv[1], got, &truncated);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_true(n >= 0 && n < TP_FDPASS_BATCH);
	assert_true(truncated);
	close_fds(got, (size_t)n);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_batches_arrive_whole_and_in_order),
	        cmocka_unit_test(test_nothing_waiting_is_no_data),
	        cmocka_unit_test(test_a_receiver_out_of_fds_is_told),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

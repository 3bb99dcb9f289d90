/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of fdstore.c: the connections stored in one carrier socket
 * (FDPOLL=0), stored one by one when the carrier's own message is refused,
 * and a message refused with ETOOMANYREFS (fds in flight over the user's
 * RLIMIT_NOFILE) tried again until systemd has read enough, for up to a
 * second.  The test binary is linked with --wrap=tp_sd_notify_fds: the
 * messages go to the test, which refuses those it is told to and notes the
 * fds of the others; no systemd is needed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fdpass.h"
#include "fdstore.h"

#define MAX_STORED 600

int __wrap_tp_sd_notify_fds(const char *state, const int *fds, size_t n);

static struct {
	int carrier_ret;        /* returned for the carrier's message (FDPOLL=0) */
	unsigned toomany_from;  /* the first message (1, 2, ...) refused with ETOOMANYREFS */
	int toomany;            /* how many from it are refused so; -1: all */
	unsigned calls;         /* messages sent */
	unsigned carriers;      /* carriers' messages among them */
	int carrier_copy;       /* a copy of the carrier taken, to read what it holds */
	size_t nstored;         /* fds taken one by one */
	int stored[MAX_STORED]; /* ... in the order they came */
} sd;

int __wrap_tp_sd_notify_fds(const char *state, const int *fds, size_t n)
{
	sd.calls++;
	assert_non_null(strstr(state, "FDSTORE=1\nFDNAME=conns"));
	assert_in_range(n, 1, TP_FDPASS_BATCH);
	if (sd.calls >= sd.toomany_from && sd.toomany != 0) {
		if (sd.toomany > 0)
			sd.toomany--;
		return -ETOOMANYREFS;
	}
	if (strstr(state, "\nFDPOLL=0")) {
		assert_int_equal(n, 1);
		sd.carriers++;
		if (sd.carrier_ret > 0)
			sd.carrier_copy = dup(fds[0]);
		return sd.carrier_ret;
	}
	assert_true(sd.nstored + n <= MAX_STORED);
	memcpy(sd.stored + sd.nstored, fds, n * sizeof(*fds));
	sd.nstored += n;
	return 1;
}

static int setup(void **state)
{
	(void)state;
	memset(&sd, 0, sizeof(sd));
	sd.carrier_ret = 1;
	sd.toomany_from = 1;
	sd.carrier_copy = -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (sd.carrier_copy >= 0)
		close(sd.carrier_copy);
	return 0;
}

/* n files each of its own (memfds), to tell them apart by inode. */
static void open_files(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fds[i] = memfd_create("conn", MFD_CLOEXEC);
		assert_true(fds[i] >= 0);
	}
}

static void close_files(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

static ino_t inode(int fd)
{
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	return st.st_ino;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_the_connections_go_in_one_carrier(void **state)
{
	int fds[5], got[TP_FDPASS_BATCH], err = -1;
	size_t apart = 99;
	bool truncated = false;
	(void)state;

	open_files(fds, 5);
	assert_int_equal(tp_fdstore_add_carried(fds, 5, "conns", &apart, &err), 5);
	assert_int_equal(apart, 0);
	assert_int_equal(err, 0);
	assert_int_equal(sd.calls, 1);
	assert_int_equal(sd.carriers, 1);
	assert_int_equal(sd.nstored, 0);
	/* The stored carrier holds the five, in order. */
	assert_true(sd.carrier_copy >= 0);
	assert_int_equal(tp_fdpass_recv(sd.carrier_copy, got, &truncated), 5);
	assert_false(truncated);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(inode(got[i]), inode(fds[i]));
		close(got[i]);
	}
	assert_int_equal(tp_fdpass_recv(sd.carrier_copy, got, &truncated), -ENODATA);
	close_files(fds, 5);
}

static void test_a_refused_carrier_stores_them_one_by_one(void **state)
{
	int fds[5], err = -1;
	size_t apart = 99;
	(void)state;

	/*
	 * The carrier holds them in flight; refused, it closes with them: each
	 * is then stored on its own, and the caller told how many and why.
	 */
	open_files(fds, 5);
	sd.carrier_ret = -ENOBUFS;
	assert_int_equal(tp_fdstore_add_carried(fds, 5, "conns", &apart, &err), 5);
	assert_int_equal(apart, 5);
	assert_int_equal(err, ENOBUFS);
	assert_int_equal(sd.carriers, 1);
	assert_int_equal(sd.nstored, 5);
	assert_memory_equal(sd.stored, fds, sizeof(fds));
	close_files(fds, 5);
}

static void test_too_many_refs_is_waited_out(void **state)
{
	int fds[300];
	(void)state;

	/* The second batch refused twice, then taken: all 300 stored, none twice. */
	for (size_t i = 0; i < 300; i++)
		fds[i] = (int)i + 1000;
	sd.toomany_from = 2;
	sd.toomany = 2;
	assert_int_equal(tp_fdstore_add(fds, 300, "conns"), 300);
	assert_int_equal(sd.calls, 4);
	assert_int_equal(sd.nstored, 300);
	assert_memory_equal(sd.stored, fds, sizeof(fds));
}

static void test_too_many_refs_is_given_up_after_a_second(void **state)
{
	int fds[300];
	(void)state;

	/* Refused for good after a first batch: 100 waits of 10 ms, then what was stored is said. */
	for (size_t i = 0; i < 300; i++)
		fds[i] = (int)i + 1000;
	sd.toomany_from = 2;
	sd.toomany = -1;
	double t0 = now_s();
	assert_int_equal(tp_fdstore_add(fds, 300, "conns"), TP_FDPASS_BATCH);
	assert_true(now_s() - t0 >= 0.9);
	assert_int_equal(sd.calls, 1 + 1 + 100);
	assert_int_equal(sd.nstored, TP_FDPASS_BATCH);

	/* None stored: the error. */
	setup(state);
	sd.toomany = -1;
	assert_int_equal(tp_fdstore_add(fds, 3, "conns"), -ETOOMANYREFS);
	assert_int_equal(sd.calls, 1 + 100);
	assert_int_equal(sd.nstored, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_the_connections_go_in_one_carrier, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_a_refused_carrier_stores_them_one_by_one, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_too_many_refs_is_waited_out, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_too_many_refs_is_given_up_after_a_second, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

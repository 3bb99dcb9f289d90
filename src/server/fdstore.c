/* SPDX-License-Identifier: MIT */
/*
 * fdstore: systemd's fd store over the notify socket.  See fdstore.h.
 */
#include "fdstore.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fdpass.h"
#include "sd.h"

#define BARRIER_USEC 5000000ull
#define INFLIGHT_WAITS 100 /* of 10 ms: for systemd to read what is in flight (ETOOMANYREFS) */

/* One of the INFLIGHT_WAITS: fds in flight count against RLIMIT_NOFILE, and systemd reading them lowers it.
 */
static void wait_inflight(void)
{
	(void)nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
}

/*
 * Put fds in flight in a socket pair whose receiving end is returned (or
 * -errno), with how many it holds in *ret_n and why not all in *ret_err.
 */
static int carry(const int *fds, size_t n, size_t *ret_n, int *ret_err)
{
	int sv[2];

	*ret_n = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		*ret_err = errno;
		return -errno;
	}
	*ret_n = tp_fdpass_send(sv[0], fds, n, ret_err);
	close(sv[0]);
	return sv[1];
}

int tp_fdstore_add(const int *fds, size_t n, const char *name)
{
	char msg[64];
	size_t sent = 0;

	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	for (unsigned waits = 0; sent < n;) {
		size_t k = n - sent < TP_FDPASS_BATCH ? n - sent : TP_FDPASS_BATCH;
		int r = tp_sd_notify_fds(msg, fds + sent, k);
		if (r == -ETOOMANYREFS && waits++ < INFLIGHT_WAITS) {
			wait_inflight(); /* a barrier would put one more in flight */
			continue;
		}
		if (r <= 0)
			return sent ? (int)sent : (r < 0 ? r : -ENOTCONN);
		sent += k;
	}
	return (int)sent;
}

int tp_fdstore_add_carried(const int *fds, size_t n, const char *name, size_t *ret_apart, int *ret_err)
{
	char msg[64];
	size_t carried = 0;
	int err = 0, carrier = carry(fds, n, &carried, &err), rest;

	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s\nFDPOLL=0", name);
	if (carrier >= 0 && carried > 0 && (rest = tp_sd_notify_fds(msg, &carrier, 1)) <= 0) {
		err = rest < 0 ? -rest : ENOTCONN;
		carried = 0; /* not stored: they close with it, and go one by one below */
	}
	if (carrier >= 0)
		close(carrier);
	*ret_apart = n - carried;
	*ret_err = err;
	if (carried == n)
		return (int)carried;
	rest = tp_fdstore_add(fds + carried, n - carried, name);
	return rest < 0 ? (carried ? (int)carried : rest) : (int)carried + rest;
}

void tp_fdstore_remove(const char *name)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	(void)tp_sd_notify(msg);
}

int tp_fdstore_barrier(void)
{
	int r;

	for (unsigned waits = 0;; waits++) {
		r = tp_sd_notify_barrier(BARRIER_USEC);
		if (r != -ETOOMANYREFS || waits >= INFLIGHT_WAITS)
			return r;
		wait_inflight();
	}
}

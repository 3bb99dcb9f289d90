/* SPDX-License-Identifier: MIT */
/*
 * fdpass: open fds in flight over a unix stream socket (SCM_RIGHTS).  See
 * fdpass.h.
 */
#include "fdpass.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/* A message's control room for TP_FDPASS_BATCH fds, aligned for cmsghdr. */
union control {
	char buf[CMSG_SPACE(TP_FDPASS_BATCH * sizeof(int))];
	struct cmsghdr align;
};

size_t tp_fdpass_send(int sock, const int *fds, size_t n, int *ret_err)
{
	size_t sent = 0;

	*ret_err = 0;
	while (sent < n) {
		size_t k = n - sent < TP_FDPASS_BATCH ? n - sent : TP_FDPASS_BATCH;
		union control u;
		char byte = 0;
		struct iovec iov = {.iov_base = &byte, .iov_len = 1};
		struct msghdr m = {.msg_iov = &iov,
		                   .msg_iovlen = 1,
		                   .msg_control = u.buf,
		                   .msg_controllen = CMSG_SPACE(k * sizeof(int))};
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(k * sizeof(int));
		memcpy(CMSG_DATA(c), fds + sent, k * sizeof(int));
		if (sendmsg(sock, &m, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) {
			*ret_err = errno ? errno : EIO;
			break;
		}
		sent += k;
	}
	return sent;
}

int tp_fdpass_recv(int sock, int *ret_fds, bool *ret_truncated)
{
	union control u;
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr m = {
	        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	ssize_t r = recvmsg(sock, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	int n = 0;

	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -ENODATA : -errno;
	if (r == 0)
		return -ENODATA;
	if (m.msg_flags & MSG_CTRUNC)
		*ret_truncated = true;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		size_t k;
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (k > (size_t)(TP_FDPASS_BATCH - n))
			k = (size_t)(TP_FDPASS_BATCH - n);
		memcpy(ret_fds + n, CMSG_DATA(c), k * sizeof(int));
		n += (int)k;
	}
	return n;
}

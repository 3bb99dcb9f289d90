/* SPDX-License-Identifier: MIT
 * batch_echo: the ceiling's ECHO server (one thread, epoll, no queue, no
 * pool) with tpserver's order of work in a turn: every ready connection is
 * read first, then each is answered, where the ceiling reads and answers
 * one connection before it reads the next.  With "uring-send" the turn's
 * sends go to the kernel in one io_uring_enter, with "uring" its receives
 * too (MSG_DONTWAIT: nothing is left outstanding, a receive or send that
 * cannot run at once completes with -EAGAIN), to measure what batching the
 * system calls of a turn is worth against a write() per connection.
 * Answers "ECHO x" with "OK x", anything else with "ERR bad".  Not part of
 * tpserver; built by bench/alternate.sh when liburing-dev is installed.
 *
 * usage: batch_echo PORT [write|uring-send|uring]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { MAX_EVENTS = 256, IN_BYTES = 65536 };

struct conn {
	int fd;
	size_t in_len;
	char in[IN_BYTES];
	char out[2 * IN_BYTES]; /* "OK x\n" for "ECHO x\n"; "ERR bad\n" for a line of 1 byte */
};

static struct io_uring ring;

/* One io_uring_enter for what is queued; res[user_data] = each result. */
static void run_ring(long *res)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_submit_and_wait(&ring, io_uring_sq_ready(&ring));
	io_uring_for_each_cqe(&ring, head, cqe)
	{
		res[cqe->user_data] = cqe->res;
		n++;
	}
	io_uring_cq_advance(&ring, n);
}

/* Answer the whole lines of c->in into c->out; returns the bytes to send. */
static size_t answer(struct conn *c)
{
	size_t o = 0, start = 0;

	for (size_t k = 0; k < c->in_len; k++) {
		if (c->in[k] != '\n')
			continue;
		size_t len = k - start;
		if (len >= 5 && memcmp(c->in + start, "ECHO ", 5) == 0) {
			memcpy(c->out + o, "OK ", 3);
			memcpy(c->out + o + 3, c->in + start + 5, len - 5);
			o += len - 2;
			c->out[o++] = '\n';
		} else {
			memcpy(c->out + o, "ERR bad\n", 8);
			o += 8;
		}
		start = k + 1;
	}
	memmove(c->in, c->in + start, c->in_len - start);
	c->in_len -= start;
	return o;
}

static void accept_all(int ls, int ep)
{
	int fd, one = 1;

	while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 2 ? argv[2] : "write";
	int uring_send = strcmp(mode, "write") != 0, uring_recv = strcmp(mode, "uring") == 0;
	int one = 1, ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), ep = epoll_create1(0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)atoi(argc > 1 ? argv[1] : "0")),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct epoll_event evs[MAX_EVENTS], ev = {.events = EPOLLIN, .data.ptr = NULL};

	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 4096) < 0) {
		perror("batch_echo: bind");
		return 1;
	}
	if (uring_send && io_uring_queue_init(2 * MAX_EVENTS, &ring, 0) < 0) {
		fprintf(stderr, "batch_echo: io_uring_queue_init failed\n");
		return 1;
	}
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	for (;;) {
		struct conn *ready[MAX_EVENTS];
		long res[MAX_EVENTS];
		int n = epoll_wait(ep, evs, MAX_EVENTS, -1), nr = 0;

		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr)
				ready[nr++] = evs[i].data.ptr;
			else
				accept_all(ls, ep);
		}
		/* Every ready connection read first. */
		for (int i = 0; i < nr; i++) {
			struct conn *c = ready[i];
			if (!uring_recv) {
				ssize_t r = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
				res[i] = r < 0 ? -errno : r;
				continue;
			}
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			io_uring_prep_recv(sqe, c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len,
			                   MSG_DONTWAIT);
			sqe->user_data = (unsigned)i;
		}
		if (uring_recv && nr)
			run_ring(res);
		/* Then each answered. */
		int queued = 0;
		for (int i = 0; i < nr; i++) {
			struct conn *c = ready[i];
			if (res[i] == -EAGAIN)
				continue;
			if (res[i] <= 0) {
				close(c->fd);
				free(c);
				continue;
			}
			c->in_len += (size_t)res[i];
			size_t out = answer(c);
			if (!out)
				continue;
			if (!uring_send) {
				if (write(c->fd, c->out, out) < 0)
					perror("batch_echo: write");
				continue;
			}
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			io_uring_prep_send(sqe, c->fd, c->out, out, MSG_DONTWAIT | MSG_NOSIGNAL);
			sqe->user_data = (unsigned)i;
			queued++;
		}
		if (queued)
			run_ring(res); /* a short send loses the rest: the benchmark's replies fit */
	}
}

/* SPDX-License-Identifier: MIT
 * uring_echo: the ceiling's ECHO server (one thread, no queue, no pool) with
 * io_uring in place of epoll, to measure what the kernel interface alone is
 * worth: each connection keeps one receive outstanding, and every receive,
 * send and re-armed receive of a loop turn goes to the kernel in one
 * io_uring_enter (the epoll ceiling makes one epoll_wait, then a read and a
 * write per connection).  Answers "ECHO x" with "OK x", anything else with
 * "ERR bad".  Not part of tpserver; built by bench/alternate.sh when
 * liburing-dev is installed.
 *
 * usage: uring_echo PORT
 */
#define _GNU_SOURCE
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { RING_ENTRIES = 4096, IN_BYTES = 65536 };
enum op { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 }; /* low bits of user_data */

struct conn {
	int fd;
	size_t in_len;   /* unanswered bytes in in[] */
	size_t out_len;  /* bytes of out[] handed to the kernel */
	size_t out_sent; /* of which the kernel has taken */
	char in[IN_BYTES];
	char out[2 * IN_BYTES]; /* "OK x\n" for "ECHO x\n": at most 2 bytes shorter; "ERR bad\n" at most 8 */
};

static struct io_uring ring;
static int listen_fd;

static struct io_uring_sqe *next_sqe(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	if (!sqe) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
	}
	if (!sqe) {
		fprintf(stderr, "uring_echo: submission queue full\n");
		exit(1);
	}
	return sqe;
}

static void tag(struct io_uring_sqe *sqe, struct conn *c, enum op op)
{
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | op);
}

static void arm_recv(struct conn *c)
{
	struct io_uring_sqe *sqe = next_sqe();
	io_uring_prep_recv(sqe, c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
	tag(sqe, c, OP_RECV);
}

static void arm_send(struct conn *c)
{
	struct io_uring_sqe *sqe = next_sqe();
	io_uring_prep_send(sqe, c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
	tag(sqe, c, OP_SEND);
}

/* Answer every whole line in c->in into c->out; keep a partial line. */
static void answer(struct conn *c)
{
	size_t start = 0;
	c->out_len = c->out_sent = 0;
	for (size_t i = 0; i < c->in_len; i++) {
		if (c->in[i] != '\n')
			continue;
		size_t len = i - start;
		char *o = c->out + c->out_len;
		if (len >= 5 && !memcmp(c->in + start, "ECHO ", 5)) {
			memcpy(o, "OK ", 3);
			memcpy(o + 3, c->in + start + 5, len - 5);
			o[len - 2] = '\n';
			c->out_len += len - 1;
		} else {
			memcpy(o, "ERR bad\n", 8);
			c->out_len += 8;
		}
		start = i + 1;
	}
	memmove(c->in, c->in + start, c->in_len - start);
	c->in_len -= start;
}

static void arm_accept(void)
{
	struct io_uring_sqe *sqe = next_sqe();
	io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL, 0);
	tag(sqe, NULL, OP_ACCEPT);
}

static void drop(struct conn *c)
{
	close(c->fd);
	free(c);
}

static void on_cqe(const struct io_uring_cqe *cqe)
{
	enum op op = cqe->user_data & 7;
	struct conn *c = (struct conn *)(uintptr_t)(cqe->user_data & ~(uint64_t)7);
	switch (op) {
	case OP_ACCEPT:
		if (!(cqe->flags & IORING_CQE_F_MORE))
			arm_accept(); /* the multishot accept ended */
		if (cqe->res < 0)
			return;
		c = malloc(sizeof *c);
		if (!c) {
			close(cqe->res);
			return;
		}
		c->fd = cqe->res;
		c->in_len = 0;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		arm_recv(c);
		return;
	case OP_RECV:
		if (cqe->res <= 0)
			return drop(c);
		c->in_len += (size_t)cqe->res;
		answer(c);
		if (c->out_len)
			arm_send(c); /* the next receive once out[] is sent */
		else
			arm_recv(c);
		return;
	case OP_SEND:
		if (cqe->res < 0)
			return drop(c);
		c->out_sent += (size_t)cqe->res;
		if (c->out_sent < c->out_len)
			arm_send(c);
		else
			arm_recv(c);
		return;
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: uring_echo PORT\n");
		return 2;
	}
	/* Completions are run when the thread asks for them, in the same
	 * io_uring_enter that submits: no task work interrupts a turn. */
	struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
	int err = io_uring_queue_init_params(RING_ENTRIES, &ring, &p);
	if (err) {
		fprintf(stderr, "uring_echo: io_uring_queue_init: %s\n", strerror(-err));
		return 1;
	}
	int ls = listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)atoi(argv[1])),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 4096)) {
		perror("uring_echo: bind");
		return 1;
	}
	arm_accept();
	for (;;) {
		io_uring_submit_and_wait(&ring, 1);
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			on_cqe(cqe);
			seen++;
		}
		io_uring_cq_advance(&ring, seen);
	}
}

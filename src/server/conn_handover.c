/* SPDX-License-Identifier: MIT */
/*
 * conn_handover: a connection's side of the hand-over to the next instance
 * (handover.c does the systemd side).  Leaving: once every line it read is
 * answered, its record says which socket it is, who the client is and what
 * input was read but not framed or answered (the framer's partial line or
 * unframed rest; bytes still in the kernel go with the socket itself); then
 * its fd is forgotten, not closed.  Arriving: the record's input is loaded
 * into a fresh framer and framed on the connection's first turn, before
 * anything new is read, so the client sees no seam.
 */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int tp_conn_handover_record(struct tp_conn *c, struct tp_handover_conn *rec)
{
	struct stat st;

	if (fstat(c->fd, &st) < 0)
		return -errno;
	memset(rec, 0, sizeof(*rec));
	rec->dev = (uint64_t)st.st_dev;
	rec->ino = (uint64_t)st.st_ino;
	rec->port = c->port;
	snprintf(rec->addr, sizeof(rec->addr), "%s", c->addr);
	rec->input = c->framer.buf;
	rec->input_len = (uint32_t)c->framer.len;
	rec->discarding = c->framer.discarding;
	return c->fd;
}

unsigned tp_conn_handed_off(struct tp_conn *c)
{
	(void)tp_conn_let_go(c, "conn_handover", "handed over");
	return TP_CONN_CLOSED;
}

void tp_conn_handover_peer(const struct tp_handover_conn *rec, struct sockaddr_storage *ret)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ret;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ret;

	memset(ret, 0, sizeof(*ret));
	if (inet_pton(AF_INET, rec->addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(rec->port);
	} else if (inet_pton(AF_INET6, rec->addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(rec->port);
	}
}

struct tp_conn *tp_conn_adopt(struct tp_conn_env *env, struct tp_loop *loop, int fd,
                              const struct tp_handover_conn *rec)
{
	struct sockaddr_storage ss;
	struct tp_conn *c;

	/* The address as the previous instance knew it (a PROXY header's, perhaps), not the peer's. */
	tp_conn_handover_peer(rec, &ss);
	c = tp_conn_new(env, loop, fd, &ss, TP_PEER_DIRECT);
	if (!c)
		return NULL;
	if (tp_framer_preload(&c->framer, rec->input, rec->input_len, rec->discarding) < 0) {
		(void)tp_conn_close(c, "out of memory");
		tp_conn_free(c);
		errno = ENOMEM;
		return NULL;
	}
	/* An instance that left it corked (its drain) would hold each reply 200 ms. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &(int){0}, sizeof(int));
	c->spoke = rec->input_len > 0;
	c->readable = true; /* what arrived meanwhile waits in the socket: no new edge announces it */
	return c;
}

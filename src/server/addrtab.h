/* SPDX-License-Identifier: MIT */
/*
 * addrtab: the client addresses that have connections open, each with its
 * count of connections (limits.max_connections_per_address) and its group
 * in the queue's fair discipline (every connection from the address is a
 * flow of that group).
 *
 * A client address is the whole IPv4 address (also when IPv4-mapped into
 * IPv6), or the first prefix bits of an IPv6 address.  An entry lives
 * while connections from its address do, so there are never more entries
 * than connections; the queue refers to a group only while a connection
 * of it has work queued, which keeps that connection, and so the entry,
 * alive.  Any loop thread: a mutex guards the table (taken per accepted
 * and per freed connection, never per request).
 */
#ifndef TP_ADDRTAB_H
#define TP_ADDRTAB_H

#include <stddef.h>
#include <sys/socket.h>

#include "qnode.h"

struct tp_addrtab;

/* An empty table. NULL on ENOMEM. */
struct tp_addrtab *tp_addrtab_new(void);

/* Free the table (NULL is fine) and the entries left; no connection may use them any more. */
void tp_addrtab_free(struct tp_addrtab *t);

/*
 * Count a connection from peer in.  Returns 0 with its address's group in
 * *ret_group (NULL for a peer that is neither IPv4 nor IPv6: no address,
 * no cap), -EUSERS when max > 0 connections from that address are open
 * already (nothing counted), or -ENOMEM.
 */
int tp_addrtab_enter(struct tp_addrtab *t, const struct sockaddr_storage *peer, int ipv6_prefix, int max,
                     struct tp_qgroup **ret_group);

/* A connection counted in with group g has gone (NULL is fine). */
void tp_addrtab_leave(struct tp_addrtab *t, struct tp_qgroup *g);

/* How many addresses have connections open. */
size_t tp_addrtab_count(struct tp_addrtab *t);

#endif

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
 *
 * It also keeps who was refused over the cap, for the log line that counts
 * refusals: how many refusals in the current period, from which addresses
 * (up to TP_ADDRTAB_REFUSED_SLOTS of them), how often each.  A period ends
 * when they are taken (tp_addrtab_refusals_take).
 */
#ifndef TP_ADDRTAB_H
#define TP_ADDRTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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

#define TP_ADDRTAB_REFUSED_SLOTS 16

/* Who was refused over the cap in a period. */
struct tp_addrtab_refusals {
	uint64_t total;     /* refusals */
	size_t addrs;       /* the addresses they came from, up to TP_ADDRTAB_REFUSED_SLOTS */
	bool more;          /* from more addresses than that: top_count is an upper bound */
	uint64_t top_count; /* the refusals of the one refused most (on a tie, the first refused) */
	char top[64];       /* its text: "192.0.2.7", or an IPv6 prefix such as "2001:db8:1:2::/64" */
};

/*
 * The refusals over the cap since the last call (or the start) in *ret,
 * and a new period begun (loop 0's tick, for the log line).  Returns false
 * when there were none.
 */
bool tp_addrtab_refusals_take(struct tp_addrtab *t, struct tp_addrtab_refusals *ret);

#endif

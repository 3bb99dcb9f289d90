/* SPDX-License-Identifier: MIT */
/*
 * admit: whether a new client connection may stay: the total cap
 * (limits.max_connections) and the cap per client address
 * (limits.max_connections_per_address), with the address's queue group for
 * fair scheduling.  Any loop's thread may call it; a connection counted in
 * is counted out with tp_admit_leave() once its requests are all done.
 */
#ifndef TP_ADMIT_H
#define TP_ADMIT_H

#include <stdint.h>
#include <sys/socket.h>

struct tp_addrtab;
struct tp_qgroup;

struct tp_admit {
	_Atomic int64_t nconns;   /* connections counted in */
	struct tp_addrtab *addrs; /* connections per client address, and their queue groups */
};

/* Set up *a.  Returns 0 or -ENOMEM. */
int tp_admit_init(struct tp_admit *a);

/* Free what tp_admit_init() allocated. */
void tp_admit_done(struct tp_admit *a);

/*
 * Count in a connection from peer.  Returns 0 with its group in
 * *ret_group, -EMFILE when max connections are open already, or -EUSERS
 * when max_per_address (> 0) are open from its address (or -ENOMEM); then
 * nothing is counted.
 */
int tp_admit_enter(struct tp_admit *a, int64_t max, int max_per_address, int ipv6_prefix,
                   const struct sockaddr_storage *peer, struct tp_qgroup **ret_group);

/* Count out a connection counted in with group. */
void tp_admit_leave(struct tp_admit *a, struct tp_qgroup *group);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * conncap: whether a new client connection may stay: the total cap
 * (limits.max_connections) and the cap per client address
 * (limits.max_connections_per_address), with the address's queue group for
 * fair scheduling.  Any loop's thread may call it; a connection counted in
 * is counted out with tp_conncap_leave() once its requests are all done.
 */
#ifndef TP_CONNCAP_H
#define TP_CONNCAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct tp_addrtab;
struct tp_addrtab_refusals;
struct tp_config;
struct tp_metrics;
struct tp_conn;
struct tp_qgroup;

struct tp_conncap {
	_Atomic int64_t nconns;    /* connections counted in */
	struct tp_addrtab *addrs;  /* connections per client address, and their queue groups */
	struct tp_qgroup *unnamed; /* one group for a trusted proxy's connections not named (yet) */
};

/* Set up *a.  Returns 0 or -ENOMEM. */
int tp_conncap_init(struct tp_conncap *a);

/* Free what tp_conncap_init() allocated. */
void tp_conncap_release(struct tp_conncap *a);

/*
 * Count in a connection from peer, or with peer NULL one from a trusted
 * proxy that names its client next: counted in max only, under the
 * unnamed group, so that it weighs on no client address until it is
 * named (tp_conncap_move).  Returns 0 with its group in *ret_group,
 * -EMFILE when max connections are open already, or -EUSERS when
 * max_per_address (> 0) are open from its address (or -ENOMEM); then
 * nothing is counted.
 */
int tp_conncap_enter(struct tp_conncap *a, int64_t max, int max_per_address, int ipv6_prefix,
                     const struct sockaddr_storage *peer, struct tp_qgroup **ret_group);

/*
 * Count a connection already in (under *io_group) under peer's address
 * instead: a PROXY header named its client.  Returns 0 with the new group
 * in *io_group, or -EUSERS when max_per_address (> 0) are open from peer's
 * address (or -ENOMEM); it then stays under *io_group.  Never changes the
 * total.
 */
int tp_conncap_move(struct tp_conncap *a, int max_per_address, int ipv6_prefix,
                    const struct sockaddr_storage *peer, struct tp_qgroup **io_group);

/* Count out a connection counted in with group. */
void tp_conncap_leave(struct tp_conncap *a, struct tp_qgroup *group);

/* Who was refused over max_per_address since the last call; false: nobody (tp_addrtab_refusals_take). */
bool tp_conncap_refusals_take(struct tp_conncap *a, struct tp_addrtab_refusals *ret);

/*
 * The loop callbacks (loop.h) with the caps read under cfg_lock from cfg;
 * refusals counted in metrics (not NULL).  peer NULL: a trusted proxy's
 * connection, to be named by its header (tp_conncap_enter); uncapped: counted
 * under peer's address but not held to its cap (a connection adopted from
 * the previous instance).
 */
struct tp_conncap_ctx {
	struct tp_conncap *counts;
	pthread_mutex_t *cfg_lock;
	const struct tp_config *cfg;
	struct tp_metrics *metrics;
};
bool tp_conncap_conn_enter(const struct tp_conncap_ctx *c, const struct sockaddr_storage *peer, bool uncapped,
                           struct tp_qgroup **ret_group);
/* A PROXY header named conn's client: count it there (tp_conncap_move); false: over its cap. */
bool tp_conncap_conn_named(const struct tp_conncap_ctx *c, struct tp_conn *conn);

#endif

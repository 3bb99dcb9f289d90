/* SPDX-License-Identifier: MIT */
/* conncap: the total and per-address connection caps (see conncap.h). */
#include "conncap.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "addrtab.h"
#include "config.h"
#include "conn.h"
#include "qnode.h"
#include "metrics.h"

int tp_conncap_init(struct tp_conncap *a)
{
	atomic_init(&a->nconns, 0);
	a->addrs = tp_addrtab_new();
	a->unnamed = calloc(1, sizeof(*a->unnamed));
	if (a->unnamed)
		tp_qgroup_init(a->unnamed);
	return a->addrs && a->unnamed ? 0 : -ENOMEM;
}

void tp_conncap_release(struct tp_conncap *a)
{
	tp_addrtab_free(a->addrs);
	free(a->unnamed);
	a->addrs = NULL;
	a->unnamed = NULL;
}

int tp_conncap_enter(struct tp_conncap *a, int64_t max, int max_per_address, int ipv6_prefix,
                     const struct sockaddr_storage *peer, struct tp_qgroup **ret_group)
{
	int r;

	if (atomic_fetch_add_explicit(&a->nconns, 1, memory_order_relaxed) >= max) {
		atomic_fetch_sub_explicit(&a->nconns, 1, memory_order_relaxed);
		return -EMFILE;
	}
	*ret_group = a->unnamed;
	r = peer ? tp_addrtab_enter(a->addrs, peer, ipv6_prefix, max_per_address, ret_group) : 0;
	if (r < 0)
		atomic_fetch_sub_explicit(&a->nconns, 1, memory_order_relaxed);
	return r;
}

int tp_conncap_move(struct tp_conncap *a, int max_per_address, int ipv6_prefix,
                    const struct sockaddr_storage *peer, struct tp_qgroup **io_group)
{
	struct tp_qgroup *group;
	int r = tp_addrtab_enter(a->addrs, peer, ipv6_prefix, max_per_address, &group);

	if (r < 0)
		return r;
	if (*io_group != a->unnamed)
		tp_addrtab_leave(a->addrs, *io_group);
	*io_group = group;
	return 0;
}

void tp_conncap_leave(struct tp_conncap *a, struct tp_qgroup *group)
{
	if (group != a->unnamed)
		tp_addrtab_leave(a->addrs, group);
	atomic_fetch_sub_explicit(&a->nconns, 1, memory_order_relaxed);
}

bool tp_conncap_refusals_take(struct tp_conncap *a, struct tp_addrtab_refusals *ret)
{
	return tp_addrtab_refusals_take(a->addrs, ret);
}

static void caps(const struct tp_conncap_ctx *c, int64_t *ret_max, int *ret_per_addr, int *ret_prefix)
{
	pthread_mutex_lock(c->cfg_lock);
	*ret_max = c->cfg->max_connections;
	*ret_per_addr = c->cfg->max_connections_per_address;
	*ret_prefix = c->cfg->fairness_ipv6_prefix;
	pthread_mutex_unlock(c->cfg_lock);
}

bool tp_conncap_conn_enter(const struct tp_conncap_ctx *c, const struct sockaddr_storage *peer, bool uncapped,
                           struct tp_qgroup **ret_group)
{
	int64_t max;
	int per_addr, prefix, r;

	caps(c, &max, &per_addr, &prefix);
	r = tp_conncap_enter(c->counts, max, uncapped ? 0 : per_addr, prefix, peer, ret_group);
	if (r < 0)
		tp_metrics_refused(c->metrics,
		                   r == -EMFILE ? TP_REFUSE_MAX_CONNECTIONS : TP_REFUSE_PER_ADDRESS);
	return r == 0;
}

bool tp_conncap_conn_named(const struct tp_conncap_ctx *c, struct tp_conn *conn)
{
	int64_t max;
	int per_addr, prefix;

	caps(c, &max, &per_addr, &prefix);
	if (tp_conncap_move(c->counts, per_addr, prefix, &conn->peer, &conn->flow.group) < 0) {
		tp_metrics_refused(c->metrics, TP_REFUSE_PER_ADDRESS);
		return false;
	}
	tp_qflow_init(&conn->flow, conn->flow.group); /* nothing of it is queued yet */
	return true;
}

/* SPDX-License-Identifier: MIT */
/* admit: the total and per-address connection caps (see admit.h). */
#include "admit.h"

#include <errno.h>
#include <stdatomic.h>

#include "addrtab.h"

int tp_admit_init(struct tp_admit *a)
{
	atomic_init(&a->nconns, 0);
	a->addrs = tp_addrtab_new();
	return a->addrs ? 0 : -ENOMEM;
}

void tp_admit_done(struct tp_admit *a)
{
	tp_addrtab_free(a->addrs);
	a->addrs = NULL;
}

int tp_admit_enter(struct tp_admit *a, int64_t max, int max_per_address, int ipv6_prefix,
                   const struct sockaddr_storage *peer, struct tp_qgroup **ret_group)
{
	int r;

	if (atomic_fetch_add_explicit(&a->nconns, 1, memory_order_relaxed) >= max) {
		atomic_fetch_sub_explicit(&a->nconns, 1, memory_order_relaxed);
		return -EMFILE;
	}
	r = tp_addrtab_enter(a->addrs, peer, ipv6_prefix, max_per_address, ret_group);
	if (r < 0)
		atomic_fetch_sub_explicit(&a->nconns, 1, memory_order_relaxed);
	return r;
}

void tp_admit_leave(struct tp_admit *a, struct tp_qgroup *group)
{
	tp_addrtab_leave(a->addrs, group);
	atomic_fetch_sub_explicit(&a->nconns, 1, memory_order_relaxed);
}

/* SPDX-License-Identifier: MIT */
/*
 * qnode: what the queue's users embed: the node of a unit of work, and the
 * flow and group it belongs to, with the fairness mode that groups them.
 *
 * Nodes belong to flows (struct tp_qflow), and flows may be nested in
 * groups (struct tp_qgroup).  The queue knows nothing of what a flow is;
 * its owner decides (the server: a flow per connection, a group per client
 * address).  Both are embedded by their owner, who initialises them with
 * tp_qflow_init() / tp_qgroup_init() and keeps them alive while any node
 * of theirs is in the queue; an idle flow or group is referenced by
 * nothing in the queue, so it may then be freed without telling it.  Their
 * fields are the queue's (under its lock) but the owner's as said; the
 * schedule's entries are here only because flows and groups embed them.
 */
#ifndef TP_QNODE_H
#define TP_QNODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A unit of work, embedded by its owner (intrusive: the queue never
 * allocates per node).  The owner sets deadline_ns, batchable, more and,
 * for the fair modes, flow and cost_us; the rest is the queue's.
 *
 * A node may stand for several requests of one flow (more > 0: only
 * batchable ones): it weighs 1 + more.  The bound, the depth, the waiting
 * count and each flow's share count weights, so the queue holds as many
 * requests whether they come one by one or together.
 */
struct tp_qflow;
struct tp_qnode {
	struct tp_qnode *next;
	struct tp_qnode *wprev, *wnext; /* the queue's: arrival order of waiters (fair modes) */
	struct tp_qflow *flow;          /* its flow (NULL: a flow shared by all such nodes) */
	uint64_t deadline_ns;           /* CLOCK_MONOTONIC; the end of its wait for space */
	uint32_t cost_us;               /* expected service time: the fair modes' measure */
	bool batchable;                 /* cheap work: a worker may take a run of these at once */
	uint16_t more;                  /* requests it stands for beyond the first (tp_qnode_weight) */
};

/* The requests n stands for: what it takes of the bound and counts in the depth. */
static inline size_t tp_qnode_weight(const struct tp_qnode *n)
{
	return 1u + n->more;
}

/* How nodes are grouped into flows (pool.fairness). */
enum tp_fairness {
	TP_FAIR_NONE,       /* one FIFO: the flows are ignored */
	TP_FAIR_CONNECTION, /* round robin across flows */
	TP_FAIR_ADDRESS,    /* across groups, then across the flows of a group */
};

/* Buckets of the admission order: queued cost 0, then powers of 4 (µs). */
#define TP_FAIRQ_BUCKETS 16

struct tp_fairq_entry;

struct tp_fairq_link {
	struct tp_fairq_entry *next, *prev;
};

/* A flow's or a group's place in one level of the schedule. Private. */
struct tp_fairq_entry {
	struct tp_fairq_link link;  /* in the level's new or old list */
	struct tp_fairq_link wlink; /* in the level's admission bucket */
	int64_t deficit;            /* cost it may still take this round */
	uint64_t cost;              /* cost of its admitted nodes */
	uint64_t wcost;             /* cost of its waiting nodes */
	uint32_t nready;            /* weight of its admitted nodes */
	uint8_t list;               /* none, new or old */
	uint8_t bucket;             /* admission bucket + 1, 0: none */
	bool is_group;
};

struct tp_fairq_list {
	struct tp_fairq_entry *head, *tail;
};

/* One level of the schedule: active entries and waiting entries. Private. */
struct tp_fairq_level {
	struct tp_fairq_list new_list, old_list;
	struct tp_fairq_list buckets[TP_FAIRQ_BUCKETS];
	uint32_t mask; /* non-empty buckets */
};

/* A group of flows (a client address). Fields are the queue's. */
struct tp_qgroup {
	struct tp_fairq_entry e;
	struct tp_fairq_level inner; /* its flows */
	uint32_t nwaiting;           /* its flows with waiting nodes */
	uint32_t wnodes;             /* its waiting nodes */
	uint64_t left_us;            /* when it last left the lists (its debt is kept: fairq.c) */
};

/* A flow (a connection).  group is the owner's; the rest is the queue's. */
struct tp_qflow {
	struct tp_fairq_entry e;
	struct tp_qgroup *group;        /* NULL: none, it is scheduled at the top level */
	struct tp_qnode *rhead, *rtail; /* admitted, in arrival order (through next) */
	struct tp_qnode *whead, *wtail; /* waiting, in arrival order (through next) */
};

/* The mode's name: "none", "connection" or "address" (pool.fairness). */
const char *tp_fairness_name(int mode);

/* A flow in group (NULL: none; ignored in CONNECTION mode). */
void tp_qflow_init(struct tp_qflow *f, struct tp_qgroup *group);
void tp_qgroup_init(struct tp_qgroup *g);

#endif

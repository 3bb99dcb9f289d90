/* SPDX-License-Identifier: MIT */
/*
 * post: a loop's mailbox, through which other threads hand its requests
 * back: finished requests (linked through dnext) and admission notices of
 * waiters (linked through anext).  Both lists sit under one lock; the
 * eventfd is written only when they go from empty to non-empty and the
 * loop is not already awake (`notified`), so a burst costs one wake-up.
 *
 * Threads: any thread posts; only the owning loop takes, spins and reads
 * the eventfd.  Lock order: the queue lock may be held while posting (the
 * admit callback); the loop never takes the queue lock while holding
 * `lock`.
 */
#ifndef TP_POST_H
#define TP_POST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "req.h"

struct tp_post {
	pthread_mutex_t lock;
	struct tp_req *done_head, *done_tail;
	struct tp_req *admit_head, *admit_tail;
	bool notified;         /* the loop is awake or spinning: no eventfd write needed */
	atomic_bool has_posts; /* the lists are non-empty (for the spin) */
	int evfd;              /* non-blocking eventfd, in the loop's epoll set */
};

/* Set up an empty mailbox and its eventfd. Returns 0 or -errno. */
int tp_post_init(struct tp_post *p);
void tp_post_release(struct tp_post *p);

/* Write the eventfd (any thread). */
void tp_post_wake(struct tp_post *p);

/* The eventfd was readable: reset it (loop). */
void tp_post_clear_wake(struct tp_post *p);

/* Any thread: n >= 1 finished requests, linked through dnext from first to last. */
void tp_post_done(struct tp_post *p, struct tp_req *first, struct tp_req *last, size_t n);

/* Any thread (the queue lock may be held): waiter r was admitted. */
void tp_post_admit(struct tp_post *p, struct tp_req *r);

/* Loop: take both lists (NULL-terminated), admissions to be handled first. */
void tp_post_take(struct tp_post *p, struct tp_req **ret_done, struct tp_req **ret_admit);

/*
 * Loop, about to sleep with cheap work in flight: poll for a post for up
 * to spin_ns, marked notified so that posters skip the eventfd write.
 * Returns true when something was posted.
 */
bool tp_post_spin(struct tp_post *p, uint64_t spin_ns);

#endif

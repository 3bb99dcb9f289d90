/* SPDX-License-Identifier: MIT */
/*
 * post: a loop's mailbox.  See post.h for the protocol.
 */
#include "post.h"

#include <errno.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"

int tp_post_init(struct tp_post *p)
{
	*p = (struct tp_post){.evfd = -1};
	pthread_mutex_init(&p->lock, NULL);
	p->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return p->evfd < 0 ? -errno : 0;
}

void tp_post_release(struct tp_post *p)
{
	if (p->evfd >= 0)
		close(p->evfd);
	p->evfd = -1;
	pthread_mutex_destroy(&p->lock);
}

void tp_post_wake(struct tp_post *p)
{
	uint64_t one = 1;
	ssize_t w = write(p->evfd, &one, sizeof(one));
	(void)w; /* EAGAIN: the counter is already non-zero, the loop will wake */
}

void tp_post_clear_wake(struct tp_post *p)
{
	uint64_t v;
	ssize_t r = read(p->evfd, &v, sizeof(v));
	(void)r; /* EAGAIN: another read already reset it */
}

/* Lock held: something was posted. Returns whether the poster must write the eventfd. */
static bool mark_posted(struct tp_post *p)
{
	bool wake = !p->notified;
	p->notified = true;
	atomic_store_explicit(&p->has_posts, true, memory_order_release);
	return wake;
}

void tp_post_done(struct tp_post *p, struct tp_req *first, struct tp_req *last, size_t n)
{
	bool wake;

	if (n == 0)
		return;
	last->dnext = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->done_tail)
		p->done_tail->dnext = first;
	else
		p->done_head = first;
	p->done_tail = last;
	wake = mark_posted(p);
	pthread_mutex_unlock(&p->lock);
	if (wake)
		tp_post_wake(p);
}

void tp_post_admit(struct tp_post *p, struct tp_req *r)
{
	bool wake;

	r->anext = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->admit_tail)
		p->admit_tail->anext = r;
	else
		p->admit_head = r;
	p->admit_tail = r;
	wake = mark_posted(p);
	pthread_mutex_unlock(&p->lock);
	if (wake)
		tp_post_wake(p);
}

void tp_post_take(struct tp_post *p, struct tp_req **ret_done, struct tp_req **ret_admit)
{
	pthread_mutex_lock(&p->lock);
	*ret_done = p->done_head;
	*ret_admit = p->admit_head;
	p->done_head = p->done_tail = NULL;
	p->admit_head = p->admit_tail = NULL;
	p->notified = false;
	atomic_store_explicit(&p->has_posts, false, memory_order_relaxed);
	pthread_mutex_unlock(&p->lock);
}

bool tp_post_spin(struct tp_post *p, uint64_t spin_ns)
{
	bool have;

	pthread_mutex_lock(&p->lock);
	have = p->done_head || p->admit_head;
	p->notified = true; /* posters need not write the eventfd while we poll */
	pthread_mutex_unlock(&p->lock);
	if (have)
		return true;
	uint64_t end = tp_clock_ns() + spin_ns;
	for (unsigned i = 1;; i++) {
		if (atomic_load_explicit(&p->has_posts, memory_order_acquire))
			return true;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
		/*
		 * Yield now and then: on a machine with more runnable threads
		 * than cores, the thread this one waits for may need this core.
		 */
		if ((i & 63) == 0 && (sched_yield(), tp_clock_ns() >= end))
			break;
	}
	/* Not notified any more: the next post must write the eventfd again. */
	pthread_mutex_lock(&p->lock);
	have = p->done_head || p->admit_head;
	p->notified = have;
	pthread_mutex_unlock(&p->lock);
	return have;
}

/* SPDX-License-Identifier: MIT */
/*
 * reload: SIGHUP's work.  Reading and validating the file runs on a
 * short-lived thread of its own (a job), because the file may be a FIFO or
 * sit on a slow file system and an event loop must never wait for it; loop
 * 0 only receives the validated result and applies what can change live
 * (pool size, queue size, stall budget, log level; the rest of the
 * settings reach the loops through the new copy), keeping what only a
 * restart can change.
 *
 * Threads: tp_reload_job_start, _done, _finish and _abandon run on loop 0;
 * the job's thread runs only the read function and the wake callback.
 */
#ifndef TP_RELOAD_H
#define TP_RELOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "log.h"

struct tp_pool;
struct tp_queue;
struct tp_reload_job;

/*
 * The outcome of the last reload, for reload_status.h's file (when dir is
 * set: $RUNTIME_DIRECTORY).  Loop 0 writes it; a job's thread only reads
 * a copy of it, to say in the file that a read is in progress.
 */
struct tp_reload_outcome {
	char dir[4096]; /* "" : no status file */
	unsigned long gen;
	char state[16]; /* "started", "applied", "refused" */
	char msg[TP_MSG_MAX];
};

/*
 * Record the outcome of reload number gen + 1 (or, with state "started",
 * of none yet) and write the status file, logging a failure to write it.
 * Loop 0.
 */
void tp_reload_outcome_set(struct tp_reload_outcome *o, const char *state, const char *msg);

/*
 * Re-read the configuration for a reload (file, then command-line flags).
 * Returns 0 with *ret filled, or a negative errno with a one-line message
 * naming the file, line and setting in err.  Runs on the job's thread: it
 * may block, and must touch nothing the server's other threads use.
 */
typedef int (*tp_reload_fn)(struct tp_config *ret, char *err, size_t errlen, void *ctx);

/*
 * Start a job that, on a new thread, says in o's status file that a read
 * is in progress, calls fn(ctx), then wake(wake_ctx), unless the job was
 * abandoned meanwhile.  o is copied: the caller may change or free it
 * at once (the thread of a job abandoned at exit may run after that).
 * Returns 0 with *ret the job, or a negative errno (no thread).
 */
int tp_reload_job_start(const struct tp_reload_outcome *o, tp_reload_fn fn, void *ctx,
                        void (*wake)(void *wake_ctx), void *wake_ctx, struct tp_reload_job **ret);

/* Has the job's read finished (any thread)? */
bool tp_reload_job_done(struct tp_reload_job *job);

/*
 * Take a finished job's outcome: fn's return, with *ret filled on success
 * and fn's message in err on failure.  Joins the thread and frees the job.
 */
int tp_reload_job_finish(struct tp_reload_job *job, struct tp_config *ret, char *err, size_t errlen);

/*
 * Let go of a job whose read may never end (shutdown): its thread frees
 * it when fn returns and does not call wake.  NULL is fine.
 */
void tp_reload_job_abandon(struct tp_reload_job *job);

/* What a reload changes live. */
struct tp_reload_target {
	struct tp_pool *pool;
	struct tp_queue *queue;
	bool activated; /* listening sockets came from systemd */
};

/*
 * Apply to t what differs between old and the configuration nc read by a
 * job: resize the pool, change the queue's capacity and the stall budget,
 * set the log level.  Logs the outcome, and a one-line summary goes to
 * msg.  *ret gets the configuration now in force (the caller publishes
 * it).  Returns 0, or -errno when the pool cannot take its new size (no
 * thread: a task limit): then nothing is applied and msg says why.  Runs
 * on loop 0.
 */
int tp_reload_apply(const struct tp_reload_target *t, const struct tp_config *old, const struct tp_config *nc,
                    struct tp_config *ret, char *msg, size_t msglen);

#endif

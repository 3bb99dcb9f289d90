/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of reload.c's job: its thread says "reading" in the status
 * file with the outcome it was started with, even when the caller's
 * outcome is gone by the time the thread runs (the server freed at exit,
 * a job abandoned before its thread was scheduled).  The test binary is
 * linked with --wrap=pthread_create: a job's thread waits for the test's
 * word before it runs, so the order of events is the test's, not the
 * scheduler's.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "reload.h"

int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
int __real_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

static sem_t go;    /* posted by the test: a held thread may run */
static sem_t ended; /* posted by a held thread when its start routine has returned */

struct held {
	void *(*fn)(void *);
	void *arg;
};

static void *held_main(void *p)
{
	struct held h = *(struct held *)p;
	void *r;

	free(p);
	while (sem_wait(&go) < 0 && errno == EINTR)
		;
	r = h.fn(h.arg);
	sem_post(&ended);
	return r;
}

/* Every thread made here is a job's: each waits for go. */
int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	struct held *h = malloc(sizeof(*h));
	int r;

	if (!h)
		return ENOMEM;
	*h = (struct held){fn, arg};
	r = __real_pthread_create(th, attr, held_main, h);
	if (r)
		free(h);
	return r;
}

/* Wait (up to 10 s) for a held thread to end. */
static void wait_ended(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	int r;
	while ((r = sem_timedwait(&ended, &ts)) < 0 && errno == EINTR)
		;
	assert_int_equal(r, 0);
}

static atomic_int reads, wakes;

static int read_fn(struct tp_config *ret, char *err, size_t errlen, void *ctx)
{
	(void)err;
	(void)errlen;
	(void)ctx;
	atomic_fetch_add(&reads, 1);
	memset(ret, 0, sizeof(*ret));
	ret->workers = 5;
	return 0;
}

static void wake_fn(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&wakes, 1);
}

struct fixture {
	char dir[256];   /* the job's status directory */
	char other[256]; /* where a stale outcome would point */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "%.200s/test_reload.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	snprintf(f->other, sizeof(f->other), "%.200s/test_reload.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	assert_non_null(mkdtemp(f->other));
	assert_int_equal(sem_init(&go, 0, 0), 0);
	assert_int_equal(sem_init(&ended, 0, 0), 0);
	atomic_store(&reads, 0);
	atomic_store(&wakes, 0);
	*state = f;
	return 0;
}

static void remove_status(const char *dir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/reload-status", dir);
	unlink(path);
	rmdir(dir);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	remove_status(f->dir);
	remove_status(f->other);
	sem_destroy(&go);
	sem_destroy(&ended);
	free(f);
	return 0;
}

/* DIR/reload-status's text, or "" when there is none. */
static void read_status(const char *dir, char *buf, size_t len)
{
	char path[512];
	FILE *fp;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/reload-status", dir);
	fp = fopen(path, "r");
	if (fp) {
		n = fread(buf, 1, len - 1, fp);
		fclose(fp);
	}
	buf[n] = '\0';
}

/* An outcome on the heap, as the server's is. */
static struct tp_reload_outcome *new_outcome(const char *dir)
{
	struct tp_reload_outcome *o = calloc(1, sizeof(*o));

	assert_non_null(o);
	snprintf(o->dir, sizeof(o->dir), "%s", dir);
	o->gen = 7;
	snprintf(o->state, sizeof(o->state), "applied");
	snprintf(o->msg, sizeof(o->msg), "configuration reloaded");
	return o;
}

/* The caller's memory is gone: reused for something else, then freed. */
static void lose_outcome(struct tp_reload_outcome *o, const char *other)
{
	snprintf(o->dir, sizeof(o->dir), "%s", other);
	o->gen = 99;
	snprintf(o->state, sizeof(o->state), "refused");
	snprintf(o->msg, sizeof(o->msg), "stale");
	free(o);
}

static void assert_reading_7(const struct fixture *f)
{
	char text[TP_MSG_MAX + 64];

	read_status(f->dir, text, sizeof(text));
	assert_string_equal(text, "7 applied configuration reloaded\nreading 8\n");
	read_status(f->other, text, sizeof(text));
	assert_string_equal(text, "");
}

/* SIGHUP and SIGTERM in one turn: the job is abandoned and the server freed before its thread runs. */
static void test_abandoned_before_it_runs(void **state)
{
	struct fixture *f = *state;
	struct tp_reload_outcome *o = new_outcome(f->dir);
	struct tp_reload_job *job = NULL;

	assert_int_equal(tp_reload_job_start(o, read_fn, NULL, wake_fn, NULL, &job), 0);
	tp_reload_job_abandon(job);
	lose_outcome(o, f->other);
	sem_post(&go);
	wait_ended();
	assert_int_equal(atomic_load(&reads), 1);
	assert_int_equal(atomic_load(&wakes), 0);
	assert_reading_7(f);
}

/* The caller may change its outcome at once; the job still says what it started with, then finishes. */
static void test_outcome_changed_after_start(void **state)
{
	struct fixture *f = *state;
	struct tp_reload_outcome *o = new_outcome(f->dir);
	struct tp_reload_job *job = NULL;
	struct tp_config cfg = {0};
	char err[64] = "";

	assert_int_equal(tp_reload_job_start(o, read_fn, NULL, wake_fn, NULL, &job), 0);
	lose_outcome(o, f->other);
	assert_false(tp_reload_job_done(job));
	sem_post(&go);
	wait_ended();
	assert_true(tp_reload_job_done(job));
	assert_int_equal(atomic_load(&wakes), 1);
	assert_int_equal(tp_reload_job_finish(job, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.workers, 5);
	assert_reading_7(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_abandoned_before_it_runs, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outcome_changed_after_start, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * client_load: the worker threads, the connecting of every client and the
 * open-loop schedule; client_conn.c generates the requests and checks the
 * replies.  See client_load.h for the threads and docs/TPCLIENT.md for the
 * semantics users rely on.
 *
 * DESIGN
 * - A connection keeps its outstanding requests in a ring of max-inflight
 *   entries, oldest first; replies come back in request order, so each
 *   reply line is checked against the ring's head.  An entry stores the
 *   request's op, argument and text seed, not its text: the ECHO text is
 *   regenerated from the seed to verify, so memory does not grow with
 *   --echo-bytes.
 * - Requests are appended to one output buffer and written with one send()
 *   per batch; replies are read in large chunks and framed by tp_framer.
 * - Each client draws its requests from its own generator seeded by (seed,
 *   client number), so a run's request sequences do not depend on threads
 *   or timing.
 * - Closed loop: a connection tops its window up to max-inflight after every
 *   read.  Open loop: each worker pumps its clients as their requests fall
 *   due (client_sched.h), and a client whose window is full sends its
 *   overdue requests after its next read.  Latency counts from the due time,
 *   so a stall delays the measured replies instead of the schedule.
 */
#include "client_load.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "client_conn.h"
#include "client_dial.h"
#include "client_sched.h"
#include "clock.h"
#include "log.h"

#define SWEEP_NS (50 * 1000000LL)   /* timeouts and finished connections are checked this often */
#define PUBLISH_NS (20 * 1000000LL) /* what the timeline sees is this fresh (when sampling) */
#define MAX_EVENTS 256
#define SERVER_TEXT_MAX (sizeof(((struct tp_client_opts *)NULL)->host) + 16) /* "[host]:port" */

struct worker {
	struct tp_client_load *load;
	struct tp_client_ctx ctx; /* what the connections of this worker share */
	pthread_t thread;
	bool started;
	int epfd;
	struct tp_client_conn **conns;
	unsigned nconns;

	struct tp_client_sched sched; /* open loop */

	int64_t finished_ns;
	struct tp_client_counts published;  /* the worker's totals when it last published */
	pthread_mutex_t pub_lock;           /* guards the two below */
	struct tp_client_counts pub_counts; /* published, not taken yet */
	struct tp_hist *pub_latency;        /* published, not taken yet; NULL when not sampling */
};

struct tp_client_load {
	struct tp_client_opts opts;
	struct worker *workers;
	unsigned nthreads;
	int done_fd;
	unsigned exited;
	struct tp_client_dial *dial;
	atomic_int stop; /* 0 run, 1 stop issuing, 2 abort */
	int stop_fd;     /* readable: stop connecting (or -1) */
	int stopped_fd;  /* an eventfd readable once stop is set: a reconnect gives up */
	uint64_t connect_failed[TP_CLIENT_MAX_GROUPS]; /* per group, counted before the workers start */
	uint64_t connect_failed_all;
};

static int64_t now_ns(void)
{
	return (int64_t)tp_clock_ns();
}

/* epoll_pwait2 wakes at the due time to the microsecond; epoll_wait only to the millisecond. */
static int wait_events(int epfd, struct epoll_event *evs, int64_t timeout_ns)
{
	static atomic_bool no_pwait2;

	if (timeout_ns < 0)
		timeout_ns = 0;
	if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
		struct timespec ts = {timeout_ns / 1000000000LL, timeout_ns % 1000000000LL};
		int n = epoll_pwait2(epfd, evs, MAX_EVENTS, &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		atomic_store(&no_pwait2, true);
	}
	return epoll_wait(epfd, evs, MAX_EVENTS, (int)((timeout_ns + 999999) / 1000000));
}

/* Hand what happened since the last time (counted or in the warmup) over to tp_client_load_take(). */
static void publish(struct worker *w)
{
	struct tp_client_counts now = {0}, delta;

	if (!w->pub_latency)
		return;
	for (unsigned g = 0; g < w->load->opts.ngroups; g++) {
		tp_client_counts_add(&now, &w->ctx.groups[g].stats.counts);
		tp_client_counts_add(&now, &w->ctx.groups[g].warm.counts);
	}
	delta = now;
	tp_client_counts_sub(&delta, &w->published);
	w->published = now;
	pthread_mutex_lock(&w->pub_lock);
	tp_client_counts_add(&w->pub_counts, &delta);
	tp_hist_merge(w->pub_latency, w->ctx.recent);
	pthread_mutex_unlock(&w->pub_lock);
	tp_hist_reset(w->ctx.recent);
}

/* "host:port" of the server for a message, an IPv6 address in brackets. */
static const char *server_text(const struct tp_client_opts *o, char *buf, size_t len)
{
	tp_log_host_port(buf, len, o->host, (unsigned)strtoul(o->port, NULL, 10));
	return buf;
}

/* --reconnect: dial again for each connection the server closed whose redial time has come (blocking,
 * bounded by recv-timeout). */
static void reopen_broken(struct worker *w)
{
	const struct tp_client_opts *o = &w->load->opts;
	struct tp_client_conn *c;
	char server[SERVER_TEXT_MAX];

	while ((c = tp_client_conn_next_broken(&w->ctx))) {
		const struct tp_client_source *src = tp_client_conn_source(c);
		const char *call = "connect";
		int fd, r;

		fd = tp_client_dial_connect(w->load->dial, src, o->recv_timeout_s, w->load->stopped_fd,
		                            &call);
		r = fd < 0 ? fd : tp_client_conn_reopen(c, fd);
		w->ctx.now_ns = now_ns();
		if (r == 0)
			continue;
		/* A server restarting refuses for a while: dial again, within the receive timeout. */
		bool again = fd < 0 && fd != -EINTR && tp_client_conn_redial_failed(c);
		tp_log(again ? TP_LOG_INFO : TP_LOG_WARNING, "reconnect",
		       "cannot reconnect client %u%s%s to %s: %s(): %s%s", tp_client_conn_index(c),
		       src ? " from " : "", src ? src->text : "", server_text(o, server, sizeof(server)),
		       fd < 0 ? call : "epoll_ctl", strerror(-r), again ? "; trying again" : "");
		if (again)
			continue;
		if (fd >= 0)
			close(fd);
		tp_client_conn_give_up(c);
	}
}

static void sweep(struct worker *w)
{
	for (unsigned j = 0; j < w->nconns; j++)
		tp_client_conn_sweep(w->conns[j]);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct tp_client_load *l = w->load;
	struct tp_client_ctx *ctx = &w->ctx;
	struct epoll_event evs[MAX_EVENTS];
	int64_t next_sweep, next_publish;
	uint64_t one = 1;

	if (tp_client_sched_begin(&w->sched, &l->opts))
		prctl(PR_SET_TIMERSLACK, 1000UL); /* wake on the schedule, not 50 us after it */

	ctx->now_ns = now_ns();
	next_sweep = ctx->now_ns + SWEEP_NS;
	next_publish = w->pub_latency ? ctx->now_ns + PUBLISH_NS : INT64_MAX;
	for (unsigned j = 0; j < w->nconns; j++)
		tp_client_conn_begin(w->conns[j]);

	while (ctx->open > 0) {
		int stop = atomic_load_explicit(&l->stop, memory_order_relaxed);
		if (stop == 2) {
			for (unsigned j = 0; j < w->nconns; j++)
				tp_client_conn_abort(w->conns[j]);
			break;
		}
		if (stop && !ctx->stopping) {
			ctx->stopping = true;
			w->sched.on = false;
			next_sweep = ctx->now_ns; /* let idle connections go now */
		}
		if (w->sched.on)
			tp_client_sched_run(&w->sched, w->conns, ctx);
		reopen_broken(w);
		if (ctx->now_ns >= next_publish) {
			publish(w);
			next_publish = w->pub_latency ? ctx->now_ns + PUBLISH_NS : INT64_MAX;
		}
		if (ctx->retry_wake_ns && ctx->now_ns >= ctx->retry_wake_ns) {
			ctx->retry_wake_ns = 0; /* the connections still waiting set it again */
			next_sweep = ctx->now_ns;
		}
		if (ctx->now_ns >= next_sweep) {
			sweep(w);
			next_sweep = ctx->now_ns + SWEEP_NS;
			continue;
		}

		int64_t wake = next_sweep < next_publish ? next_sweep : next_publish;
		if (w->sched.on && w->sched.next_ns < wake)
			wake = w->sched.next_ns;
		if (ctx->retry_wake_ns && ctx->retry_wake_ns < wake)
			wake = ctx->retry_wake_ns;
		if (ctx->redial_wake_ns && ctx->redial_wake_ns < wake)
			wake = ctx->redial_wake_ns;
		int n = wait_events(w->epfd, evs, wake - ctx->now_ns);
		ctx->now_ns = now_ns();
		if (n < 0 && errno != EINTR) {
			tp_log(TP_LOG_ERROR, "epoll", "epoll_wait(): %s", strerror(errno));
			atomic_store(&l->stop, 2);
			continue;
		}
		for (int i = 0; i < n; i++)
			tp_client_conn_event(evs[i].data.ptr, evs[i].events);
	}
	publish(w);
	w->finished_ns = now_ns();
	if (write(l->done_fd, &one, sizeof(one)) < 0)
		tp_log(TP_LOG_ERROR, "eventfd", "write(eventfd): %s", strerror(errno));
	return NULL;
}

/* Enough descriptors for every client: the soft limit is often 1024. */
static void raise_nofile(unsigned clients)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)clients + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < need)
		tp_log(TP_LOG_WARNING, "nofile", "only %llu file descriptors for %u clients",
		       (unsigned long long)rl.rlim_cur, clients);
}

static int setup_workers(struct tp_client_load *l, uint64_t seed, bool sample)
{
	const struct tp_client_opts *o = &l->opts;

	l->workers = calloc(l->nthreads, sizeof(*l->workers));
	if (!l->workers)
		return -ENOMEM;
	/* Every worker freeable first, so a failure below can leave through tp_client_load_free(). */
	for (unsigned t = 0; t < l->nthreads; t++) {
		l->workers[t].epfd = -1;
		pthread_mutex_init(&l->workers[t].pub_lock, NULL);
	}
	for (unsigned t = 0; t < l->nthreads; t++) {
		struct worker *w = &l->workers[t];
		w->load = l;
		w->nconns = o->clients / l->nthreads + (t < o->clients % l->nthreads);
		/* An array of pointers: sizeof(*w->conns) is a pointer's size, as meant. */
		w->conns = calloc(w->nconns, sizeof(*w->conns)); /* NOLINT(bugprone-sizeof-expression) */
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (!w->conns || w->epfd < 0)
			return w->epfd < 0 ? -errno : -ENOMEM;
		int r = tp_client_ctx_init(&w->ctx, o, seed, w->epfd, sample);
		if (r < 0)
			return r;
		if (sample && !(w->pub_latency = tp_hist_new()))
			return -ENOMEM;
	}
	return 0;
}

/* Connect client i, number gi of group g; a failure is counted, and logged once per source. */
static int connect_client(struct tp_client_load *l, unsigned i, unsigned g, unsigned gi, bool *logged)
{
	const struct tp_client_opts *o = &l->opts;
	const struct tp_client_group *group = &o->groups[g];
	struct worker *w = &l->workers[i % l->nthreads];
	unsigned pos = i / l->nthreads, s = group->nsources ? gi % group->nsources : 0;
	const struct tp_client_source *src = group->nsources ? &group->sources[s] : NULL;
	const char *call;
	char server[SERVER_TEXT_MAX];
	int fd = tp_client_dial_connect(l->dial, src, o->recv_timeout_s, l->stop_fd, &call);

	if (fd == -EINTR)
		return fd;
	if (fd < 0) {
		tp_log(logged[s] ? TP_LOG_DEBUG : TP_LOG_ERROR, "connect",
		       "cannot connect client %u%s%s to %s: %s(): %s", i, src ? " from " : "",
		       src ? src->text : "", server_text(o, server, sizeof(server)), call, strerror(-fd));
		logged[s] = true;
		l->connect_failed[g]++;
		l->connect_failed_all++;
	}
	tp_client_sched_add(&w->sched, g, pos);
	int r = tp_client_conn_new(&w->ctx, g, i, gi, fd, &w->conns[pos]);
	if (r < 0 && fd >= 0)
		close(fd);
	return r;
}

/*
 * Connect every client, group after group, dealt round-robin to the
 * workers and, in its group, to the group's source addresses.  A client
 * that cannot connect gets a closed connection, so numbering stays dense.
 */
static int connect_all(struct tp_client_load *l)
{
	const struct tp_client_opts *o = &l->opts;
	char server[SERVER_TEXT_MAX];
	unsigned i = 0;

	for (unsigned g = 0; g < o->ngroups; g++) {
		bool logged[TP_CLIENT_MAX_SOURCES] = {false};
		for (unsigned gi = 0; gi < o->groups[g].clients; gi++, i++) {
			int r = connect_client(l, i, g, gi, logged);
			if (r < 0)
				return r;
		}
	}
	tp_log(TP_LOG_INFO, "connected", "%llu of %u clients connected to %s",
	       (unsigned long long)(o->clients - l->connect_failed_all), o->clients,
	       server_text(o, server, sizeof(server)));
	return 0;
}

int tp_client_load_new(const struct tp_client_opts *opts, uint64_t seed, bool sample, int stop_fd,
                       struct tp_client_load **ret)
{
	struct tp_client_load *l;
	const char *why = NULL;
	char server[SERVER_TEXT_MAX];
	int r;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->opts = *opts;
	l->stop_fd = stop_fd;
	l->nthreads = opts->threads;
	l->stopped_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->done_fd < 0 || l->stopped_fd < 0) {
		r = -errno;
		goto fail;
	}
	r = setup_workers(l, seed, sample);
	if (r < 0)
		goto fail;
	r = tp_client_dial_new(opts->host, opts->port, &l->dial, &why);
	if (r < 0) {
		if (why)
			tp_log(TP_LOG_ERROR, "resolve", "cannot resolve %s: %s",
			       server_text(opts, server, sizeof(server)), why);
		goto fail;
	}
	raise_nofile(opts->clients);
	r = connect_all(l);
	if (r < 0)
		goto fail;
	*ret = l;
	return 0;

fail:
	tp_client_load_free(l);
	return r;
}

int tp_client_load_start(struct tp_client_load *l)
{
	int64_t start = now_ns();

	for (unsigned t = 0; t < l->nthreads; t++) {
		struct worker *w = &l->workers[t];
		tp_client_ctx_start(&w->ctx, start);
		int r = pthread_create(&w->thread, NULL, worker_main, w);
		if (r != 0) {
			tp_client_load_stop(l, true);
			return -r;
		}
		w->started = true;
	}
	return 0;
}

int tp_client_load_fd(const struct tp_client_load *l)
{
	return l->done_fd;
}

bool tp_client_load_finished(struct tp_client_load *l)
{
	uint64_t n;

	if (read(l->done_fd, &n, sizeof(n)) == (ssize_t)sizeof(n))
		l->exited += (unsigned)n;
	return l->exited >= l->nthreads;
}

void tp_client_load_stop(struct tp_client_load *l, bool abort)
{
	uint64_t one = 1;

	atomic_store(&l->stop, abort ? 2 : 1);
	if (write(l->stopped_fd, &one, sizeof(one)) < 0)
		tp_log(TP_LOG_ERROR, "eventfd", "write(eventfd): %s", strerror(errno));
}

void tp_client_load_take(struct tp_client_load *l, struct tp_client_counts *ret, struct tp_hist *latency)
{
	for (unsigned t = 0; t < l->nthreads; t++) {
		struct worker *w = &l->workers[t];
		if (!w->pub_latency)
			continue;
		pthread_mutex_lock(&w->pub_lock);
		tp_client_counts_add(ret, &w->pub_counts);
		memset(&w->pub_counts, 0, sizeof(w->pub_counts));
		tp_hist_merge(latency, w->pub_latency);
		tp_hist_reset(w->pub_latency);
		pthread_mutex_unlock(&w->pub_lock);
	}
}

double tp_client_load_result(struct tp_client_load *l, struct tp_client_stats *ret)
{
	int64_t start = 0, end = 0;

	for (unsigned t = 0; t < l->nthreads; t++) {
		struct worker *w = &l->workers[t];
		if (!w->started)
			continue;
		pthread_join(w->thread, NULL);
		w->started = false;
		start = w->ctx.warm_end_ns; /* the totals leave the warmup out, and so does elapsed */
		if (w->finished_ns > end)
			end = w->finished_ns;
		for (unsigned g = 0; g < l->opts.ngroups; g++)
			tp_client_stats_merge(&ret[g], &w->ctx.groups[g].stats);
	}
	for (unsigned g = 0; g < l->opts.ngroups; g++)
		ret[g].counts.connect_failed += l->connect_failed[g];
	return end > start ? (double)(end - start) / 1e9 : 0.0;
}

void tp_client_load_free(struct tp_client_load *l)
{
	if (!l)
		return;
	if (l->workers) {
		tp_client_load_stop(l, true);
		for (unsigned t = 0; t < l->nthreads; t++) {
			struct worker *w = &l->workers[t];
			if (w->started)
				pthread_join(w->thread, NULL);
			for (unsigned j = 0; w->conns && j < w->nconns; j++)
				tp_client_conn_free(w->conns[j]);
			free(w->conns);
			tp_client_ctx_release(&w->ctx);
			tp_hist_free(w->pub_latency);
			pthread_mutex_destroy(&w->pub_lock);
			if (w->epfd >= 0)
				close(w->epfd);
		}
		free(l->workers);
	}
	if (l->done_fd >= 0)
		close(l->done_fd);
	if (l->stopped_fd >= 0)
		close(l->stopped_fd);
	tp_client_dial_free(l->dial);
	free(l);
}

/* SPDX-License-Identifier: MIT */
/*
 * tpclient: the load generator for tpserver.  This file is the wiring: the
 * command line, signals, what is shown while the run goes (client_timeline)
 * and the final report.  The engine is client_load.c; what each option and output field
 * means is in docs/TPCLIENT.md.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "client_hgrm.h"
#include "client_json.h"
#include "client_load.h"
#include "client_opts.h"
#include "client_report.h"
#include "client_timeline.h"
#include "clock.h"
#include "hist.h"
#include "log.h"

/* A seed JSON readers keep exactly, even those whose numbers are doubles. */
static uint64_t random_seed(void)
{
	uint64_t s;

	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s))
		s = (uint64_t)(int64_t)tp_clock_ns() ^ ((uint64_t)getpid() << 32);
	return s & ((1ULL << 53) - 1);
}

/* What the run shows while it goes: the progress line and the --interval rows. */
struct live {
	bool progress;                       /* stderr is a terminal, and no --quiet */
	FILE *rows;                          /* --timeline, else NULL */
	struct tp_client_timeline *timeline; /* NULL: nothing to show */
	struct tp_client_counts delta;
	struct tp_hist *latency;
};

/* Take what the workers published and show what is due. */
static void live_update(struct live *lv, struct tp_client_load *l, int64_t now)
{
	memset(&lv->delta, 0, sizeof(lv->delta));
	tp_hist_reset(lv->latency);
	tp_client_load_take(l, &lv->delta, lv->latency);
	tp_client_timeline_update(lv->timeline, &lv->delta, lv->latency, now);
}

/* Wait for the workers, relaying signals and showing progress. Returns true if interrupted. */
static bool wait_run(struct tp_client_load *l, int sigfd, struct live *lv)
{
	struct pollfd fds[2] = {{.fd = tp_client_load_fd(l), .events = POLLIN},
	                        {.fd = sigfd, .events = POLLIN}};
	unsigned signals = 0;

	for (;;) {
		int timeout = -1;

		if (lv->timeline) {
			int64_t wait_ns = tp_client_timeline_wake_ns(lv->timeline) - (int64_t)tp_clock_ns();
			timeout = wait_ns > 0 ? (int)((wait_ns + 999999) / 1000000) : 0;
		}
		if (poll(fds, 2, timeout) < 0 && errno != EINTR) {
			tp_log(TP_LOG_ERROR, "poll", "poll(): %s", strerror(errno));
			tp_client_load_stop(l, true);
		}
		if (fds[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				/* First signal: finish cleanly; second: give up on what is outstanding. */
				tp_client_load_stop(l, ++signals > 1);
				tp_log(TP_LOG_NOTICE, "interrupted", "%s: %s", strsignal((int)si.ssi_signo),
				       signals > 1 ? "closing all connections"
				                   : "stopping; waiting for outstanding replies (again to "
				                     "abort)");
			}
		}
		/* Finished: the last of it goes into the last row (live_end), not into a row now. */
		if ((fds[0].revents & POLLIN) && tp_client_load_finished(l))
			return signals > 0;
		if (lv->timeline) {
			int64_t now = (int64_t)tp_clock_ns();
			if (now >= tp_client_timeline_wake_ns(lv->timeline))
				live_update(lv, l, now);
		}
	}
}

/* SIGINT and SIGTERM as a signalfd, blocked before any thread exists so every worker inherits the mask. */
static int signal_fd(void)
{
	sigset_t sigs;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	return signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* What a run measured: per group, and their sum ([ngroups]); each with every histogram. */
struct results {
	struct tp_client_stats stats[TP_CLIENT_MAX_GROUPS + 1];
};

static void log_start(const struct tp_client_opts *o, uint64_t seed)
{
	tp_log(TP_LOG_INFO, "start", "%u clients in %u groups on %u threads, seed %llu", o->clients,
	       o->ngroups, o->threads, (unsigned long long)seed);
	for (unsigned i = 0; i < o->ngroups; i++) {
		const struct tp_client_group *g = &o->groups[i];
		tp_log(TP_LOG_INFO, "start", "group %s: %s loop, %u clients, mix %s, max-inflight %u",
		       g->name[0] ? g->name : "-", g->rate > 0 ? "open" : "closed", g->clients,
		       tp_client_mix_name(g->mix), g->max_inflight);
	}
}

/* --latency-file: the .hgrm of h. Returns 0 or TP_CLIENT_EXIT_FAILED (logged). */
static int write_hgrm(const char *path, const struct tp_hist *h)
{
	FILE *f = fopen(path, "we");
	int r = f ? tp_client_hgrm_write(f, h) : -errno;

	if (f && fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0)
		return 0;
	tp_log(TP_LOG_ERROR, "latency-file", "cannot write %s: %s", path, strerror(-r));
	return TP_CLIENT_EXIT_FAILED;
}

/* Start showing the run (if anything is to be shown), from now. Returns 0 or -ENOMEM. */
static int live_start(struct live *lv, const struct tp_client_opts *o)
{
	if (!lv->progress && o->interval_s == 0)
		return 0;
	lv->latency = tp_hist_new();
	if (!lv->latency)
		return -ENOMEM;
	return tp_client_timeline_new(o, lv->progress, lv->rows, (int64_t)tp_clock_ns(), &lv->timeline);
}

/* The run is over: the last of what the workers published, the last row. */
static void live_end(struct live *lv, struct tp_client_load *l)
{
	int64_t now = (int64_t)tp_clock_ns();

	if (!lv->timeline)
		return;
	live_update(lv, l, now);
	tp_client_timeline_end(lv->timeline, now);
}

/* The --timeline rows are all out (a row that could not be written fails the run). */
static int rows_written(const struct tp_client_opts *o, FILE *rows)
{
	if (!rows)
		return 0;
	errno = 0; /* a row's failed write leaves only the stream's error flag */
	if (fflush(rows) == 0 && !ferror(rows))
		return 0;
	tp_log(TP_LOG_ERROR, "timeline", "cannot write %s: %s", o->timeline,
	       ferror(rows) && errno == 0 ? "a row could not be written" : strerror(errno));
	return TP_CLIENT_EXIT_FAILED;
}

/*
 * Write the latency file, check the timeline's rows, then print the report
 * of what res measured, with its exit status (1 also when the report
 * itself cannot be written).
 */
static int report(const struct tp_client_opts *o, struct tp_client_report *rep, FILE *rows)
{
	rep->exit_status = tp_client_report_exit_status(&rep->total->counts);
	if (o->latency_file)
		rep->exit_status |= write_hgrm(o->latency_file, rep->total->latency);
	rep->exit_status |= rows_written(o, rows);
	errno = 0;
	if (o->json)
		tp_client_json_report(stdout, rep);
	else
		tp_client_report_text(stdout, rep);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		tp_log(TP_LOG_ERROR, "report", "cannot write the report: %s",
		       errno ? strerror(errno) : "write error");
		return TP_CLIENT_EXIT_FAILED;
	}
	return rep->exit_status;
}

/* Connect, run until done or interrupted, print the report. Returns the exit status. */
static int run(const struct tp_client_opts *o, uint64_t seed, int sigfd, struct live *lv, struct results *res)
{
	struct tp_client_load *load = NULL;
	struct tp_client_report rep = {
	        .opts = o, .seed = seed, .total = &res->stats[o->ngroups], .groups = res->stats};
	int r, status = TP_CLIENT_EXIT_FAILED;

	r = tp_client_load_new(o, seed, lv->progress || o->interval_s > 0, sigfd, &load);
	if (r == -EINTR) {
		tp_log(TP_LOG_NOTICE, "interrupted",
		       "stopped while connecting the clients: no request was sent");
		goto out;
	}
	if (r < 0) {
		char server[sizeof(o->host) + 16]; /* "[host]:port" */
		tp_log_host_port(server, sizeof(server), o->host, (unsigned)strtoul(o->port, NULL, 10));
		if (r != -EHOSTUNREACH) /* a host that does not resolve was named already */
			tp_log(TP_LOG_ERROR, "connect", "cannot start the load on %s: %s", server,
			       strerror(-r));
		goto out;
	}
	log_start(o, seed);
	r = tp_client_load_start(load);
	if (r == 0 && live_start(lv, o) < 0)
		r = -ENOMEM;
	if (r < 0) {
		tp_log(TP_LOG_ERROR, "start", "cannot start the run: %s", strerror(-r));
		goto out;
	}
	rep.interrupted = wait_run(load, sigfd, lv);
	rep.elapsed_s = tp_client_load_result(load, res->stats);
	live_end(lv, load);
	for (unsigned g = 0; g < o->ngroups; g++)
		tp_client_stats_merge(&res->stats[o->ngroups], &res->stats[g]);
	status = report(o, &rep, lv->rows);
out:
	tp_client_load_free(load);
	return status;
}

/* --timeline: the file the rows go to, opened before the run so that a bad path fails at once. */
static int open_rows(const struct tp_client_opts *o, FILE **ret)
{
	*ret = NULL;
	if (!o->timeline)
		return 0;
	*ret = fopen(o->timeline, "we");
	if (*ret)
		return 0;
	tp_log(TP_LOG_ERROR, "timeline", "cannot open %s: %s", o->timeline, strerror(errno));
	return -errno;
}

int main(int argc, char **argv)
{
	static struct tp_client_opts opts; /* large (every group's sources): not on the stack */
	struct results res = {0};
	struct live lv = {0};
	bool oom = false;
	char err[512];
	int sigfd, r, status = TP_CLIENT_EXIT_FAILED;

	tp_client_opts_defaults(&opts);
	r = tp_client_opts_parse(&opts, argc, argv, err, sizeof(err));
	if (r == 1)
		return TP_CLIENT_EXIT_OK;
	if (r < 0) {
		fprintf(stderr, "tpclient: %s\n", err);
		return TP_CLIENT_EXIT_USAGE;
	}
	tp_log_init("tpclient", opts.log_level);
	if (open_rows(&opts, &lv.rows) < 0)
		return TP_CLIENT_EXIT_FAILED;

	sigfd = signal_fd();
	for (unsigned g = 0; g <= opts.ngroups; g++)
		oom |= tp_client_stats_init(&res.stats[g], (const bool[TP_OP_COUNT]){true, true}, true) < 0;
	lv.progress = !opts.quiet && isatty(STDERR_FILENO);
	if (sigfd < 0 || oom)
		tp_log(TP_LOG_ERROR, "setup", "cannot set up: %s",
		       sigfd < 0 ? strerror(errno) : "out of memory");
	else
		status = run(&opts, opts.seed_given ? opts.seed : random_seed(), sigfd, &lv, &res);

	for (unsigned g = 0; g <= opts.ngroups; g++)
		tp_client_stats_release(&res.stats[g]);
	tp_client_timeline_free(lv.timeline);
	tp_hist_free(lv.latency);
	if (lv.rows && fclose(lv.rows) != 0) {
		tp_log(TP_LOG_ERROR, "timeline", "cannot write %s: %s", opts.timeline, strerror(errno));
		status = TP_CLIENT_EXIT_FAILED;
	}
	if (sigfd >= 0)
		close(sigfd);
	return status;
}

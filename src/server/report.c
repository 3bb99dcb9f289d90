/* SPDX-License-Identifier: MIT */
/*
 * report: the exposition's metric families and the stats line.
 */
#include "report.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "log.h"
#include "memtrim.h"

#ifndef TP_VERSION
#define TP_VERSION "0.0.0"
#endif

static const char *label1(char *buf, size_t len, const char *k, const char *v)
{
	return tp_expo_labels(buf, len, 1, &k, &v);
}

static void requests(struct tp_expo *e, const struct tp_metrics_slot *m)
{
	char l[128];

	tp_expo_family(e, "tpserver_requests_total", "counter",
	               "Requests answered (reply written), by op and outcome.");
	for (size_t op = 0; op < TP_METRICS_OPS; op++) {
		for (size_t res = 0; res < TP_METRICS_RESULTS; res++) {
			/* The outcomes a dashboard rates are always there, the rest once they happen. */
			bool always =
			        op != TP_METRICS_OP_NONE && (res == TP_PROTO_OK || res == TP_PROTO_BUSY);
			if (!always && m->requests[op][res] == 0)
				continue;
			const char *k[] = {"op", "result"};
			const char *v[] = {tp_metrics_op_name(op), tp_metrics_result_name(res)};
			tp_expo_u64(e, "tpserver_requests_total", tp_expo_labels(l, sizeof(l), 2, k, v),
			            m->requests[op][res]);
		}
	}
}

/* A histogram family of n series; with a label key, series i has the value names(i). */
static void hist_family(struct tp_expo *e, const char *name, const char *help, const char *key,
                        const char *(*names)(size_t), const struct tp_metrics_hist *h, size_t n)
{
	char l[64];

	tp_expo_family(e, name, "histogram", help);
	for (size_t i = 0; i < n; i++)
		tp_expo_hist(e, name, key ? label1(l, sizeof(l), key, names(i)) : "", &h[i]);
}

static void histograms(struct tp_expo *e, const struct tp_metrics_slot *m)
{
	hist_family(e, "tpserver_request_admission_wait_seconds",
	            "Time a request waited for queue space (about 0 when admitted at once), by how the wait "
	            "ended.",
	            "result", tp_metrics_admission_name, m->admission, TP_ADMIT_COUNT);
	hist_family(e, "tpserver_request_queue_wait_seconds",
	            "Time from admission to the queue until a worker took the request.", NULL, NULL,
	            &m->queue_wait, 1);
	hist_family(e, "tpserver_request_service_seconds", "Time a worker spent on the request, by op.", "op",
	            tp_metrics_op_name, m->service, TP_OP_COUNT);
	hist_family(e, "tpserver_request_duration_seconds",
	            "Time from the loop turn that read the request's line to the one that wrote its reply, "
	            "by op.",
	            "op", tp_metrics_op_name, m->duration, TP_METRICS_OPS);
}

static void gauge(struct tp_expo *e, const char *name, const char *help, uint64_t v)
{
	tp_expo_family(e, name, "gauge", help);
	tp_expo_u64(e, name, "", v);
}

static void counter(struct tp_expo *e, const char *name, const char *help, uint64_t v)
{
	tp_expo_family(e, name, "counter", help);
	tp_expo_u64(e, name, "", v);
}

/* What the agent check answers (its weight, and why it says drain): a host left drained shows. */
static void agent_state(struct tp_expo *e, const struct tp_report *r)
{
	const struct tp_leave *lv = r->leave;
	bool stopping = r->shutting_down && atomic_load(r->shutting_down);

	gauge(e, "tpserver_agent_weight",
	      "The weight in percent the agent check answers, from the smoothed load (with or without an "
	      "agent).",
	      tp_agent_weight(&lv->load));
	tp_expo_family(e, "tpserver_draining", "gauge",
	               "1 while the agent check answers drain, by reason: operator (SIGUSR2), leaving "
	               "(SIGTERM with shutdown.drain_s), stopping (the shutdown).");
	tp_expo_u64(e, "tpserver_draining", "reason=\"operator\"", lv->drained);
	tp_expo_u64(e, "tpserver_draining", "reason=\"leaving\"", lv->leaving);
	tp_expo_u64(e, "tpserver_draining", "reason=\"stopping\"", stopping);
}

static void server_state(struct tp_expo *e, const struct tp_report *r, const struct tp_metrics_slot *m)
{
	struct tp_health_stats st;
	struct tp_metrics_events ev;
	uint64_t turned[TP_PEER_REFUSAL_COUNT];
	char l[64];

	tp_health_stats(r->health, &st);
	tp_metrics_events(r->metrics, &ev);
	gauge(e, "tpserver_queue_depth", "Requests admitted to the queue, not yet taken by a worker.",
	      st.queue_depth);
	gauge(e, "tpserver_queue_capacity", "The queue's capacity (pool.queue_size).", st.queue_capacity);
	gauge(e, "tpserver_queue_waiters", "Requests waiting for queue space.", st.queue_waiting);
	gauge(e, "tpserver_queue_flows", "Connections with requests in the queue (fair modes).", st.flows);
	gauge(e, "tpserver_queue_largest_address", "Queued requests of the client address holding the most.",
	      st.largest);
	gauge(e, "tpserver_workers",
	      "Worker threads (pool.workers plus pool.cheap_workers, and after a shrink those finishing a "
	      "request).",
	      st.workers);
	gauge(e, "tpserver_workers_busy", "Workers running a request now.", st.workers_busy);
	if (r->leave)
		agent_state(e, r);
	gauge(e, "tpserver_connections", "Client connections open now.", st.connections);
	counter(e, "tpserver_connections_accepted_total", "Client connections accepted and served.",
	        m->accepted);
	counter(e, "tpserver_connections_adopted_total",
	        "Client connections taken over from the previous instance (shutdown.keep_connections).",
	        m->adopted);
	tp_expo_family(e, "tpserver_connections_refused_total", "counter",
	               "Client connections closed at accept or before their first request, by reason.");
	for (size_t i = 0; i < TP_REFUSE_COUNT; i++)
		tp_expo_u64(e, "tpserver_connections_refused_total",
		            label1(l, sizeof(l), "reason", tp_metrics_refusal_name(i)), ev.refused[i]);
	tp_health_turned_away(r->health, turned);
	for (int i = 0; i < TP_PEER_REFUSAL_COUNT; i++)
		tp_expo_u64(e, "tpserver_connections_refused_total",
		            label1(l, sizeof(l), "reason", tp_peer_refusal_label((enum tp_peer_refusal)i)),
		            turned[i]);
	counter(e, "tpserver_received_bytes_total", "Bytes read from clients.", m->bytes_in);
	counter(e, "tpserver_sent_bytes_total", "Bytes written to clients.", m->bytes_out);
	tp_expo_family(e, "tpserver_reloads_total", "counter", "Reloads (SIGHUP), by result.");
	tp_expo_u64(e, "tpserver_reloads_total", "result=\"ok\"", ev.reloads_ok);
	tp_expo_u64(e, "tpserver_reloads_total", "result=\"failed\"", ev.reloads_failed);
	counter(e, "tpserver_watchdog_unhealthy_episodes_total",
	        "Times the server turned unhealthy and stopped pinging the systemd watchdog.",
	        ev.unhealthy_episodes);
	tp_expo_family(e, "tpserver_build_info", "gauge", "Always 1; the version as a label.");
	tp_expo_u64(e, "tpserver_build_info", label1(l, sizeof(l), "version", TP_VERSION), 1);
}

/* Entries of /proc/self/fd, less the one reading it. */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	// cppcheck-suppress readdirCalled ; its own DIR, read on one thread: readdir_r is deprecated
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the directory's own fd */
}

static void process(struct tp_expo *e, const struct tp_report *r)
{
	struct rusage ru;
	struct rlimit rl;
	size_t vsz, rss;
	int fds = open_fds(); /* before statm's open(), whose fd is not the server's */
	bool statm = tp_memtrim_statm(&vsz, &rss);

	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		             (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
		tp_expo_family(e, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
		tp_expo_double(e, "process_cpu_seconds_total", "", cpu);
	}
	if (statm) {
		gauge(e, "process_resident_memory_bytes", "Resident memory size.", (uint64_t)rss);
		gauge(e, "process_virtual_memory_bytes", "Virtual memory size.", (uint64_t)vsz);
	}
	if (fds >= 0)
		gauge(e, "process_open_fds", "Open file descriptors.", (uint64_t)fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		gauge(e, "process_max_fds", "Limit of open file descriptors.", (uint64_t)rl.rlim_cur);
	tp_expo_family(e, "process_start_time_seconds", "gauge",
	               "Start time of the process since the Unix epoch.");
	tp_expo_double(e, "process_start_time_seconds", "", r->start_time_s);
}

void tp_report_init(struct tp_report *r, const struct tp_health *h)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	r->health = h;
	r->start_time_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int tp_report_render(void *ctx, struct tp_expo *e)
{
	struct tp_report *r = ctx;
	struct tp_metrics_slot m;

	tp_metrics_sum(r->metrics, &m);
	requests(e, &m);
	histograms(e, &m);
	server_state(e, r, &m);
	process(e, r);
	return 0;
}

static uint64_t sum_results(const struct tp_metrics_slot *m, size_t res)
{
	uint64_t n = 0;
	for (size_t op = 0; op < TP_METRICS_OPS; op++)
		n += m->requests[op][res];
	return n;
}

static uint64_t sum_all(const struct tp_metrics_slot *m)
{
	uint64_t n = 0;
	for (size_t res = 0; res < TP_METRICS_RESULTS; res++)
		n += sum_results(m, res);
	return n;
}

/* The upper bound (ns) of the bucket holding the p-th quantile of now - before; 0 when empty. */
static uint64_t quantile_bound(const struct tp_metrics_hist *now, const struct tp_metrics_hist *before,
                               double p)
{
	uint64_t d[TP_METRICS_HIST_BUCKETS + 1], total = 0, cum = 0;

	for (size_t i = 0; i <= TP_METRICS_HIST_BUCKETS; i++)
		total += d[i] = now->counts[i] - before->counts[i];
	for (size_t i = 0; i <= TP_METRICS_HIST_BUCKETS && total; i++) {
		cum += d[i];
		if ((double)cum >= p * (double)total)
			return i < TP_METRICS_HIST_BUCKETS ? tp_metrics_hist_bounds_ns[i] : UINT64_MAX;
	}
	return 0;
}

void tp_report_tick(struct tp_report *r, uint64_t now_ns, int interval_s)
{
	struct tp_metrics_slot m;
	struct tp_health_stats st;
	char f_req[24], f_ok[24], f_busy[24], f_err[24], f_conn[24], f_depth[24], f_wait[24], f_busyw[24],
	        f_p99[24];

	if (interval_s <= 0) {
		r->off = true;
		return;
	}
	if (r->off) {
		/* Turned on by a reload: the first line covers its interval only, from this tick. */
		r->off = false;
		r->last_log_ns = now_ns;
		tp_metrics_sum(r->metrics, &r->logged);
		return;
	}
	if (r->last_log_ns == 0) {
		/* The first line covers the first interval; the counters started at 0. */
		r->last_log_ns = now_ns;
		return;
	}
	if (now_ns - r->last_log_ns < (uint64_t)interval_s * 1000000000ull)
		return;
	tp_metrics_sum(r->metrics, &m);
	tp_health_stats(r->health, &st);
	double secs = (double)(now_ns - r->last_log_ns) / 1e9;
	uint64_t req = sum_all(&m) - sum_all(&r->logged);
	uint64_t ok = sum_results(&m, TP_PROTO_OK) - sum_results(&r->logged, TP_PROTO_OK);
	/* Both refusals read ERR server busy: for lack of space and past pool.max_wait_ms. */
	uint64_t busy = sum_results(&m, TP_PROTO_BUSY) - sum_results(&r->logged, TP_PROTO_BUSY) +
	                sum_results(&m, TP_METRICS_RESULT_BUSY_MAX_WAIT) -
	                sum_results(&r->logged, TP_METRICS_RESULT_BUSY_MAX_WAIT);
	uint64_t p99 = quantile_bound(&m.queue_wait, &r->logged.queue_wait, 0.99);

	snprintf(f_req, sizeof(f_req), "%" PRIu64, req);
	snprintf(f_ok, sizeof(f_ok), "%" PRIu64, ok);
	snprintf(f_busy, sizeof(f_busy), "%" PRIu64, busy);
	snprintf(f_err, sizeof(f_err), "%" PRIu64, req - ok - busy);
	snprintf(f_conn, sizeof(f_conn), "%" PRIu64, st.connections);
	snprintf(f_depth, sizeof(f_depth), "%zu", st.queue_depth);
	snprintf(f_wait, sizeof(f_wait), "%zu", st.queue_waiting);
	snprintf(f_busyw, sizeof(f_busyw), "%zu", st.workers_busy);
	if (p99 == UINT64_MAX)
		snprintf(f_p99, sizeof(f_p99), "+Inf");
	else
		tp_expo_seconds(f_p99, sizeof(f_p99), p99);
	struct tp_log_field f[] = {
	        {"TP_REQUESTS", f_req},
	        {"TP_OK", f_ok},
	        {"TP_BUSY", f_busy},
	        {"TP_ERRORS", f_err},
	        {"TP_CONNECTIONS", f_conn},
	        {"TP_QUEUE_DEPTH", f_depth},
	        {"TP_QUEUE_WAITERS", f_wait},
	        {"TP_WORKERS_BUSY", f_busyw},
	        {"TP_QUEUE_WAIT_P99_S", f_p99},
	};
	tp_logf(TP_LOG_INFO, "stats", f, sizeof(f) / sizeof(f[0]),
	        "stats: %" PRIu64 " requests in %.0f s (%.1f/s): %" PRIu64 " ok, %" PRIu64 " busy, %" PRIu64
	        " other errors; queue %zu/%zu (+%zu waiting), %zu/%zu workers busy, %" PRIu64
	        " connections; queue wait p99 <= %s s",
	        req, secs, secs > 0 ? (double)req / secs : 0.0, ok, busy, req - ok - busy, st.queue_depth,
	        st.queue_capacity, st.queue_waiting, st.workers_busy, st.workers, st.connections, f_p99);
	r->last_log_ns = now_ns;
	r->logged = m;
}

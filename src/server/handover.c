/* SPDX-License-Identifier: MIT */
/*
 * handover: the systemd side of keeping connections across a restart.
 *
 * Why it is shaped this way (measured on systemd 252, docs/DESIGN.md):
 * - every stored fd's name travels in the one LISTEN_FDNAMES string, at
 *   most 128 KiB, so names are short ("tpc07") and shared by all the
 *   connections of a generation; the records are keyed by the socket's
 *   dev and inode, not by name;
 * - systemd compares each fd it is given with every one already stored
 *   (same_fd() in service_add_fd_store()): storing N connections one by one
 *   costs PID 1 N^2/2 comparisons, a minute for 10 000 on systemd 252, with
 *   PID 1 answering nobody meanwhile.  So the connections travel in flight
 *   instead: sent (SCM_RIGHTS, fdpass.h, fdstore.h) into one end of a socket pair,
 *   whose other end is the one fd stored (FDPOLL=0: its peer is already
 *   closed, and systemd would drop a watched one at once), and the next
 *   instance receives them from it (what the pair cannot take is stored one
 *   by one, as a warning says);
 * - one message carries at most 253 fds (SCM_MAX_FD): batches;
 * - a stored fd stays in the store, open, until FDSTOREREMOVE=1 names it,
 *   even after the new process closed its copy: the new process removes
 *   every name it adopted at once, so its own closes reach the client;
 * - the process cannot tell a stop from a restart at SIGTERM: it always
 *   stores, and on stop systemd closes the store (the client sees EOF);
 * - the records go last: a crash half-way leaves connections without
 *   records, which the next instance closes, never records without fds.
 */
#include "handover.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdpass.h"
#include "fdstore.h"
#include "log.h"
#include "sd.h"

#define CONN_PREFIX "tpc"
#define STATE_PREFIX "tps"
#define RESERVE_FDS 6 /* the store's own: memfd, socket pair, notify socket, barrier pipe */

struct kept {
	int fd;
	struct tp_handover_conn rec; /* rec.input is input */
	char *input;                 /* a copy of the carried input, or NULL */
};

struct passed {
	int fd;
	char name[16];
};

struct tp_handover {
	pthread_mutex_t lock;
	size_t cap; /* how many tp_handover_take() accepts (0 before SIGTERM) */
	struct kept *kept;
	size_t nkept, kept_alloc, refused;
	struct passed *passed; /* fds from the previous instance, until adopted */
	size_t npassed;
	uint32_t gen;             /* this instance's generation */
	int reserve[RESERVE_FDS]; /* held from the start, closed when storing: a full fd table must not lose
	                             it all */
};

static int take_passed(struct tp_handover *h);

/* Close the fds held for the store's own use (once: they are -1 after). */
static void release_reserve(struct tp_handover *h)
{
	for (size_t i = 0; i < RESERVE_FDS; i++) {
		if (h->reserve[i] >= 0)
			close(h->reserve[i]);
		h->reserve[i] = -1;
	}
}

int tp_handover_open(struct tp_handover **ret, char *err, size_t errlen)
{
	struct tp_handover *h = calloc(1, sizeof(*h));
	int r = h ? 0 : -ENOMEM;

	if (h) {
		pthread_mutex_init(&h->lock, NULL);
		for (size_t i = 0; i < RESERVE_FDS; i++)
			h->reserve[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		r = take_passed(h);
	}
	if (r < 0)
		snprintf(err, errlen, "the connections handed over by systemd: %s", strerror(-r));
	*ret = h;
	return r;
}

void tp_handover_free(struct tp_handover *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->nkept; i++) {
		close(h->kept[i].fd);
		free(h->kept[i].input);
	}
	for (size_t i = 0; i < h->npassed; i++)
		if (h->passed[i].fd >= 0)
			close(h->passed[i].fd);
	release_reserve(h);
	free(h->kept);
	free(h->passed);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* Keep the fds systemd passed under the hand-over's names. */
static int take_passed(struct tp_handover *h)
{
	char **names = NULL;
	int n = tp_sd_listen_fds_with_names(&names), r = n < 0 ? n : 0;

	for (int i = 0; i < n && names && r == 0; i++) {
		if (!tp_sd_stored_name(names[i]))
			continue;
		if (!h->passed && !(h->passed = calloc((size_t)(n - i), sizeof(*h->passed))))
			r = -ENOMEM;
		else
			h->passed[h->npassed++] = (struct passed){.fd = tp_sd_listen_fds_start() + i};
		if (r == 0)
			snprintf(h->passed[h->npassed - 1].name, sizeof(h->passed[0].name), "%s", names[i]);
	}
	tp_sd_names_free(names);
	return r;
}

/* Read a memfd whole. Returns a malloc'd buffer and its length, or NULL. */
static char *slurp(int fd, size_t *ret_len)
{
	struct stat st;
	char *buf;
	size_t off = 0;

	if (fstat(fd, &st) < 0 || st.st_size <= 0 || (uint64_t)st.st_size > ((uint64_t)1 << 34))
		return NULL;
	buf = malloc((size_t)st.st_size);
	while (buf && off < (size_t)st.st_size) {
		ssize_t r = pread(fd, buf + off, (size_t)st.st_size - off, (off_t)off);
		if (r <= 0) {
			free(buf);
			return NULL;
		}
		off += (size_t)r;
	}
	*ret_len = off;
	return buf;
}

static int by_key(const void *a, const void *b)
{
	const struct tp_handover_conn *x = a, *y = b;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->dev < y->dev ? -1 : x->dev > y->dev;
}

/* The records of one generation, read from its state memfd. */
struct generation {
	const char *suffix; /* "07" */
	char *buf;
	struct tp_handover_conn *recs;
	size_t n, adopted, closed;
	size_t matched;      /* records that found their connection */
	bool truncated;      /* the kernel closed some it could not give us (RLIMIT_NOFILE) */
	int recv_err;        /* a carrier's read that failed, or 0 */
	const char *problem; /* why its connections are closed, or NULL */
};

static void read_generation(struct generation *g, int fd, const char *name)
{
	size_t len = 0;
	uint32_t gen = 0;
	int r;

	g->buf = slurp(fd, &len);
	r = g->buf ? tp_handover_state_read(g->buf, len, &gen, &g->recs, &g->n) : -EBADMSG;
	if (r == -EPROTONOSUPPORT)
		g->problem = "its state is of another version";
	else if (r < 0)
		g->problem = "its state is damaged";
	else
		qsort(g->recs, g->n, sizeof(*g->recs), by_key);
	if (r < 0)
		tp_log(TP_LOG_WARNING, "handover", "handed-over state %s: %s: its connections are closed",
		       name, g->problem);
}

/* One handed-over connection: give it to a loop, or close it. */
static void adopt_one(struct generation *g, int fd, struct tp_loop *loop)
{
	struct stat st;
	struct tp_handover_conn key = {0}, *rec = NULL;

	if (!g->problem && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
		key.dev = (uint64_t)st.st_dev;
		key.ino = (uint64_t)st.st_ino;
		rec = bsearch(&key, g->recs, g->n, sizeof(*g->recs), by_key);
	}
	g->matched += rec != NULL;
	if (rec && tp_loop_adopt(loop, fd, rec) > 0) {
		g->adopted++;
		return;
	}
	if (!rec) /* else the loop refused it (a limit lowered across the restart) or could not set it up */
		close(fd);
	g->closed++;
}

/* Is fd a carrier (a unix socket the connections came in), not a connection? */
static bool is_carrier(int fd)
{
	int domain = 0;
	socklen_t len = sizeof(domain);

	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX;
}

/* Every connection in flight in carrier, each given to a loop or closed; then the carrier closed. */
static void adopt_carried(struct generation *g, int carrier, struct tp_loop *const *loops, size_t nloops,
                          size_t *next_loop)
{
	int fds[TP_FDPASS_BATCH], n;

	while ((n = tp_fdpass_recv(carrier, fds, &g->truncated)) >= 0)
		for (int i = 0; i < n; i++)
			adopt_one(g, fds[i], loops[(*next_loop)++ % nloops]);
	if (n != -ENODATA)
		g->recv_err = -n;
	close(carrier);
}

static void adopt_generation(struct tp_handover *h, const char *suffix, struct tp_loop *const *loops,
                             size_t nloops, size_t *next_loop)
{
	struct generation g = {.suffix = suffix, .problem = "no state was stored with it"};
	char name[16];

	snprintf(name, sizeof(name), STATE_PREFIX "%s", suffix);
	for (size_t i = 0; i < h->npassed; i++) {
		if (h->passed[i].fd >= 0 && strcmp(h->passed[i].name, name) == 0) {
			g.problem = NULL;
			read_generation(&g, h->passed[i].fd, name);
			close(h->passed[i].fd);
			h->passed[i].fd = -1;
			break;
		}
	}
	tp_fdstore_remove(name);
	snprintf(name, sizeof(name), CONN_PREFIX "%s", suffix);
	for (size_t i = 0; i < h->npassed; i++) {
		if (h->passed[i].fd < 0 || strcmp(h->passed[i].name, name) != 0)
			continue;
		if (is_carrier(h->passed[i].fd))
			adopt_carried(&g, h->passed[i].fd, loops, nloops, next_loop);
		else
			adopt_one(&g, h->passed[i].fd, loops[(*next_loop)++ % nloops]);
		h->passed[i].fd = -1;
	}
	tp_fdstore_remove(name);
	if (g.closed)
		tp_log(TP_LOG_WARNING, "handover", "%zu handed-over connections closed: %s", g.closed,
		       g.problem ? g.problem : "no record, gone, or over max_connections");
	if (!g.problem && g.matched < g.n)
		tp_log(TP_LOG_WARNING, "handover", "%zu recorded connections did not arrive: %s",
		       g.n - g.matched,
		       g.truncated  ? "out of file descriptors (RLIMIT_NOFILE), the kernel closed them"
		       : g.recv_err ? strerror(g.recv_err)
		                    : "not in systemd's fd store (not stored, or dropped)");
	tp_log(TP_LOG_INFO, "handover", "adopted %zu connection%s from the previous instance (generation %s)",
	       g.adopted, tp_log_plural(g.adopted), suffix);
	h->gen = (uint32_t)strtoul(suffix, NULL, 10) + 1;
	free(g.recs);
	free(g.buf);
}

void tp_handover_adopt(struct tp_handover *h, struct tp_loop *const *loops, size_t nloops)
{
	size_t next_loop = 0;

	/* A generation is named by any of its fds; take each once. */
	for (size_t i = 0; i < h->npassed; i++) {
		struct passed *p = &h->passed[i];
		if (p->fd < 0)
			continue; /* taken with its generation */
		if (strncmp(p->name, CONN_PREFIX, 3) == 0 || strncmp(p->name, STATE_PREFIX, 3) == 0) {
			adopt_generation(h, p->name + 3, loops, nloops, &next_loop);
			continue;
		}
		/* Another version's (a downgrade): of no use here, and it would stay in the store. */
		tp_log(TP_LOG_WARNING, "handover",
		       "%s in the fd store is of no kind this version knows: closed", p->name);
		close(p->fd);
		p->fd = -1;
		tp_fdstore_remove(p->name);
	}
	free(h->passed);
	h->passed = NULL;
	h->npassed = 0;
}

bool tp_handover_begin(struct tp_handover *h, const struct tp_config *cfg, int notified)
{
	/* Out of fds or memory here is no sign of an absent systemd: the store has its reserve. */
	bool short_of =
	        notified == -EMFILE || notified == -ENFILE || notified == -ENOMEM || notified == -ENOBUFS;
	bool keep = cfg->keep_connections && (notified > 0 || short_of);

	if (cfg->keep_connections && notified < 0 && !short_of)
		tp_log(TP_LOG_WARNING, "handover",
		       "systemd's notify socket cannot be reached (%s): connections are not kept",
		       strerror(-notified));

	pthread_mutex_lock(&h->lock);
	h->cap = keep ? (size_t)cfg->keep_connections_max : 0;
	pthread_mutex_unlock(&h->lock);
	return keep;
}

bool tp_handover_take(void *ctx, int fd, const struct tp_handover_conn *rec)
{
	struct tp_handover *h = ctx;
	char *input = NULL;
	bool taken = false;

	pthread_mutex_lock(&h->lock);
	if (h->nkept == h->kept_alloc && h->nkept < h->cap) {
		size_t a = h->kept_alloc ? 2 * h->kept_alloc : 256;
		struct kept *k = realloc(h->kept, a * sizeof(*k));
		if (k) {
			h->kept = k;
			h->kept_alloc = a;
		}
	}
	if (h->nkept < h->cap && h->nkept < h->kept_alloc &&
	    (rec->input_len == 0 || (input = malloc(rec->input_len)))) {
		if (rec->input_len)
			memcpy(input, rec->input, rec->input_len);
		h->kept[h->nkept] = (struct kept){.fd = fd, .rec = *rec, .input = input};
		h->kept[h->nkept++].rec.input = input;
		taken = true;
	} else {
		h->refused++;
	}
	pthread_mutex_unlock(&h->lock);
	return taken;
}

/* The records of everything kept, in a sealed memfd. Returns it or -errno. */
static int state_memfd(struct tp_handover *h, size_t *ret_len)
{
	struct tp_handover_conn *recs = calloc(h->nkept ? h->nkept : 1, sizeof(*recs));
	size_t len = 0;
	char *buf = NULL;
	int fd = -1, r = -ENOMEM;

	for (size_t i = 0; recs && i < h->nkept; i++)
		recs[i] = h->kept[i].rec;
	if (recs)
		len = tp_handover_state_size(recs, h->nkept);
	buf = recs ? malloc(len) : NULL;
	if (!buf || tp_handover_state_write(recs, h->nkept, h->gen, buf, len) != len)
		goto out;
	fd = memfd_create("tpserver-handover", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len) {
		r = fd < 0 ? -errno : -EIO;
		goto out;
	}
	(void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
	r = fd;
	fd = -1;
	*ret_len = len;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(recs);
	return r;
}

void tp_handover_store(struct tp_handover *h)
{
	char cname[16], sname[16];
	int *fds = calloc(h->nkept ? h->nkept : 1, sizeof(int));
	int sent = 0, state = -1, err = 0, r;
	bool stored;
	size_t len = 0, apart = 0;

	release_reserve(h);
	if (h->refused)
		tp_log(TP_LOG_WARNING, "handover",
		       "%zu connection%s closed, not handed over (keep_connections_max %zu)", h->refused,
		       tp_log_plural(h->refused), h->cap);
	if (h->nkept == 0 || !fds)
		goto out;
	snprintf(cname, sizeof(cname), CONN_PREFIX "%02" PRIu32, h->gen % 100);
	snprintf(sname, sizeof(sname), STATE_PREFIX "%02" PRIu32, h->gen % 100);
	for (size_t i = 0; i < h->nkept; i++)
		fds[i] = h->kept[i].fd;
	state = state_memfd(h, &len);
	if (state < 0) {
		tp_log(TP_LOG_ERROR, "handover",
		       "cannot write the hand-over state: %s: closing %zu connection%s", strerror(-state),
		       h->nkept, tp_log_plural(h->nkept));
		goto out;
	}
	sent = tp_fdstore_add_carried(fds, h->nkept, cname, &apart, &err);
	if (apart > 0)
		tp_log(TP_LOG_WARNING, "handover",
		       "%zu of %zu connections stored one by one, not in one socket (%s): systemd's work "
		       "grows with their square",
		       apart, h->nkept, strerror(err));
	stored = sent > 0 && tp_fdstore_add(&state, 1, sname) == 1;
	if (stored && (size_t)sent == h->nkept)
		tp_log(TP_LOG_NOTICE, "handover",
		       "handed %d connection%s to systemd's fd store as %s, state %zu bytes as %s", sent,
		       tp_log_plural((unsigned)sent), cname, len, sname);
	else if (stored)
		tp_log(TP_LOG_WARNING, "handover",
		       "handed %d of %zu connections to systemd's fd store as %s (the rest closed), state as "
		       "%s",
		       sent, h->nkept, cname, sname);
	else
		tp_log(TP_LOG_ERROR, "handover", "storing connections with systemd failed (%s): %zu closed",
		       sent < 0 ? strerror(-sent) : "state not stored", h->nkept);
	if (sent > 0 && !stored) /* useless without their state: closed now, not at the next start */
		tp_fdstore_remove(cname);
	if (sent > 0 && (r = tp_fdstore_barrier()) < 0)
		tp_log(TP_LOG_WARNING, "handover", "systemd did not confirm the fd store: %s",
		       r == -ETIMEDOUT ? "no answer within 5 s" : strerror(-r));
out:
	if (state >= 0)
		close(state);
	free(fds);
	/* Our copies: systemd holds its own now (or they close here, the client sees EOF). */
	for (size_t i = 0; i < h->nkept; i++) {
		close(h->kept[i].fd);
		free(h->kept[i].input);
	}
	h->nkept = 0;
}

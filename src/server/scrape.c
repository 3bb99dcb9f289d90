/* SPDX-License-Identifier: MIT */
/*
 * scrape: a minimal HTTP/1.1 server for GET /metrics on loop 0.
 *
 * Each connection reads into its own fixed buffer until the blank line
 * that ends the headers, answers once and closes: no keep-alive, no body,
 * no chunked input.  The connections are edge-triggered; the listening
 * socket is one of the loop's listen set's others (listener.h), which
 * takes it out of the epoll set for a while when accept4() finds the
 * process out of fds, rather than spin on a socket that stays readable.
 */
#include "scrape.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* The start of both of its epoll sources: the loop hands back only the source. */
struct ssrc {
	struct tp_source src; /* TP_SOURCE_SCRAPE */
	struct tp_scrape *owner;
};

/* A scraper's events, edge-triggered: its request, room for the reply, its end. */
#define SCONN_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

struct sconn {
	struct ssrc src;
	int fd; /* -1: a free slot */
	uint64_t deadline_ns;
	bool replying;
	bool early;     /* answered before the request's end (400, 431): more may come */
	bool lingering; /* the reply is out, the write side shut: reading what is left until EOF */
	size_t rlen;
	struct tp_expo body;
	char head[256];
	size_t hlen, off;                   /* head then body; off bytes of them written */
	char req[TP_SCRAPE_HEADER_MAX + 1]; /* the headers and a NUL */
};

struct tp_scrape {
	struct ssrc src; /* the listening socket */
	int fd;
	int epfd;
	tp_scrape_render_fn render;
	void *ctx;
	struct sconn conns[TP_SCRAPE_MAX_CONNS];
};

struct tp_scrape *tp_scrape_new(int fd, tp_scrape_render_fn render, void *ctx)
{
	struct tp_scrape *s = calloc(1, sizeof(*s));

	if (!s) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	s->src = (struct ssrc){{TP_SOURCE_SCRAPE}, s};
	s->fd = fd;
	s->epfd = -1;
	s->render = render;
	s->ctx = ctx;
	for (size_t i = 0; i < TP_SCRAPE_MAX_CONNS; i++) {
		s->conns[i].src = (struct ssrc){{TP_SOURCE_SCRAPE}, s};
		s->conns[i].fd = -1;
	}
	return s;
}

static void conn_close(struct sconn *c)
{
	if (c->fd < 0)
		return;
	close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	free(c->body.buf);
	c->body = (struct tp_expo){0};
}

void tp_scrape_free(struct tp_scrape *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < TP_SCRAPE_MAX_CONNS; i++)
		conn_close(&s->conns[i]);
	close(s->fd);
	free(s);
}

int tp_scrape_watch(struct tp_scrape *s, struct tp_listen_set *ls)
{
	s->epfd = ls->epfd;
	return tp_listener_watch_other(ls, s->fd, &s->src.src, "metrics");
}

size_t tp_scrape_open(const struct tp_scrape *s)
{
	size_t n = 0;
	for (size_t i = 0; i < TP_SCRAPE_MAX_CONNS; i++)
		n += s->conns[i].fd >= 0;
	return n;
}

static struct sconn *free_slot(struct tp_scrape *s)
{
	for (size_t i = 0; i < TP_SCRAPE_MAX_CONNS; i++)
		if (s->conns[i].fd < 0)
			return &s->conns[i];
	return NULL;
}

/*
 * The table is full: the oldest connection whose client has not sent a
 * whole request gives its place to a new one, so that clients holding
 * connections open without asking cannot keep a scraper out for good.  A
 * reply on its way, or out and waiting for the client's close, keeps its
 * place, and so, where another can go, does one whose request has come
 * but not been read yet.  NULL if none can go.  An event of the closed
 * connection still to come in this turn reaches the new one as a read
 * that finds nothing: harmless.
 */
static struct sconn *evict_idle(struct tp_scrape *s)
{
	struct sconn *oldest = NULL, *oldest_quiet = NULL;

	for (size_t i = 0; i < TP_SCRAPE_MAX_CONNS; i++) {
		struct sconn *c = &s->conns[i];
		char b;
		if (c->replying || c->lingering)
			continue;
		if (!oldest || c->deadline_ns < oldest->deadline_ns)
			oldest = c;
		if (recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN &&
		    (!oldest_quiet || c->deadline_ns < oldest_quiet->deadline_ns))
			oldest_quiet = c;
	}
	if (oldest_quiet)
		oldest = oldest_quiet;
	if (oldest)
		conn_close(oldest);
	return oldest;
}

/* Accept until the backlog is empty.  Returns 0, or the errno of an accept that failed otherwise. */
static int accept_all(struct tp_scrape *s, uint64_t now_ns)
{
	for (;;) {
		// cppcheck-suppress nullPointer ; s is the endpoint that owns the source, never NULL
		int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : errno;
		}
		struct sconn *c = free_slot(s);
		if (!c)
			c = evict_idle(s);
		struct epoll_event ev = {.events = SCONN_EVENTS, .data.ptr = c};
		if (!c || epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd); /* every place replying: a scraper retries at its next interval */
			continue;
		}
		c->fd = fd;
		c->deadline_ns = now_ns + TP_SCRAPE_TIMEOUT_MS * 1000000ull;
		c->replying = false;
		c->early = false;
		c->lingering = false;
		c->rlen = 0;
		c->off = 0;
	}
}

/* The reply: status line and headers in c->head, the body in c->body. */
static void reply(struct sconn *c, int code, const char *reason, const char *extra, bool head_only)
{
	const char *type = code == 200 ? TP_EXPO_CONTENT_TYPE : "text/plain; charset=utf-8";

	if (code != 200) {
		c->body.len = 0;
		tp_expo_printf(&c->body, "%s\n", reason);
	}
	c->hlen = (size_t)snprintf(c->head, sizeof(c->head),
	                           "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
	                           "Connection: close\r\n\r\n",
	                           code, reason, type, c->body.failed ? 0 : c->body.len, extra);
	if (head_only || c->body.failed)
		c->body.len = 0;
	c->replying = true;
	c->off = 0;
}

/* A word of the request: where it starts in the buffer and its length. */
struct word {
	const char *p;
	size_t n;
};

static bool word_is(struct word w, const char *s)
{
	return w.n == strlen(s) && memcmp(w.p, s, w.n) == 0;
}

/*
 * The request line's three words (RFC 9112: method SP request-target SP
 * HTTP-version) into w: exactly two single spaces, no other blank.
 * Returns false when it is malformed.
 */
static bool request_words(const char *line, struct word w[3])
{
	for (size_t i = 0; i < 3; i++) {
		size_t n = strcspn(line, " \t");
		if (n == 0)
			return false;
		w[i] = (struct word){line, n};
		line += n;
		if (i < 2 && *line++ != ' ')
			return false;
	}
	return *line == '\0';
}

/*
 * The path of a request target in origin form ("/metrics?x") or absolute
 * form ("http://host:9101/metrics", RFC 9112 3.2.2), without its query.
 */
static struct word target_path(struct word t)
{
	static const char *const schemes[] = {"http://", "https://"};

	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t len = strlen(schemes[i]);
		if (t.n >= len && strncasecmp(t.p, schemes[i], len) == 0) {
			size_t authority = len;
			while (authority < t.n && t.p[authority] != '/' && t.p[authority] != '?')
				authority++;
			t = (struct word){t.p + authority, t.n - authority};
			break;
		}
	}
	const char *q = memchr(t.p, '?', t.n);
	return (struct word){t.p, q ? (size_t)(q - t.p) : t.n};
}

/* How many header lines of head (after the request line) name Host. */
static int host_fields(const char *head)
{
	int n = 0;

	for (const char *l = strchr(head, '\n'); l; l = strchr(l, '\n'))
		n += strncasecmp(++l, "Host:", 5) == 0;
	return n;
}

/*
 * An HTTP-version ("HTTP/" DIGIT "." DIGIT, RFC 9112 2.3): its major and
 * minor digits in *ret_major and *ret_minor.  Returns false when it is not one.
 */
static bool http_version(struct word v, int *ret_major, int *ret_minor)
{
	if (v.n != 8 || memcmp(v.p, "HTTP/", 5) != 0 || v.p[6] != '.' || v.p[5] < '0' || v.p[5] > '9' ||
	    v.p[7] < '0' || v.p[7] > '9')
		return false;
	*ret_major = v.p[5] - '0';
	*ret_minor = v.p[7] - '0';
	return true;
}

/*
 * Whether the request line (up to its LF, less one CR before it) and the
 * headers make a request this endpoint understands: a bare CR in the line,
 * no HTTP-version, or an HTTP/1.1 request (or a later 1.x, answered as
 * 1.1: RFC 9110 2.5) without exactly one Host field is a 400 (RFC 9112 2.2,
 * 3.2); another major version is a 505.  Returns 0 when it is well formed,
 * else that status.
 */
static int request_status(char *req, struct word w[3])
{
	size_t eol = strcspn(req, "\n");
	int major = 0, minor = 0;

	if (eol > 0 && req[eol - 1] == '\r')
		eol--;
	if (memchr(req, '\r', eol))
		return 400;
	char saved = req[eol];
	req[eol] = '\0';
	bool ok = request_words(req, w);
	req[eol] = saved;
	if (!ok || !http_version(w[2], &major, &minor))
		return 400;
	if (major != 1)
		return 505;
	return minor == 0 || host_fields(req) == 1 ? 0 : 400;
}

/* Answer the request in c->req[0..len), which ends with the blank line. */
static void answer(struct tp_scrape *s, struct sconn *c, size_t len)
{
	struct word w[3];

	c->req[len] = '\0';
	int status = request_status(c->req, w);
	if (status != 0) {
		reply(c, status, status == 505 ? "HTTP Version Not Supported" : "Bad Request", "", false);
		return;
	}
	bool head = word_is(w[0], "HEAD");
	if (!head && !word_is(w[0], "GET")) {
		reply(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", false);
		return;
	}
	if (!word_is(target_path(w[1]), "/metrics")) {
		reply(c, 404, "Not Found", "", head);
		return;
	}
	c->body = (struct tp_expo){.max = TP_SCRAPE_REPLY_MAX};
	if (s->render(s->ctx, &c->body) < 0 || c->body.failed) {
		c->body.failed = false;
		reply(c, 500, "Internal Server Error", "", head);
		return;
	}
	reply(c, 200, "OK", "", head);
}

/*
 * Drop the empty lines before a request (RFC 9112 2.2: a server should
 * ignore them), complete line ends only. Returns how many bytes went.
 */
static size_t skip_empty_lines(struct sconn *c)
{
	size_t skip = 0;

	for (;;) {
		if (c->rlen - skip >= 1 && c->req[skip] == '\n')
			skip += 1;
		else if (c->rlen - skip >= 2 && c->req[skip] == '\r' && c->req[skip + 1] == '\n')
			skip += 2;
		else
			break;
	}
	memmove(c->req, c->req + skip, c->rlen - skip + 1);
	c->rlen -= skip;
	return skip;
}

/* Read until the headers end. Returns false when c was closed. */
static bool read_request(struct tp_scrape *s, struct sconn *c)
{
	while (!c->replying) {
		size_t room = sizeof(c->req) - 1 - c->rlen;
		if (room == 0) {
			reply(c, 431, "Request Header Fields Too Large", "", false);
			c->early = true;
			break;
		}
		ssize_t n = read(c->fd, c->req + c->rlen, room);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			conn_close(c);
			return false;
		}
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n < 0)
			continue;
		const char *chunk = c->req + c->rlen;
		size_t from = c->rlen > 3 ? c->rlen - 3 : 0;
		c->rlen += (size_t)n;
		c->req[c->rlen] = '\0';
		if (memchr(chunk, '\0', (size_t)n)) {
			reply(c, 400, "Bad Request", "", false);
			c->early = true;
			break;
		}
		if (skip_empty_lines(c) > 0)
			from = 0;
		/* Lines end in CRLF or a lone LF (RFC 9112, 2.2): the head ends at the first empty one. */
		static const char *const head_ends[] = {"\r\n\r\n", "\n\n", "\n\r\n"};
		char *end = NULL;
		for (size_t i = 0; i < sizeof(head_ends) / sizeof(head_ends[0]); i++) {
			char *at = strstr(c->req + from, head_ends[i]);
			if (at && (!end || at < end))
				end = at;
		}
		if (end)
			answer(s, c, (size_t)(end - c->req));
	}
	return true;
}

/*
 * The reply is out: close, unless bytes the client sent are still unread
 * (closing then would reset the connection and could destroy the reply
 * before the client reads it).  Then shut the write side and read until
 * the client closes, or the connection's deadline.
 */
static void finish(struct tp_scrape *s, struct sconn *c)
{
	struct epoll_event ev = {.events = SCONN_EVENTS, .data.ptr = c};
	size_t dropped = 0;
	bool eof = tp_listener_discard(s->epfd, c->fd, &ev, &dropped) == TP_LISTENER_DISCARD_END;

	if (eof || (!c->lingering && !c->early && dropped == 0)) {
		conn_close(c);
		return;
	}
	if (!c->lingering) {
		c->lingering = true;
		(void)shutdown(c->fd, SHUT_WR);
	}
}

/* Write what is left of the reply; finish() once it is out. */
static void write_reply(struct tp_scrape *s, struct sconn *c)
{
	while (c->fd >= 0) {
		struct iovec iov[2];
		int n = 0;
		if (c->off < c->hlen)
			iov[n++] = (struct iovec){c->head + c->off, c->hlen - c->off};
		size_t boff = c->off > c->hlen ? c->off - c->hlen : 0;
		if (boff < c->body.len)
			iov[n++] = (struct iovec){c->body.buf + boff, c->body.len - boff};
		if (n == 0) {
			finish(s, c);
			return;
		}
		ssize_t w = writev(c->fd, iov, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return; /* EPOLLOUT brings it back */
		if (w < 0) {
			conn_close(c);
			return;
		}
		c->off += (size_t)w;
	}
}

int tp_scrape_on_event(struct tp_source *src, uint32_t events, uint64_t now_ns)
{
	struct tp_scrape *s = ((struct ssrc *)src)->owner;
	struct sconn *c = (struct sconn *)src;

	if (src == &s->src.src)
		return accept_all(s, now_ns);
	if (c->fd < 0)
		return 0;
	if (c->lingering) {
		finish(s, c);
		return 0;
	}
	if (!c->replying && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !read_request(s, c))
		return 0;
	if (c->replying)
		write_reply(s, c);
	return 0;
}

void tp_scrape_expire(struct tp_scrape *s, uint64_t now_ns)
{
	if (!s)
		return;
	for (size_t i = 0; i < TP_SCRAPE_MAX_CONNS; i++)
		if (s->conns[i].fd >= 0 && now_ns >= s->conns[i].deadline_ns)
			conn_close(&s->conns[i]);
}

int tp_scrape_start(struct tp_listener *ml, tp_scrape_render_fn render, void *ctx, char *name, size_t namelen,
                    struct tp_scrape **ret, char *err, size_t errlen)
{
	if (ml->fd < 0)
		return 0;
	snprintf(name, namelen, "%s", ml->name);
	*ret = tp_scrape_new(ml->fd, render, ctx);
	ml->fd = -1;
	if (!*ret) {
		snprintf(err, errlen, "out of memory creating the metrics endpoint");
		return -ENOMEM;
	}
	return 0;
}

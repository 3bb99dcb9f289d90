/* SPDX-License-Identifier: MIT */
/*
 * framer: line framing with bounded memory.  See framer.h for the contract.
 */
#include "framer.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void tp_framer_init(struct tp_framer *f, size_t max_line)
{
	memset(f, 0, sizeof(*f));
	f->max_line = max_line;
}

void tp_framer_release(struct tp_framer *f)
{
	free(f->buf);
	f->buf = NULL;
	f->len = 0;
	f->cap = 0;
}

void tp_framer_set_max_line(struct tp_framer *f, size_t max_line)
{
	f->max_line = max_line;
}

/* Replace the retained bytes with data[0..len) (which may alias buf). */
static int keep(struct tp_framer *f, const char *data, size_t len)
{
	if (len == 0) {
		tp_framer_release(f);
		return 0;
	}
	/*
	 * As integers: data points into buf or into an unrelated chunk, and
	 * buf may be NULL (no pointer arithmetic on it, no ordering of
	 * pointers to different objects).
	 */
	if (f->buf && (uintptr_t)data - (uintptr_t)f->buf < f->cap) {
		memmove(f->buf, data, len);
	} else {
		if (len > f->cap) {
			/* Whole powers of two up to the need: few reallocs, at most 2x slack. */
			size_t cap = f->cap ? f->cap : 256;
			while (cap < len)
				cap *= 2;
			char *nb = malloc(cap);
			if (!nb)
				return -ENOMEM;
			free(f->buf);
			f->buf = nb;
			f->cap = cap;
		}
		memcpy(f->buf, data, len);
	}
	f->len = len;
	return 0;
}

/* Append to a partial line held in buf. */
static int append(struct tp_framer *f, const char *data, size_t len)
{
	if (f->len + len > f->cap) {
		size_t cap = f->cap ? f->cap : 256;
		while (cap < f->len + len)
			cap *= 2;
		char *nb = realloc(f->buf, cap);
		if (!nb)
			return -ENOMEM;
		f->buf = nb;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, data, len);
	f->len += len;
	return 0;
}

/*
 * Whether a line of len bytes whose last is *last (without its "\n"; a
 * partial one alike, as it can only grow) is over the limit: it may take
 * one byte more for the "\r" of a "\r\n".  last is read only past
 * max_line bytes.  The common case, a line within max_line, costs one
 * compare.
 */
static bool over_limit(const struct tp_framer *f, size_t len, const char *last)
{
	return len > f->max_line && (len > f->max_line + 1 || *last != '\r');
}

/* over_limit() of line[0..len). */
static bool over_long(const struct tp_framer *f, const char *line, size_t len)
{
	return over_limit(f, len, line + len - 1);
}

/*
 * Frame data[0..len) which does not include any retained partial line.
 * On stop, keep the unframed rest; at the end keep the trailing partial line.
 */
static int frame(struct tp_framer *f, const char *data, size_t len, tp_framer_cb cb, void *ctx)
{
	const char *p = data, *end = data + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		int stop;

		if (f->discarding) {
			if (!nl) {
				p = end;
				break;
			}
			f->discarding = false;
			p = nl + 1;
			continue;
		}
		if (!nl)
			break;
		if (over_long(f, p, (size_t)(nl - p)))
			stop = cb(ctx, NULL, 0, true);
		else {
			f->ahead = (size_t)(end - nl - 1);
			stop = cb(ctx, p, (size_t)(nl - p), false);
			f->ahead = 0;
		}
		p = nl + 1;
		if (stop) {
			f->stopped = true;
			return keep(f, p, (size_t)(end - p)) < 0 ? -ENOMEM : 1;
		}
	}

	/* p..end is a partial line (or nothing). */
	size_t rest = (size_t)(end - p);
	if (over_long(f, p, rest)) {
		/* Over-long already: report it now, discard the rest of it. */
		f->discarding = true;
		tp_framer_release(f);
		if (cb(ctx, NULL, 0, true)) {
			f->stopped = true;
			return 1;
		}
		return 0;
	}
	return keep(f, p, rest) < 0 ? -ENOMEM : 0;
}

int tp_framer_feed(struct tp_framer *f, const char *data, size_t len, tp_framer_cb cb, void *ctx)
{
	if (f->len == 0)
		return frame(f, data, len, cb, ctx);

	/*
	 * A partial line is retained: complete it from the new data first, so
	 * only that one line is ever copied; the rest is framed in place.
	 */
	const char *nl = memchr(data, '\n', len);
	size_t head = nl ? (size_t)(nl - data) + 1 : len;

	/*
	 * The retained line plus what came cannot fit: too long.  A whole line
	 * may take max_line + 2 bytes ("\r\n"), a partial one max_line + 1
	 * only when that byte is the "\r" of a "\r\n" to come: the same
	 * limits as frame(), so the events do not depend on how the input was
	 * split.
	 */
	size_t total = f->len + head;
	if (nl ? total > f->max_line + 2 : over_limit(f, total, len ? data + len - 1 : f->buf + f->len - 1)) {
		tp_framer_release(f);
		if (!nl) {
			f->discarding = true;
			return cb(ctx, NULL, 0, true) ? (f->stopped = true, 1) : 0;
		}
		if (cb(ctx, NULL, 0, true)) {
			f->stopped = true;
			return keep(f, data + head, len - head) < 0 ? -ENOMEM : 1;
		}
		return frame(f, data + head, len - head, cb, ctx);
	}
	if (append(f, data, head) < 0)
		return -ENOMEM;
	if (!nl)
		return 0;

	/* buf now holds one whole line ending in "\n". */
	size_t ll = f->len - 1;
	int stop;
	if (over_long(f, f->buf, ll))
		stop = cb(ctx, NULL, 0, true);
	else
		stop = cb(ctx, f->buf, ll, false);
	f->len = 0;
	if (stop) {
		f->stopped = true;
		return keep(f, data + head, len - head) < 0 ? -ENOMEM : 1;
	}
	return frame(f, data + head, len - head, cb, ctx);
}

int tp_framer_preload(struct tp_framer *f, const char *data, size_t len, bool discarding)
{
	if (len && keep(f, data, len) < 0)
		return -ENOMEM;
	f->discarding = discarding;
	f->stopped = true;
	return 0;
}

int tp_framer_resume(struct tp_framer *f, tp_framer_cb cb, void *ctx)
{
	if (!f->stopped)
		return 0;
	f->stopped = false;
	if (f->len == 0)
		return 0;

	/*
	 * Frame the kept bytes from a private copy: frame() keeps its rest in
	 * buf, which must not be the memory it is reading.
	 */
	char *data = f->buf;
	size_t len = f->len;
	f->buf = NULL;
	f->len = 0;
	f->cap = 0;
	int r = frame(f, data, len, cb, ctx);
	free(data);
	return r;
}

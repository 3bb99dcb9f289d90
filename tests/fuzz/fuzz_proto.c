/* SPDX-License-Identifier: MIT */
/*
 * fuzz_proto: a libFuzzer target for the pure half of the request path,
 * the line framer (src/common/framer.c) and the request parser and reply
 * formatters (src/common/proto.c).  Built with clang -fsanitize=fuzzer by
 * tests/stages/30-fuzz.sh, and with replay.c as an ordinary program that
 * runs the corpus in ctest (fuzz.replay).
 *
 * Input: byte 0 picks max_line, byte 1 max_sleep_ms, bytes 2..9 seed the
 * generator that decides the chunk sizes and the consumer's stops; the rest
 * is the byte stream a client would send.
 *
 * Checked, with abort() on any mismatch:
 * - framing the stream in one piece gives the events of a plain model
 *   (split on LF; a line is too long past max_line plus one trailing CR);
 * - framing it in arbitrary chunks, with the consumer stopping after random
 *   lines and resuming (possibly stopping again), gives exactly the same
 *   sequence of lines and too-long events;
 * - the framer never holds more than its documented bound while running;
 * - every line parses to the status a small independent model expects, and
 *   every reply (OK, the errors) is one line: ends in LF, has no other LF,
 *   fits its documented buffer size (formatted into exact-size heap buffers,
 *   so an overflow is an AddressSanitizer report).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framer.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_proto: check failed: %s (%s:%d)\n", #cond, __FILE__, \
			        __LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define HEADER 10

struct event {
	bool too_long;
	size_t off, len; /* the line's bytes in the owning list's text */
};

struct events {
	struct event *ev;
	size_t n, cap;
	char *text;
	size_t tlen, tcap;
};

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	CHECK(q != NULL);
	return q;
}

static void events_add(struct events *e, bool too_long, const char *line, size_t len)
{
	if (e->n == e->cap) {
		e->cap = e->cap ? 2 * e->cap : 16;
		e->ev = xrealloc(e->ev, e->cap * sizeof(*e->ev));
	}
	if (e->tlen + len > e->tcap) {
		while (e->tlen + len > e->tcap)
			e->tcap = e->tcap ? 2 * e->tcap : 256;
		e->text = xrealloc(e->text, e->tcap);
	}
	if (len)
		memcpy(e->text + e->tlen, line, len);
	e->ev[e->n++] = (struct event){too_long, e->tlen, len};
	e->tlen += len;
}

static void events_free(struct events *e)
{
	free(e->ev);
	free(e->text);
	memset(e, 0, sizeof(*e));
}

/* xorshift64*: the split points and stops come from the input's seed bytes. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/*
 * The plain model of framing: split on LF; the unterminated rest is reported
 * once it cannot fit: over max_line + 1 bytes, or max_line + 1 whose last is
 * not the CR of a CRLF to come.
 */
static void model(struct events *e, const char *s, size_t len, size_t max_line)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\n')
			continue;
		size_t ll = i - start;
		size_t lim = max_line + (ll > 0 && s[i - 1] == '\r');
		if (ll > lim)
			events_add(e, true, NULL, 0);
		else
			events_add(e, false, s + start, ll);
		start = i + 1;
	}
	size_t rest = len - start;
	if (rest > max_line + 1 || (rest == max_line + 1 && s[len - 1] != '\r'))
		events_add(e, true, NULL, 0);
}

/* The consumer of the chunked run: checks each event against the reference as it comes. */
struct chunked {
	const struct events *want;
	size_t next;
	uint64_t rng;
	unsigned stop_one_in; /* stop after roughly one event in this many (0: never) */
	size_t max_line;
};

static int on_event(void *ctx, const char *line, size_t len, bool too_long)
{
	struct chunked *c = ctx;

	CHECK(c->next < c->want->n);
	const struct event *w = &c->want->ev[c->next++];
	CHECK(w->too_long == too_long);
	if (too_long) {
		CHECK(line == NULL && len == 0);
	} else {
		CHECK(w->len == len);
		CHECK(len == 0 || memcmp(c->want->text + w->off, line, len) == 0);
		CHECK(len == 0 || memchr(line, '\n', len) == NULL);
	}
	return c->stop_one_in && rnd(&c->rng) % c->stop_one_in == 0;
}

static int collect(void *ctx, const char *line, size_t len, bool too_long)
{
	events_add(ctx, too_long, line, len);
	return 0;
}

/* What the framer may hold while it runs (not stopped): one partial line. */
static void check_bound(const struct tp_framer *f)
{
	size_t cap_bound = 2 * (f->max_line + 2);

	CHECK(!f->stopped);
	CHECK(f->len <= f->max_line + 2);
	CHECK(f->cap <= (cap_bound > 256 ? cap_bound : 256));
	CHECK(f->len == 0 || f->buf != NULL);
}

static void check_reply_line(const char *buf, size_t len, size_t max)
{
	CHECK(len >= 2 && len <= max);
	CHECK(buf[len - 1] == '\n');
	CHECK(memchr(buf, '\n', len - 1) == NULL);
}

/* An independent statement of the grammar in docs/PROTOCOL.md. */
static enum tp_proto_status expected_status(const char *l, size_t len, uint32_t max_ms)
{
	if (len > 0 && l[len - 1] == '\r')
		len--;
	if (len == 0)
		return TP_PROTO_EMPTY; /* "an empty line (or only CR)" */
	const char *sp = memchr(l, ' ', len);
	size_t op_len = sp ? (size_t)(sp - l) : len;
	if (op_len == 0)
		return TP_PROTO_UNKNOWN_OP; /* not empty: an empty OP is no known op */
	char op[6] = {0};
	if (op_len > 5)
		return TP_PROTO_UNKNOWN_OP;
	for (size_t i = 0; i < op_len; i++)
		op[i] = (char)((l[i] >= 'a' && l[i] <= 'z') ? l[i] - 'a' + 'A' : l[i]);
	if (op_len == 4 && memcmp(op, "ECHO", 4) == 0)
		return TP_PROTO_OK;
	if (op_len != 5 || memcmp(op, "SLEEP", 5) != 0)
		return TP_PROTO_UNKNOWN_OP;
	if (!sp)
		return TP_PROTO_INVALID_ARG;
	const char *a = sp + 1;
	size_t alen = len - op_len - 1;
	uint64_t v = 0;
	if (alen == 0)
		return TP_PROTO_INVALID_ARG;
	for (size_t i = 0; i < alen; i++) {
		if (a[i] < '0' || a[i] > '9')
			return TP_PROTO_INVALID_ARG;
		v = v * 10 + (uint64_t)(a[i] - '0');
		if (v > max_ms)
			return TP_PROTO_INVALID_ARG;
	}
	return TP_PROTO_OK;
}

static void check_error_reply(enum tp_proto_status st, const char *op, size_t op_len)
{
	char *buf = malloc(TP_PROTO_MAX_ERR);
	CHECK(buf != NULL);
	size_t n = tp_proto_format_error(st, op, op_len, buf);
	check_reply_line(buf, n, TP_PROTO_MAX_ERR);
	CHECK(memcmp(buf, "ERR ", 4) == 0);
	for (size_t i = 0; i + 1 < n; i++)
		CHECK(buf[i] >= 0x20 && buf[i] < 0x7f);
	if (st != TP_PROTO_UNKNOWN_OP) {
		const char *s = tp_proto_error_line(st);
		CHECK(strlen(s) == n && memcmp(s, buf, n) == 0);
	}
	free(buf);
}

static void check_parse(const char *line, size_t len, uint32_t max_ms)
{
	struct tp_proto_req req;
	enum tp_proto_status st;

	memset(&req, 0, sizeof(req));
	st = tp_proto_parse(line, len, max_ms, &req);
	CHECK(st == expected_status(line, len, max_ms));
	if (st != TP_PROTO_OK) {
		CHECK(st == TP_PROTO_EMPTY || st == TP_PROTO_UNKNOWN_OP || st == TP_PROTO_INVALID_ARG);
		if (st == TP_PROTO_UNKNOWN_OP)
			CHECK(req.op_name == line && req.op_len <= len);
		check_error_reply(st, req.op_name, st == TP_PROTO_UNKNOWN_OP ? req.op_len : 0);
		return;
	}
	CHECK(req.op < TP_OP_COUNT);
	size_t want = tp_proto_reply_len(&req);
	if (req.op == TP_OP_ECHO) {
		/* The text is the line after the first space, CR stripped, byte for byte. */
		CHECK(req.text >= line && req.text + req.text_len <= line + len);
		char *buf = malloc(req.text_len + 4);
		CHECK(buf != NULL);
		size_t n = tp_proto_echo_place(req.text, req.text_len, buf);
		tp_proto_echo_finish(buf, n);
		CHECK(n == want && n == req.text_len + 4);
		check_reply_line(buf, n, req.text_len + 4);
		CHECK(memcmp(buf, "OK ", 3) == 0 && memcmp(buf + 3, req.text, req.text_len) == 0);
		free(buf);
	} else {
		CHECK(req.op == TP_OP_SLEEP && req.sleep_ms <= max_ms);
		char *buf = malloc(16);
		CHECK(buf != NULL);
		size_t n = tp_proto_format_sleep(req.sleep_ms, buf);
		CHECK(n == want);
		check_reply_line(buf, n, 16);
		CHECK(memcmp(buf, "OK ", 3) == 0);
		uint64_t v = 0;
		for (size_t i = 3; i + 1 < n; i++) {
			CHECK(buf[i] >= '0' && buf[i] <= '9');
			v = v * 10 + (uint64_t)(buf[i] - '0');
		}
		CHECK(v == req.sleep_ms);
		free(buf);
	}
}

/* Feed the stream in chunks whose sizes come from the seed; resume after every stop. */
static void run_chunked(const struct events *want, const char *s, size_t len, size_t max_line, uint64_t seed)
{
	static const size_t chunk_max[] = {1, 2, 3, 7, 64, 300, 4096, 16384};
	struct tp_framer f;
	struct chunked c = {.want = want, .rng = seed | 1, .max_line = max_line};
	uint64_t mode = rnd(&c.rng);
	size_t cmax = chunk_max[mode % (sizeof(chunk_max) / sizeof(chunk_max[0]))];
	static const unsigned stops[] = {0, 1, 2, 5, 50};
	c.stop_one_in = stops[(mode >> 8) % (sizeof(stops) / sizeof(stops[0]))];

	tp_framer_init(&f, max_line);
	for (size_t off = 0; off < len;) {
		size_t n = 1 + (size_t)(rnd(&c.rng) % cmax);
		if (n > len - off)
			n = len - off;
		/* The framer must not keep pointers into the chunk: hand it a copy that dies. */
		char *chunk = malloc(n);
		CHECK(chunk != NULL);
		memcpy(chunk, s + off, n);
		int r = tp_framer_feed(&f, chunk, n, on_event, &c);
		memset(chunk, 0xa5, n);
		free(chunk);
		off += n;
		while (r == 1) {
			CHECK(f.stopped);
			r = tp_framer_resume(&f, on_event, &c);
		}
		CHECK(r == 0);
		check_bound(&f);
		/* Resuming a running framer is a no-op. */
		if (rnd(&c.rng) % 8 == 0)
			CHECK(tp_framer_resume(&f, on_event, &c) == 0);
	}
	CHECK(c.next == want->n);
	tp_framer_release(&f);
	CHECK(f.buf == NULL && f.len == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t max_ms_choices[] = {0, 9, 10, 10000, 3600000, UINT32_MAX};
	struct events ref = {0}, mod = {0};
	struct tp_framer f;
	uint64_t seed = 0;

	if (size < HEADER)
		return 0;
	/* Small limits reach the boundaries; 4096 is the default. */
	size_t max_line = data[0] < 240 ? (size_t)data[0] % 80 : 4096;
	uint32_t max_ms = max_ms_choices[data[1] % (sizeof(max_ms_choices) / sizeof(max_ms_choices[0]))];
	for (int i = 0; i < 8; i++)
		seed = seed << 8 | data[2 + i];
	const char *s = (const char *)data + HEADER;
	size_t len = size - HEADER;

	/* In one piece: the model's events. */
	tp_framer_init(&f, max_line);
	CHECK(tp_framer_feed(&f, s, len, collect, &ref) == 0);
	check_bound(&f);
	tp_framer_release(&f);
	model(&mod, s, len, max_line);
	CHECK(ref.n == mod.n);
	for (size_t i = 0; i < ref.n; i++) {
		CHECK(ref.ev[i].too_long == mod.ev[i].too_long && ref.ev[i].len == mod.ev[i].len);
		CHECK(ref.ev[i].len == 0 ||
		      memcmp(ref.text + ref.ev[i].off, mod.text + mod.ev[i].off, ref.ev[i].len) == 0);
	}

	/* In chunks, with stops: the same events. */
	run_chunked(&ref, s, len, max_line, seed);
	run_chunked(&ref, s, len, max_line, ~seed);

	/* Each line as a request, from an exact-size copy (reads past it are reports). */
	for (size_t i = 0; i < ref.n; i++) {
		if (ref.ev[i].too_long) {
			check_error_reply(TP_PROTO_TOO_LONG, NULL, 0);
			continue;
		}
		char *line = malloc(ref.ev[i].len ? ref.ev[i].len : 1);
		CHECK(line != NULL);
		if (ref.ev[i].len)
			memcpy(line, ref.text + ref.ev[i].off, ref.ev[i].len);
		check_parse(line, ref.ev[i].len, max_ms);
		free(line);
	}
	/* The constant replies. */
	for (int st = TP_PROTO_EMPTY; st <= TP_PROTO_SHUTDOWN; st++)
		check_error_reply((enum tp_proto_status)st, (const char *)data, size < 64 ? size : 64);

	events_free(&ref);
	events_free(&mod);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * fuzz_proxy: a libFuzzer target for the PROXY protocol header parser
 * (src/common/proxy.c).  Built with clang -fsanitize=fuzzer by
 * tests/stages/30-fuzz.sh, and with replay.c as an ordinary program that
 * runs the corpus in ctest (fuzz.proxy.replay).
 *
 * Input: the first bytes of a connection.  Checked, with abort() on any
 * mismatch:
 * - the parser never reads past the length it is given, nor the tail walk
 *   past the end of the input (each is copied to an exact-size heap
 *   buffer, so a read past it is an AddressSanitizer report);
 * - incremental: feeding longer and longer prefixes, the answer is "need
 *   more" (0) until it is final, and from then on it never changes (same
 *   code, same header length and addresses); for a v2 header decided on its
 *   first TP_PROXY_MAX bytes, the answer is the one its tail gives once the
 *   rest of the input passes (tp_proxy_tail_feed), the same in pieces of 1
 *   byte and all at once, and the same as the parse of the whole input;
 * - a complete header is no longer than the prefix, or the prefix is at
 *   least TP_PROXY_MAX bytes and its tail the rest, never longer than
 *   TP_PROXY_V2_MAX; it has version 1 or 2 and, unless local, an IPv4 or
 *   IPv6 source;
 * - tp_proxy_detect agrees: "not a signature" is always a rejection.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_proxy: check failed: %s (%s:%d)\n", #cond, __FILE__, \
			        __LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static int parse_exact(const uint8_t *data, size_t len, struct tp_proxy_hdr *h)
{
	uint8_t *copy = malloc(len ? len : 1);
	CHECK(copy != NULL);
	if (len)
		memcpy(copy, data, len);
	int r = tp_proxy_parse(copy, len, h);
	free(copy);
	return r;
}

static int same_hdr(const struct tp_proxy_hdr *a, const struct tp_proxy_hdr *b)
{
	return a->len == b->len && a->version == b->version && a->local == b->local &&
	       memcmp(&a->src, &b->src, sizeof(a->src)) == 0 && memcmp(&a->dst, &b->dst, sizeof(a->dst)) == 0;
}

/* A long header's tail fed data[0..size) in pieces of step bytes: 1, 0 (the input ended) or -EINVAL. */
static int feed(struct tp_proxy_tail t, const uint8_t *data, size_t size, size_t step)
{
	uint8_t *copy = malloc(size ? size : 1);
	int r = 0;

	CHECK(copy != NULL);
	if (size)
		memcpy(copy, data, size);
	for (size_t at = 0; at < size && r == 0; at += step) {
		r = tp_proxy_tail_feed(&t, copy + at, size - at < step ? size - at : step);
		CHECK(r == 0 || r == 1 || r == -EINVAL);
		CHECK(r != 1 || t.left == 0);
	}
	free(copy);
	return r;
}

/* The answer on the whole input when its first k bytes are parsed (and a long header's tail fed the rest). */
static int verdict(const uint8_t *data, size_t size, size_t k, struct tp_proxy_hdr *h)
{
	int r = parse_exact(data, k, h);
	int d = tp_proxy_detect(data, k);

	CHECK(r == 0 || r == -EINVAL || r == -E2BIG || r > 0);
	if (d == 0)
		CHECK(r == -EINVAL);
	if (r <= 0)
		return r;
	CHECK((size_t)r == h->len && h->len <= TP_PROXY_V2_MAX);
	CHECK(h->version == 1 || h->version == 2);
	CHECK(h->local || h->src.ss_family == AF_INET || h->src.ss_family == AF_INET6);
	CHECK(h->local || h->dst.ss_family == h->src.ss_family);
	if (h->tail.left == 0) {
		CHECK(h->len <= k);
		return r;
	}
	CHECK(h->version == 2 && k >= TP_PROXY_MAX && h->len - h->tail.left == k);
	int f = feed(h->tail, data + k, size - k, 1);
	CHECK(feed(h->tail, data + k, size - k, size) == f);
	return f == 1 ? r : f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tp_proxy_hdr first, h;
	int final = 0;
	size_t limit = size < TP_PROXY_MAX + 8 ? size : TP_PROXY_MAX + 8;

	for (size_t k = 0; k <= limit; k++) {
		int r = verdict(data, size, k, &h);
		if (final == 0) {
			if (r != 0) {
				final = r;
				first = h;
			}
			continue;
		}
		CHECK(r == final);
		if (r > 0)
			CHECK(same_hdr(&first, &h));
	}
	if (size > limit) {
		int r = verdict(data, size, size, &h);
		CHECK(final == 0 || r == final);
		if (final > 0)
			CHECK(same_hdr(&first, &h));
	}
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * handover_state: writing and strictly reading the hand-over record (the
 * layout is in handover_state.h).  Every integer is written byte by byte in
 * little-endian order, so the record does not depend on the compiler's
 * struct layout.
 */
#include "handover_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "TPHS"
#define HEADER_BYTES 16
#define RECORD_BYTES 32 /* without the address and the input */
#define SUM_BYTES 8

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static char *put(char *p, uint64_t v, size_t bytes)
{
	for (size_t i = 0; i < bytes; i++)
		*p++ = (char)(v >> (8 * i));
	return p;
}

static uint64_t get(const char *p, size_t bytes)
{
	uint64_t v = 0;
	for (size_t i = 0; i < bytes; i++)
		v |= (uint64_t)(unsigned char)p[i] << (8 * i);
	return v;
}

size_t tp_handover_state_size(const struct tp_handover_conn *c, size_t n)
{
	size_t len = HEADER_BYTES + SUM_BYTES;
	for (size_t i = 0; i < n; i++)
		len += RECORD_BYTES + strnlen(c[i].addr, sizeof(c[i].addr)) + c[i].input_len;
	return len;
}

size_t tp_handover_state_write(const struct tp_handover_conn *c, size_t n, uint32_t gen, char *buf,
                               size_t len)
{
	char *p = buf;

	if (len < tp_handover_state_size(c, n) || n > UINT32_MAX)
		return 0;
	memcpy(p, MAGIC, 4);
	p = put(p + 4, TP_HANDOVER_STATE_VERSION, 2);
	p = put(p, 0, 2);
	p = put(p, gen, 4);
	p = put(p, n, 4);
	for (size_t i = 0; i < n; i++) {
		size_t alen = strnlen(c[i].addr, sizeof(c[i].addr));
		if (alen == sizeof(c[i].addr) || c[i].input_len > TP_HANDOVER_INPUT_MAX)
			return 0;
		p = put(p, c[i].dev, 8);
		p = put(p, c[i].ino, 8);
		p = put(p, c[i].flow, 8);
		p = put(p, c[i].port, 2);
		p = put(p, alen, 1);
		p = put(p, c[i].discarding ? 1 : 0, 1);
		p = put(p, c[i].input_len, 4);
		memcpy(p, c[i].addr, alen);
		p += alen;
		if (c[i].input_len)
			memcpy(p, c[i].input, c[i].input_len);
		p += c[i].input_len;
	}
	p = put(p, fnv1a(buf, (size_t)(p - buf)), 8);
	return (size_t)(p - buf);
}

/* Parse one record at *p (left bytes before the checksum). Returns 0 or -EBADMSG. */
static int read_record(const char **p, size_t *left, struct tp_handover_conn *c)
{
	const char *q = *p;
	size_t alen, ilen;

	if (*left < RECORD_BYTES)
		return -EBADMSG;
	c->dev = get(q, 8);
	c->ino = get(q + 8, 8);
	c->flow = get(q + 16, 8);
	c->port = (uint16_t)get(q + 24, 2);
	alen = (size_t)get(q + 26, 1);
	ilen = (size_t)get(q + 28, 4);
	c->discarding = get(q + 27, 1) == 1;
	if (get(q + 27, 1) > 1 || alen >= sizeof(c->addr) || ilen > TP_HANDOVER_INPUT_MAX ||
	    *left - RECORD_BYTES < alen + ilen)
		return -EBADMSG;
	q += RECORD_BYTES;
	memcpy(c->addr, q, alen);
	c->addr[alen] = '\0';
	if (memchr(c->addr, '\0', alen))
		return -EBADMSG;
	c->input = ilen ? q + alen : NULL;
	c->input_len = (uint32_t)ilen;
	*p = q + alen + ilen;
	*left -= RECORD_BYTES + alen + ilen;
	return 0;
}

int tp_handover_state_read(const char *buf, size_t len, uint32_t *ret_gen, struct tp_handover_conn **ret,
                           size_t *ret_n)
{
	struct tp_handover_conn *c = NULL;
	const char *p = buf + HEADER_BYTES;
	size_t n, left;

	if (len < HEADER_BYTES + SUM_BYTES || memcmp(buf, MAGIC, 4) != 0)
		return -EBADMSG;
	if (get(buf + 4, 2) != TP_HANDOVER_STATE_VERSION)
		return -EPROTONOSUPPORT;
	if (get(buf + len - SUM_BYTES, 8) != fnv1a(buf, len - SUM_BYTES) || get(buf + 6, 2) != 0)
		return -EBADMSG;
	n = (size_t)get(buf + 12, 4);
	left = len - HEADER_BYTES - SUM_BYTES;
	if (n > left / RECORD_BYTES)
		return -EBADMSG;
	c = calloc(n ? n : 1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (read_record(&p, &left, &c[i]) < 0)
			goto fail;
	if (left != 0)
		goto fail;
	*ret_gen = (uint32_t)get(buf + 8, 4);
	*ret = c;
	*ret_n = n;
	return 0;
fail:
	free(c);
	return -EBADMSG;
}

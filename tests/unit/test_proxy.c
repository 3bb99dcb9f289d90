/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proxy.c: v1 TCP4, TCP6 and UNKNOWN; v2 PROXY over
 * IPv4 and IPv6 with TLVs skipped, v2 LOCAL, v2 over UNIX and unspecified
 * families; every split point gives "need more" then the same header;
 * v2 headers longer than TP_PROXY_MAX, up to the format's longest, decided
 * on their first bytes and their TLVs checked as they pass; malformed,
 * truncated and oversize headers; signature detection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "proxy.h"

#define V2SIG "\r\n\r\n\0\r\nQUIT\n"

static int parse(const char *s, size_t n, struct tp_proxy_hdr *h)
{
	return tp_proxy_parse((const uint8_t *)s, n, h);
}

static int parse_str(const char *s, struct tp_proxy_hdr *h)
{
	return parse(s, strlen(s), h);
}

/* Every proper prefix needs more; the whole gives want (and the same header with bytes after it). */
static void check_split(const char *s, size_t n, int want)
{
	struct tp_proxy_hdr h, h2;
	char big[2048];

	for (size_t k = 0; k < n; k++) {
		int r = parse(s, k, &h);
		if (want < 0 && r == want)
			return; /* rejected early: allowed, and final */
		assert_int_equal(r, 0);
	}
	assert_int_equal(parse(s, n, &h), want);
	assert_true(n + 9 <= sizeof(big));
	memcpy(big, s, n);
	memcpy(big + n, "ECHO hi\n", 9);
	assert_int_equal(parse(big, n + 8, &h2), want);
	if (want > 0)
		assert_memory_equal(&h, &h2, sizeof(h));
}

static void addr_is(const struct sockaddr_storage *ss, const char *text, unsigned port)
{
	char buf[64];
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
		assert_non_null(inet_ntop(AF_INET, &s->sin_addr, buf, sizeof(buf)));
		assert_int_equal(ntohs(s->sin_port), port);
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
		assert_int_equal(ss->ss_family, AF_INET6);
		assert_non_null(inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof(buf)));
		assert_int_equal(ntohs(s->sin6_port), port);
	}
	assert_string_equal(buf, text);
}

static void test_v1_tcp4(void **state)
{
	const char *s = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
	struct tp_proxy_hdr h;
	(void)state;
	assert_int_equal(parse_str(s, &h), (int)strlen(s));
	assert_int_equal(h.version, 1);
	assert_false(h.local);
	addr_is(&h.src, "192.168.0.1", 56324);
	addr_is(&h.dst, "192.168.0.11", 443);
	check_split(s, strlen(s), (int)strlen(s));
}

static void test_v1_tcp6(void **state)
{
	const char *s = "PROXY TCP6 2001:db8::1 ::1 0 65535\r\n";
	struct tp_proxy_hdr h;
	(void)state;
	assert_int_equal(parse_str(s, &h), (int)strlen(s));
	addr_is(&h.src, "2001:db8::1", 0);
	addr_is(&h.dst, "::1", 65535);
	check_split(s, strlen(s), (int)strlen(s));
	/* The longest header the spec allows (107 bytes, UNKNOWN with IPv6 addresses) fits. */
	s = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "65535 65535\r\n";
	assert_int_equal(strlen(s), TP_PROXY_V1_MAX);
	assert_int_equal(parse_str(s, &h), TP_PROXY_V1_MAX);
}

static void test_v1_unknown(void **state)
{
	struct tp_proxy_hdr h;
	(void)state;
	assert_int_equal(parse_str("PROXY UNKNOWN\r\n", &h), 15);
	assert_true(h.local);
	assert_int_equal(parse_str("PROXY UNKNOWN ffff:f::1 ::1 1 2\r\n", &h), 33);
	assert_true(h.local);
}

static void test_v1_malformed(void **state)
{
	static const char *bad[] = {
	        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",       /* LF without CR */
	        "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",    /* two spaces */
	        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",       /* a port missing */
	        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",   /* a field too many */
	        "PROXY TCP4 ::1 ::1 1 2\r\n",             /* IPv6 under TCP4 */
	        "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",     /* IPv4 under TCP6 */
	        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",    /* leading zero */
	        "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", /* port out of range */
	        "PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n",   /* bad address */
	        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",     /* not TCP */
	        "PROXY UNKNOWNX\r\n",                     /* not UNKNOWN */
	        "PROXY \r\n",                             /* empty */
	        "PROXY TCP4 1.2.3.4 5.6.7.8 1 \x01\r\n",  /* control byte */
	        "ECHO hi\n",                              /* no signature */
	        "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",     /* case matters */
	};
	struct tp_proxy_hdr h;
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse_str(bad[i], &h);
		if (r != -EINVAL)
			fail_msg("%s: %d", bad[i], r);
	}
}

static void test_v1_truncated_oversize(void **state)
{
	char line[200];
	struct tp_proxy_hdr h;
	(void)state;
	assert_int_equal(parse_str("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", &h), 0);
	assert_int_equal(parse_str("PRO", &h), 0);
	assert_int_equal(parse_str("", &h), 0);
	memset(line, 'a', sizeof(line));
	memcpy(line, "PROXY ", 6);
	assert_int_equal(parse(line, TP_PROXY_V1_MAX - 1, &h), 0);
	assert_int_equal(parse(line, TP_PROXY_V1_MAX, &h), -E2BIG);
	assert_int_equal(parse(line, sizeof(line), &h), -E2BIG);
}

static void test_v2_ipv4(void **state)
{
	static const char s[] = V2SIG "\x21\x11\x00\x0c"
	                              "\x0a\x00\x00\x01\x0a\x00\x00\x02\x30\x39\x23\x28";
	struct tp_proxy_hdr h;
	(void)state;
	assert_int_equal(parse(s, sizeof(s) - 1, &h), 28);
	assert_int_equal(h.version, 2);
	assert_false(h.local);
	addr_is(&h.src, "10.0.0.1", 12345);
	addr_is(&h.dst, "10.0.0.2", 9000);
	check_split(s, sizeof(s) - 1, 28);
}

static void test_v2_ipv6_tlvs(void **state)
{
	/* Source 2001:db8::1, destination ::1, then a NOOP TLV and a 3-byte unique id TLV. */
	static const char s[] = V2SIG "\x21\x21\x00\x2d"
	                              "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"
	                              "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01"
	                              "\x30\x39\x23\x28"
	                              "\x04\x00\x00"
	                              "\x05\x00\x03xyz";
	struct tp_proxy_hdr h;
	(void)state;
	assert_int_equal(parse(s, sizeof(s) - 1, &h), 16 + 45);
	addr_is(&h.src, "2001:db8::1", 12345);
	addr_is(&h.dst, "::1", 9000);
	check_split(s, sizeof(s) - 1, 16 + 45);
}

static void test_v2_local_unix_unspec(void **state)
{
	static const char local[] = V2SIG "\x20\x00\x00\x00";
	static const char local_addrs[] = V2SIG "\x20\x11\x00\x0c"
	                                        "\x0a\x00\x00\x01\x0a\x00\x00\x02\x30\x39\x23\x28";
	static const char unspec[] = V2SIG "\x21\x00\x00\x00";
	static const char unix_[] = V2SIG "\x21\x31\x00\x04xxxx";
	/* IPv4 with an unspecified protocol, or the other way round: addresses ignored. */
	static const char inet_unspec[] = V2SIG "\x21\x10\x00\x0c"
	                                        "\x0a\x00\x00\x01\x0a\x00\x00\x02\x30\x39\x23\x28";
	static const char unspec_stream[] = V2SIG "\x21\x01\x00\x00";
	struct tp_proxy_hdr h;
	(void)state;
	assert_int_equal(parse(local, sizeof(local) - 1, &h), 16);
	assert_true(h.local);
	assert_int_equal(parse(local_addrs, sizeof(local_addrs) - 1, &h), 28);
	assert_true(h.local);
	assert_int_equal(parse(unspec, sizeof(unspec) - 1, &h), 16);
	assert_true(h.local);
	assert_int_equal(parse(unix_, sizeof(unix_) - 1, &h), 20);
	assert_true(h.local);
	assert_int_equal(parse(inet_unspec, sizeof(inet_unspec) - 1, &h), 28);
	assert_true(h.local);
	assert_int_equal(parse(unspec_stream, sizeof(unspec_stream) - 1, &h), 16);
	assert_true(h.local);
	check_split(local, sizeof(local) - 1, 16);
}

static void test_v2_malformed(void **state)
{
	static const struct {
		const char *s;
		size_t n;
		int r;
	} bad[] = {
	        {V2SIG "\x11\x11\x00\x00", 16, -EINVAL}, /* version 1 */
	        {V2SIG "\x22\x11\x00\x00", 16, -EINVAL}, /* command 2 */
	        {V2SIG "\x21\x11\x00\x08"
	               "\x0a\0\0\x01\x0a\0\0\x02",
	         24, -EINVAL}, /* IPv4 short */
	        {V2SIG "\x21\x12\x00\x0c"
	               "\x0a\0\0\x01\x0a\0\0\x02\0\1\0\2",
	         28, -EINVAL},                           /* DGRAM */
	        {V2SIG "\x21\x41\x00\x00", 16, -EINVAL}, /* family 4 */
	        {V2SIG "\x21\x13\x00\x00", 16, -EINVAL}, /* protocol 3 */
	        {V2SIG "\x21\x11\x00\x0e"
	               "\x0a\0\0\x01\x0a\0\0\x02\0\1\0\2\x04\x00",
	         30, -EINVAL}, /* TLV cut */
	        {V2SIG "\x21\x11\x00\x0f"
	               "\x0a\0\0\x01\x0a\0\0\x02\0\1\0\2\x04\x00\x01",
	         31, -EINVAL},                                         /* TLV over */
	        {"\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x00", 16, -EINVAL}, /* signature */
	};
	struct tp_proxy_hdr h;
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse(bad[i].s, bad[i].n, &h);
		if (r != bad[i].r)
			fail_msg("case %zu: %d", i, r);
	}
}

static void test_v2_truncated(void **state)
{
	static const char s[] = V2SIG "\x21\x11\x00\x0c"
	                              "\x0a\x00\x00\x01\x0a\x00\x00\x02\x30\x39\x23\x28";
	static const char big[] = V2SIG "\x21\x11\xff\xff"; /* the longest the format allows */
	struct tp_proxy_hdr h;
	(void)state;
	for (size_t k = 0; k < sizeof(s) - 1; k++)
		assert_int_equal(parse(s, k, &h), 0);
	assert_int_equal(parse(big, sizeof(big) - 1, &h), 0);
}

/*
 * A v2 PROXY TCP4 header (10.0.0.1:12345 to 10.0.0.2:9000) of total bytes
 * into buf: TLVs of up to tlv_max bytes of value each fill it.
 */
static void long_v2(uint8_t *buf, size_t total, size_t tlv_max)
{
	static const uint8_t head[] = V2SIG "\x21\x11\x00\x00"
	                                    "\x0a\x00\x00\x01\x0a\x00\x00\x02\x30\x39\x23\x28";
	size_t at = 28;

	assert_true(total >= 28 && total <= TP_PROXY_V2_MAX);
	memcpy(buf, head, at);
	buf[14] = (uint8_t)((total - 16) >> 8);
	buf[15] = (uint8_t)(total - 16);
	while (at < total) {
		size_t v = total - at - 3 < tlv_max ? total - at - 3 : tlv_max;
		assert_true(total - at >= 3);
		buf[at] = 0xe0; /* a custom type, as HAProxy's set-proxy-v2-tlv-fmt sends */
		buf[at + 1] = (uint8_t)(v >> 8);
		buf[at + 2] = (uint8_t)v;
		memset(buf + at + 3, 'z', v);
		at += 3 + v;
	}
}

/* Feed buf[from..total) to the tail in pieces of step bytes: the last answer. */
static int feed_tail(struct tp_proxy_tail *t, const uint8_t *buf, size_t from, size_t total, size_t step)
{
	int r = 0;
	for (size_t at = from; at < total && r == 0; at += step)
		r = tp_proxy_tail_feed(t, buf + at, total - at < step ? total - at : step);
	return r;
}

static uint8_t lbuf[TP_PROXY_V2_MAX + 16];

/*
 * Longer than TP_PROXY_MAX: decided on its first TP_PROXY_MAX bytes, the
 * addresses from them, the rest checked as it passes, up to the format's
 * longest; whole, the same answer at once.
 */
static void test_v2_long_tlvs(void **state)
{
	static const size_t totals[] = {TP_PROXY_MAX + 1, 2048, 8000, TP_PROXY_V2_MAX};
	static const size_t steps[] = {1, 7, 1000, 70000};
	struct tp_proxy_hdr h, whole;
	(void)state;
	for (size_t i = 0; i < sizeof(totals) / sizeof(totals[0]); i++) {
		size_t total = totals[i];
		long_v2(lbuf, total, i == 3 ? 65000 : 300);
		for (size_t k = 0; k < TP_PROXY_MAX; k += 97)
			assert_int_equal(parse((const char *)lbuf, k, &h), 0);
		assert_int_equal(parse((const char *)lbuf, TP_PROXY_MAX, &h), (int)total);
		assert_int_equal(h.len, total);
		assert_int_equal(h.tail.left, total - TP_PROXY_MAX);
		assert_false(h.local);
		addr_is(&h.src, "10.0.0.1", 12345);
		addr_is(&h.dst, "10.0.0.2", 9000);
		for (size_t j = 0; j < sizeof(steps) / sizeof(steps[0]); j++) {
			struct tp_proxy_tail t = h.tail;
			assert_int_equal(feed_tail(&t, lbuf, TP_PROXY_MAX, total, steps[j]), 1);
			assert_int_equal(t.left, 0);
		}
		assert_int_equal(parse((const char *)lbuf, total + 8, &whole), (int)total);
		assert_int_equal(whole.tail.left, 0);
		assert_memory_equal(&whole.src, &h.src, sizeof(h.src));
	}
}

static void test_v2_long_malformed(void **state)
{
	struct tp_proxy_hdr h;
	struct tp_proxy_tail t;
	(void)state;
	/* A TLV past the first TP_PROXY_MAX bytes runs past the end: refused as its length arrives. */
	long_v2(lbuf, 8000, 300);
	lbuf[28 + 303 * 10 + 1] = 0x20; /* the eleventh TLV: 8192 bytes of value */
	assert_int_equal(parse((const char *)lbuf, TP_PROXY_MAX, &h), 8000);
	t = h.tail;
	assert_int_equal(tp_proxy_tail_feed(&t, lbuf + TP_PROXY_MAX, 28 + 303 * 10 + 2 - TP_PROXY_MAX), 0);
	assert_int_equal(tp_proxy_tail_feed(&t, lbuf + 28 + 303 * 10 + 2, 1), -EINVAL);
	assert_int_equal(parse((const char *)lbuf, 8000, &h), -EINVAL);
	/* The same in the first TP_PROXY_MAX bytes: refused once they are there. */
	long_v2(lbuf, 8000, 300);
	lbuf[28 + 1] = 0x20;
	assert_int_equal(parse((const char *)lbuf, TP_PROXY_MAX - 1, &h), 0);
	assert_int_equal(parse((const char *)lbuf, TP_PROXY_MAX, &h), -EINVAL);
	/* The header ends one or two bytes into a TLV's type and length. */
	for (size_t cut = 1; cut <= 2; cut++) {
		size_t total = 8000 + cut;
		long_v2(lbuf, 8000, 300);
		memcpy(lbuf + 8000, "\xe0\x00", cut);
		lbuf[14] = (uint8_t)((total - 16) >> 8);
		lbuf[15] = (uint8_t)(total - 16);
		assert_int_equal(parse((const char *)lbuf, TP_PROXY_MAX, &h), (int)total);
		t = h.tail;
		assert_int_equal(feed_tail(&t, lbuf, TP_PROXY_MAX, total, 1000), -EINVAL);
		assert_int_equal(parse((const char *)lbuf, total, &h), -EINVAL);
	}
	/* Its last TLV's value runs one byte past its end. */
	long_v2(lbuf, 8000, 300);
	lbuf[14] = (uint8_t)((8000 - 1 - 16) >> 8);
	lbuf[15] = (uint8_t)(8000 - 1 - 16);
	assert_int_equal(parse((const char *)lbuf, TP_PROXY_MAX, &h), 7999);
	t = h.tail;
	assert_int_equal(feed_tail(&t, lbuf, TP_PROXY_MAX, 7999, 1), -EINVAL);
	/* A LOCAL header's bytes are not looked at, however long. */
	long_v2(lbuf, 8000, 300);
	lbuf[12] = 0x20;
	memset(lbuf + 16, 0xff, 8000 - 16);
	assert_int_equal(parse((const char *)lbuf, TP_PROXY_MAX, &h), 8000);
	assert_true(h.local);
	t = h.tail;
	assert_int_equal(feed_tail(&t, lbuf, TP_PROXY_MAX, 8000, 333), 1);
}

static void test_detect(void **state)
{
	(void)state;
	assert_int_equal(tp_proxy_detect((const uint8_t *)"", 0), -EAGAIN);
	assert_int_equal(tp_proxy_detect((const uint8_t *)"PRO", 3), -EAGAIN);
	assert_int_equal(tp_proxy_detect((const uint8_t *)"PROXY ", 6), 1);
	assert_int_equal(tp_proxy_detect((const uint8_t *)"PROXZ", 5), 0);
	assert_int_equal(tp_proxy_detect((const uint8_t *)"ECHO", 4), 0);
	assert_int_equal(tp_proxy_detect((const uint8_t *)"\r\n\r\n", 4), -EAGAIN);
	assert_int_equal(tp_proxy_detect((const uint8_t *)V2SIG, 12), 1);
	assert_int_equal(tp_proxy_detect((const uint8_t *)"\r\n", 2), -EAGAIN);
	assert_int_equal(tp_proxy_detect((const uint8_t *)"\r\nx", 3), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_v1_tcp4),
	        cmocka_unit_test(test_v1_tcp6),
	        cmocka_unit_test(test_v1_unknown),
	        cmocka_unit_test(test_v1_malformed),
	        cmocka_unit_test(test_v1_truncated_oversize),
	        cmocka_unit_test(test_v2_ipv4),
	        cmocka_unit_test(test_v2_ipv6_tlvs),
	        cmocka_unit_test(test_v2_local_unix_unspec),
	        cmocka_unit_test(test_v2_malformed),
	        cmocka_unit_test(test_v2_truncated),
	        cmocka_unit_test(test_v2_long_tlvs),
	        cmocka_unit_test(test_v2_long_malformed),
	        cmocka_unit_test(test_detect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

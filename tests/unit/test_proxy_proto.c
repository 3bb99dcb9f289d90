/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proxy_proto.c: v1 TCP4, TCP6 and UNKNOWN; v2 PROXY over
 * IPv4 and IPv6 with TLVs skipped, v2 LOCAL, v2 over UNIX and unspecified
 * families; every split point gives "need more" then the same header;
 * malformed, truncated and oversize headers; signature detection.
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

#include "proxy_proto.h"

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
	        {V2SIG "\x21\x11\xff\xff", 16, -E2BIG},                /* oversize */
	        {V2SIG "\x21\x11\x03\xf1", 16, -E2BIG},                /* 16 + 1009 */
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
	static const char big[] = V2SIG "\x21\x11\x03\xf0"; /* 16 + 1008: the largest accepted */
	struct tp_proxy_hdr h;
	(void)state;
	for (size_t k = 0; k < sizeof(s) - 1; k++)
		assert_int_equal(parse(s, k, &h), 0);
	assert_int_equal(parse(big, sizeof(big) - 1, &h), 0);
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
	        cmocka_unit_test(test_detect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

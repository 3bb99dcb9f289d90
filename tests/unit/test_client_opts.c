/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of client_opts.c: the command line users already know, the
 * defaults, each newer flag, the short aliases and units, every older long
 * flag, sources and groups.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client_opts.h"
#include "client_opts_fixture.h"

static void test_defaults(void **state)
{
	(void)state;
	struct tp_client_opts o;
	char err[256] = "";

	tp_client_opts_defaults(&o);
	assert_int_equal(parse_list(&o, err, sizeof(err), (const char *const[]){NULL}), 0);
	assert_string_equal(o.host, "127.0.0.1");
	assert_string_equal(o.port, "9000");
	assert_int_equal(o.clients, 5);
	assert_int_equal(o.groups[0].requests, 200);
	assert_int_equal(o.groups[0].max_inflight, 10);
	assert_true(o.recv_timeout_s == 5.0);
	assert_int_equal(o.groups[0].mix, TP_MIX_BALANCED);
	assert_int_equal(o.groups[0].sleep_lo_ms, 100);
	assert_int_equal(o.groups[0].sleep_hi_ms, 1000);
	assert_int_equal(o.groups[0].echo_lo, 1);
	assert_int_equal(o.groups[0].echo_hi, 100);
	assert_int_equal(o.threads, 2);
	assert_true(o.groups[0].rate == 0 && o.duration_s == 0);
	assert_false(o.seed_given || o.json || o.quiet || o.reconnect);
	assert_int_equal(o.log_level, TP_LOG_NOTICE);
}

static void test_known_interface(void **state)
{
	(void)state;
	struct tp_client_opts o;
	char err[256] = "";

	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--host", "127.0.0.1", "--port", "9001", "--clients", "7",
	                       "--requests", "300", "--mix", "sleep", "--max-inflight", "4", "--recv-timeout",
	                       "2.5", "--log-level", "debug"),
	                 0);
	assert_string_equal(o.port, "9001");
	assert_int_equal(o.clients, 7);
	assert_int_equal(o.groups[0].requests, 300);
	assert_int_equal(o.groups[0].mix, TP_MIX_SLEEP);
	assert_int_equal(o.groups[0].max_inflight, 4);
	assert_true(o.recv_timeout_s == 2.5);
	assert_int_equal(o.log_level, TP_LOG_DEBUG);
}

static void test_new_flags(void **state)
{
	(void)state;
	struct tp_client_opts o;
	char err[256] = "";

	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--duration=1.5", "--rate", "20000", "--sleep-ms", "10-30",
	                       "--echo-bytes", "7", "--seed", "18446744073709551615", "--json", "--quiet",
	                       "--threads", "8", "--clients", "3", "--mix", "ECHO"),
	                 0);
	assert_true(o.duration_s == 1.5);
	assert_true(o.groups[0].rate == 20000);
	assert_int_equal(o.groups[0].requests, 0); /* a time bound alone lifts the count bound */
	assert_int_equal(o.groups[0].sleep_lo_ms, 10);
	assert_int_equal(o.groups[0].sleep_hi_ms, 30);
	assert_int_equal(o.groups[0].echo_lo, 7);
	assert_int_equal(o.groups[0].echo_hi, 7);
	assert_true(o.seed == UINT64_MAX && o.seed_given);
	assert_true(o.json && o.quiet);
	assert_false(o.reconnect);
	assert_int_equal(o.log_level, TP_LOG_ERROR); /* --quiet without --log-level */
	assert_int_equal(o.threads, 3);              /* never more threads than clients */
	assert_int_equal(o.groups[0].mix, TP_MIX_ECHO);

	/* Both bounds kept when both are given; an explicit level beats --quiet. */
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--requests", "50", "--duration", "2", "-q", "--log-level", "info",
	                       "--clients", "1"),
	                 0);
	assert_int_equal(o.groups[0].requests, 50);
	assert_int_equal(o.log_level, TP_LOG_INFO);
	assert_false(o.reconnect);
	assert_int_equal(o.threads, 1);

	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--reconnect"), 0);
	assert_true(o.reconnect);
	assert_int_equal(o.clients, 5);
}

/* wrk's and memtier's short flags, units and suffixes: the same settings as the long flags. */
static void test_short_aliases_and_units(void **state)
{
	(void)state;
	struct tp_client_opts o;
	char err[256] = "";

	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "-c", "7", "-d", "2m", "-R", "2k", "-P", "4", "-t", "3"), 0);
	assert_int_equal(o.clients, 7);
	assert_true(o.duration_s == 120);
	assert_true(o.groups[0].rate == 2000);
	assert_int_equal(o.groups[0].max_inflight, 4);
	assert_int_equal(o.threads, 3);
	assert_int_equal(o.groups[0].requests, 0);

	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "-c7", "--duration=500ms", "--pipeline", "16", "--rate=1.5k",
	                       "--recv-timeout", "250ms"),
	                 0);
	assert_int_equal(o.clients, 7);
	assert_true(o.duration_s == 0.5);
	assert_int_equal(o.groups[0].max_inflight, 16);
	assert_true(o.groups[0].rate == 1500);
	assert_true(o.recv_timeout_s == 0.25);

	/* --timeline alone writes a row a second; --warmup and --interval take units. */
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--timeline", "rows.csv", "--warmup", "2s"), 0);
	assert_true(o.interval_s == 1.0 && o.warmup_s == 2.0);
	assert_non_null(o.timeline); /* points into argv, which PARSE has freed */
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--interval", "250ms"), 0);
	assert_true(o.interval_s == 0.25 && !o.timeline && o.warmup_s == 0);

	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--retry-busy", "20ms,5"), 0);
	assert_true(o.retry_delay_s == 0.02 && o.retry_budget == 5);
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--retry-busy=0.1"), 0);
	assert_true(o.retry_delay_s == 0.1 && o.retry_budget == 3);

	/* A group's rate takes the suffix too. */
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--group", "clients=2,rate=3k"), 0);
	assert_true(o.groups[0].rate == 3000);

	/* The long flags read exactly what they read before units existed. */
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--duration", "1e1", "--rate", "0.8", "--recv-timeout", "2.5",
	                       "--max-inflight", "9", "--clients", "4", "--threads", "2"),
	                 0);
	assert_true(o.duration_s == 10 && o.groups[0].rate == 0.8 && o.recv_timeout_s == 2.5);
	assert_int_equal(o.groups[0].max_inflight, 9);
	assert_int_equal(o.clients, 4);
	assert_int_equal(o.threads, 2);
}

/* Every long flag tpclient had before the short flags and units, with a value as it took then. */
static void test_every_old_long_flag(void **state)
{
	(void)state;
	struct tp_client_opts o;
	char err[256] = "";

	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--host", "::1", "--port", "9001", "--clients", "6", "--requests",
	                       "7", "--duration", "2.5", "--rate", "1500.5", "--max-inflight", "3", "--mix",
	                       "echo", "--sleep-ms", "2-4", "--echo-bytes", "5", "--source", "127.0.0.2",
	                       "--seed", "9", "--recv-timeout", "0.75", "--threads", "4", "--reconnect",
	                       "--json", "--quiet", "--log-level", "warning"),
	                 0);
	assert_string_equal(o.host, "::1");
	assert_string_equal(o.port, "9001");
	assert_int_equal(o.clients, 6);
	assert_int_equal(o.groups[0].requests, 7);
	assert_true(o.duration_s == 2.5 && o.groups[0].rate == 1500.5 && o.recv_timeout_s == 0.75);
	assert_int_equal(o.groups[0].max_inflight, 3);
	assert_int_equal(o.groups[0].mix, TP_MIX_ECHO);
	assert_true(o.groups[0].sleep_lo_ms == 2 && o.groups[0].sleep_hi_ms == 4 && o.groups[0].echo_hi == 5);
	assert_int_equal(o.groups[0].nsources, 1);
	assert_true(o.seed == 9 && o.seed_given && o.reconnect && o.json && o.quiet);
	assert_int_equal(o.threads, 4);
	assert_int_equal(o.log_level, TP_LOG_WARNING);
	/* Nothing new is switched on by the old flags. */
	assert_true(o.warmup_s == 0 && o.interval_s == 0 && o.retry_delay_s == 0);
	assert_null(o.timeline);
	assert_null(o.latency_file);

	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--group", "name=a,clients=2,rate=10,max-inflight=2,mix=sleep"), 0);
	assert_true(o.grouped && o.groups[0].rate == 10 && o.groups[0].max_inflight == 2);
}

static void test_source(void **state)
{
	(void)state;
	struct tp_client_opts o;
	char err[256] = "";

	tp_client_opts_defaults(&o);
	assert_int_equal(o.groups[0].nsources, 0);
	assert_int_equal(PARSE(&o, err, "--source", "127.0.0.2,::1,127.0.0.3"), 0);
	assert_int_equal(o.groups[0].nsources, 3);
	assert_string_equal(o.groups[0].sources[0].text, "127.0.0.2");
	assert_int_equal(o.groups[0].sources[0].addr.sa.sa_family, AF_INET);
	assert_int_equal(o.groups[0].sources[0].len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohl(o.groups[0].sources[0].addr.in.sin_addr.s_addr), 0x7f000002);
	assert_int_equal(o.groups[0].sources[0].addr.in.sin_port, 0);
	assert_string_equal(o.groups[0].sources[1].text, "::1");
	assert_int_equal(o.groups[0].sources[1].addr.sa.sa_family, AF_INET6);
	assert_int_equal(o.groups[0].sources[1].len, sizeof(struct sockaddr_in6));
	assert_int_equal(ntohl(o.groups[0].sources[2].addr.in.sin_addr.s_addr), 0x7f000003);

	/* A later --source replaces the list. */
	assert_int_equal(PARSE(&o, err, "--source", "127.0.0.2,127.0.0.3", "--source=127.0.0.9"), 0);
	assert_int_equal(o.groups[0].nsources, 1);
	assert_string_equal(o.groups[0].sources[0].text, "127.0.0.9");
}

/* A group holds as many sources as --source, each as long as an address can be. */
static void test_group_of_64_sources(void **state)
{
	static const char longest[] = "fe80:ffff:ffff:ffff:ffff:ffff:255.255.255.255%1"; /* 47 bytes */
	static char spec[8192];
	struct tp_client_opts o;
	char err[256] = "";
	size_t n;

	(void)state;
	n = (size_t)snprintf(
	        spec, sizeof(spec),
	        "name=a_name_of_thirty_one_bytes_long,clients=100000,requests=18446744073709551615,"
	        "rate=1000000000,max-inflight=65536,mix=balanced,sleep-ms=3600000-3600000,"
	        "echo-bytes=1048576-1048576");
	for (int i = 0; i < 64; i++)
		n += (size_t)snprintf(spec + n, sizeof(spec) - n, ",source=%s", longest);
	assert_true(n > 3500 && n < sizeof(spec));
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--group", spec), 0);
	assert_int_equal(o.groups[0].nsources, 64);
	assert_string_equal(o.groups[0].sources[63].text, longest);
	assert_string_equal(o.groups[0].name, "a_name_of_thirty_one_bytes_long");

	/* 57 IPv4 sources, the case that was refused. */
	n = (size_t)snprintf(spec, sizeof(spec), "clients=1");
	for (int i = 0; i < 57; i++)
		n += (size_t)snprintf(spec + n, sizeof(spec) - n, ",source=127.0.%d.%d", 100 + i,
		                      200 + i % 50);
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--group", spec), 0);
	assert_int_equal(o.groups[0].nsources, 57);

	/* A 65th source is one too many, as for --source. */
	n = (size_t)snprintf(spec, sizeof(spec), "clients=1");
	for (int i = 0; i < 65; i++)
		n += (size_t)snprintf(spec + n, sizeof(spec) - n, ",source=127.0.0.%d", i + 1);
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--group", spec), -EINVAL);
	assert_non_null(strstr(err, "--group: invalid source '127.0.0.65'"));
}

static void test_groups(void **state)
{
	(void)state;
	struct tp_client_opts o;
	char err[256] = "";

	/* Without --group: one unnamed group, the top-level flags. */
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--clients", "3"), 0);
	assert_false(o.grouped);
	assert_int_equal(o.ngroups, 1);
	assert_string_equal(o.groups[0].name, "");
	assert_int_equal(o.clients, 3);

	/* Each group starts from the top-level flags, wherever they stand, then sets its own keys. */
	tp_client_opts_defaults(&o);
	assert_int_equal(
	        PARSE(&o, err, "--group", "name=flooder,clients=4,max-inflight=64,sleep-ms=40", "--group",
	              "name=victim,clients=1,max-inflight=1,mix=sleep,sleep-ms=10,rate=50,requests=7,"
	              "source=127.0.0.3,source=::1",
	              "--mix", "SLEEP", "--source", "127.0.0.2", "--duration", "2"),
	        0);
	assert_true(o.grouped);
	assert_int_equal(o.ngroups, 2);
	assert_int_equal(o.clients, 5);
	assert_int_equal(o.threads, 2);
	const struct tp_client_group *f = &o.groups[0], *v = &o.groups[1];
	assert_string_equal(f->name, "flooder");
	assert_int_equal(f->clients, 4);
	assert_int_equal(f->max_inflight, 64);
	assert_int_equal(f->mix, TP_MIX_SLEEP);
	assert_int_equal(f->sleep_lo_ms, 40);
	assert_int_equal(f->sleep_hi_ms, 40);
	assert_int_equal(f->echo_hi, 100);
	assert_true(f->rate == 0);
	assert_int_equal(f->requests, 0); /* --duration alone */
	assert_int_equal(f->nsources, 1);
	assert_string_equal(f->sources[0].text, "127.0.0.2");
	assert_string_equal(v->name, "victim");
	assert_int_equal(v->max_inflight, 1);
	assert_true(v->rate == 50);
	assert_int_equal(v->requests, 7);
	assert_int_equal(v->sleep_lo_ms, 10);
	assert_int_equal(v->nsources, 2);
	assert_string_equal(v->sources[0].text, "127.0.0.3");
	assert_int_equal(v->sources[1].addr.sa.sa_family, AF_INET6);

	/* Unnamed groups are g1, g2, ... */
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--group", "clients=1", "--group", "clients=2,mix=echo"), 0);
	assert_string_equal(o.groups[0].name, "g1");
	assert_string_equal(o.groups[1].name, "g2");
	assert_int_equal(o.groups[0].mix, TP_MIX_BALANCED);
	assert_int_equal(o.groups[1].mix, TP_MIX_ECHO);
	assert_int_equal(o.clients, 3);

	/* Unnamed groups get theirs once all are read, skipping those taken: g1, g3 here. */
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--group", "clients=1", "--group", "name=g2,clients=1", "--group",
	                       "clients=1,mix=sleep"),
	                 0);
	assert_string_equal(o.groups[0].name, "g1");
	assert_string_equal(o.groups[1].name, "g2");
	assert_string_equal(o.groups[2].name, "g3");
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--group", "name=g2,clients=1", "--group", "clients=1,mix=sleep"), 0);
	assert_string_equal(o.groups[0].name, "g2");
	assert_string_equal(o.groups[1].name, "g3");
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--group", "clients=1", "--group", "name=g1,clients=1"), 0);
	assert_string_equal(o.groups[0].name, "g2");
	assert_string_equal(o.groups[1].name, "g1");
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--group", "clients=1", "--group", "name=g2", "--group", "name=g1"),
	                 0);
	assert_string_equal(o.groups[0].name, "g3");
	/* Two names given alike are refused. */
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--group", "name=a", "--group", "clients=2", "--group", "name=a"),
	                 -EINVAL);
	assert_string_equal(err, "--group: two groups named 'a'");

	/* A key given twice in one group is refused, not the last one taken; source= may repeat. */
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--group", "clients=1,rate=5,clients=2"), -EINVAL);
	assert_string_equal(err, "--group: key 'clients' given twice in 'clients=1,rate=5,clients=2'");
	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--group", "name=a,name=b"), -EINVAL);
	assert_string_equal(err, "--group: key 'name' given twice in 'name=a,name=b'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_known_interface),
	        cmocka_unit_test(test_new_flags),
	        cmocka_unit_test(test_source),
	        cmocka_unit_test(test_groups),
	        cmocka_unit_test(test_short_aliases_and_units),
	        cmocka_unit_test(test_every_old_long_flag),
	        cmocka_unit_test(test_group_of_64_sources),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

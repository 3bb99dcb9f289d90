/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of client_opts.c's errors: the one-line error naming the flag
 * for every kind of bad input, and the exact text docs/TPCLIENT.md quotes.
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

/* Each bad command line fails with -EINVAL and one line that starts with the flag. */
static void expect_error(const char *flag, const char *const *args)
{
	struct tp_client_opts o;
	char err[256] = "";

	tp_client_opts_defaults(&o);
	assert_int_equal(parse_list(&o, err, sizeof(err), args), -EINVAL);
	if (strncmp(err, flag, strlen(flag)) != 0)
		fail_msg("error '%s' does not start with '%s'", err, flag);
	assert_null(strchr(err, '\n'));
}

#define EXPECT_ERROR(flag, ...) expect_error(flag, (const char *const[]){__VA_ARGS__, NULL})

static void test_errors(void **state)
{
	(void)state;
	EXPECT_ERROR("--clients", "--clients", "0");
	EXPECT_ERROR("--clients", "--clients", "abc");
	EXPECT_ERROR("--clients", "--clients", "-3");
	EXPECT_ERROR("--clients", "--clients", "5x");
	EXPECT_ERROR("--requests", "--requests", "0");
	EXPECT_ERROR("--requests", "--requests", "99999999999999999999999");
	EXPECT_ERROR("--port", "--port", "65536");
	EXPECT_ERROR("--port", "--port", "");
	EXPECT_ERROR("--max-inflight", "--max-inflight", "0");
	EXPECT_ERROR("--mix", "--mix", "random");
	EXPECT_ERROR("--duration", "--duration", "0");
	EXPECT_ERROR("--duration", "--duration", "nan");
	EXPECT_ERROR("--rate", "--rate", "-5");
	EXPECT_ERROR("--rate", "--rate", "inf");
	EXPECT_ERROR("--recv-timeout", "--recv-timeout", "0");
	EXPECT_ERROR("--sleep-ms", "--sleep-ms", "30-10");
	EXPECT_ERROR("--sleep-ms", "--sleep-ms", "10-");
	EXPECT_ERROR("--sleep-ms", "--sleep-ms", "-10");
	EXPECT_ERROR("--sleep-ms", "--sleep-ms", "1-2-3");
	EXPECT_ERROR("--echo-bytes", "--echo-bytes", "1-99999999");
	EXPECT_ERROR("--seed", "--seed", "18446744073709551616");
	EXPECT_ERROR("--threads", "--threads", "0");
	EXPECT_ERROR("--log-level", "--log-level", "loud");
	EXPECT_ERROR("--host", "--host", "");
	EXPECT_ERROR("--bogus", "--bogus");
	EXPECT_ERROR("--clients", "--clients");
	EXPECT_ERROR("extra", "extra");
	EXPECT_ERROR("--reconnect=yes", "--reconnect=yes");
	EXPECT_ERROR("--clients", "-c", "0");
	EXPECT_ERROR("-c", "-c");
	EXPECT_ERROR("--duration", "-d", "10x");
	EXPECT_ERROR("--duration", "--duration", "0ms");
	EXPECT_ERROR("--rate", "-R", "2q");
	EXPECT_ERROR("--max-inflight", "-P", "0");
	EXPECT_ERROR("--max-inflight", "--pipeline", "0");
	EXPECT_ERROR("--threads", "-t", "0");
	EXPECT_ERROR("--recv-timeout", "--recv-timeout", "2d");
	EXPECT_ERROR("--interval", "--interval", "0");
	EXPECT_ERROR("--retry-busy", "--retry-busy", "10ms,0");
	EXPECT_ERROR("--retry-busy", "--retry-busy", "soon");
	EXPECT_ERROR("--warmup", "--warmup", "-1");
	EXPECT_ERROR("--timeline", "--timeline", "");
	EXPECT_ERROR("--latency-file", "--latency-file", "");
	EXPECT_ERROR("--source", "--source", "127.0.0.300");
	EXPECT_ERROR("--source", "--source", "");
	EXPECT_ERROR("--source", "--source", "127.0.0.2,");
	EXPECT_ERROR("--source", "--source", ",127.0.0.2");
	EXPECT_ERROR("--source", "--source", "localhost");
	EXPECT_ERROR("--source", "--source", "127.0.0.2:80");
	EXPECT_ERROR("--source", "--source", "[::1]");
	EXPECT_ERROR("--group", "--group", "clients=0");
	EXPECT_ERROR("--group", "--group", "clients");
	EXPECT_ERROR("--group", "--group", "");
	EXPECT_ERROR("--group", "--group", "clients=1,");
	EXPECT_ERROR("--group", "--group", "colour=red");
	EXPECT_ERROR("--group", "--group", "duration=5");
	EXPECT_ERROR("--group", "--group", "rate=fast");
	EXPECT_ERROR("--group", "--group", "mix=random");
	EXPECT_ERROR("--group", "--group", "sleep-ms=9-1");
	EXPECT_ERROR("--group", "--group", "source=127.0.0.300");
	EXPECT_ERROR("--group", "--group", "name=");
	EXPECT_ERROR("--group", "--group", "name=two words");
	EXPECT_ERROR("--group", "--group", "name=a", "--group", "name=a");
	EXPECT_ERROR("--group", "--group", "name=a,name=b");
	EXPECT_ERROR("--group", "--group", "clients=1,rate=5,clients=2");
	EXPECT_ERROR("--group", "--group", "clients=60000", "--group", "clients=60000");
	EXPECT_ERROR("--group", "--group", "clients=1", "--group", "clients=1", "--group", "clients=1",
	             "--group", "clients=1", "--group", "clients=1", "--group", "clients=1", "--group",
	             "clients=1", "--group", "clients=1", "--group", "clients=1", "--group", "clients=1",
	             "--group", "clients=1", "--group", "clients=1", "--group", "clients=1", "--group",
	             "clients=1", "--group", "clients=1", "--group", "clients=1", "--group", "clients=1");
}

/* The message docs/TPCLIENT.md quotes, word for word. */
static void test_error_text(void **state)
{
	(void)state;
	struct tp_client_opts o;
	char err[256] = "";

	tp_client_opts_defaults(&o);
	assert_int_equal(PARSE(&o, err, "--clients", "0"), -EINVAL);
	assert_string_equal(err, "--clients: invalid value '0' (expected an integer from 1 to 100000)");
	assert_int_equal(PARSE(&o, err, "--clients=abc"), -EINVAL);
	assert_string_equal(err, "--clients: invalid value 'abc' (expected an integer from 1 to 100000)");
	assert_int_equal(PARSE(&o, err, "--sleep-ms", "5-1"), -EINVAL);
	assert_string_equal(err,
	                    "--sleep-ms: invalid value '5-1' (expected LO-HI, 0 <= LO <= HI <= 3600000)");
	assert_int_equal(PARSE(&o, err, "--echo-bytes", "0-2000000"), -EINVAL);
	assert_string_equal(
	        err, "--echo-bytes: invalid value '0-2000000' (expected LO-HI, 0 <= LO <= HI <= 1048576)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_errors),
	        cmocka_unit_test(test_error_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * verify: reply classification.  See verify.h; the reply grammar is in
 * docs/PROTOCOL.md.
 */
#include "verify.h"

#include <string.h>

#include "decimal.h"

#define LIT(s) (s), (sizeof(s) - 1)

static int starts_with(const char *line, size_t len, const char *prefix, size_t plen)
{
	return len >= plen && memcmp(line, prefix, plen) == 0;
}

/* "OK <ms>" as the server writes it: canonical decimal (no sign, no leading zero), exactly ms. */
static int sleep_matches(const char *arg, size_t len, uint32_t ms)
{
	uint64_t v;

	if (len > 1 && arg[0] == '0')
		return 0;
	return tp_decimal_parse(arg, len, UINT32_MAX, &v) == 0 && v == ms;
}

enum tp_verify_result tp_verify_reply(const struct tp_verify_expect *exp, const char *line, size_t len)
{
	if (len == sizeof("ERR server busy") - 1 && memcmp(line, LIT("ERR server busy")) == 0)
		return TP_VERIFY_BUSY;
	/* A bare "ERR" is still an error reply, just one without a message. */
	if ((len == 3 && memcmp(line, "ERR", 3) == 0) || starts_with(line, len, LIT("ERR ")))
		return TP_VERIFY_ERR;
	if (!starts_with(line, len, LIT("OK ")))
		return TP_VERIFY_MISMATCH;

	const char *arg = line + 3;
	size_t arg_len = len - 3;

	switch (exp->op) {
	case TP_OP_SLEEP:
		return sleep_matches(arg, arg_len, exp->sleep_ms) ? TP_VERIFY_OK : TP_VERIFY_MISMATCH;
	case TP_OP_ECHO:
		if (arg_len == exp->text_len && (arg_len == 0 || memcmp(arg, exp->text, arg_len) == 0))
			return TP_VERIFY_OK;
		return TP_VERIFY_MISMATCH;
	}
	return TP_VERIFY_MISMATCH;
}

const char *tp_verify_result_name(enum tp_verify_result r)
{
	switch (r) {
	case TP_VERIFY_OK:
		return "ok";
	case TP_VERIFY_BUSY:
		return "busy";
	case TP_VERIFY_ERR:
		return "err";
	case TP_VERIFY_MISMATCH:
		return "mismatch";
	}
	return "?";
}

/* SPDX-License-Identifier: MIT */
/*
 * client_failure: how tpclient logs a reply that was not the right OK.
 * See client_failure.h.
 */
#include "client_failure.h"

#include <string.h>

#include "log.h"

#define FAILURES_LOGGED 5 /* per worker, in detail at warning level; the rest at debug */
#define QUOTED 80         /* bytes of a reply line quoted */

/* The first 80 bytes of a reply line, as one line of text: control bytes (NUL too) become '?'. */
static const char *quoted(const char *line, size_t len, char *buf, size_t size)
{
	size_t n = len < size - 1 ? len : size - 1;

	memcpy(buf, line, n);
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = '?';
	buf[n] = '\0';
	tp_log_one_line(buf, n);
	return buf;
}

void tp_client_failure_log(unsigned *logged, unsigned client, const struct tp_client_req *p,
                           enum tp_verify_result r, const char *line, size_t len)
{
	/* Busy is the expected answer of a loaded server: worth a debug line only. */
	enum tp_log_level level =
	        r != TP_VERIFY_BUSY && *logged < FAILURES_LOGGED ? TP_LOG_WARNING : TP_LOG_DEBUG;
	char text[QUOTED + 1];

	if (!tp_log_enabled(level))
		return;
	if (level == TP_LOG_WARNING)
		(*logged)++;
	if (!line) {
		tp_log(level, "reply", "client %u: reply too long (%s)", client, tp_verify_result_name(r));
	} else if (!p) {
		tp_log(level, "reply", "client %u: reply without a request: '%s'", client,
		       quoted(line, len, text, sizeof(text)));
	} else if (p->op == TP_OP_SLEEP) {
		tp_log(level, "reply", "client %u: %s: SLEEP %u got '%s'", client, tp_verify_result_name(r),
		       p->arg, quoted(line, len, text, sizeof(text)));
	} else {
		tp_log(level, "reply", "client %u: %s: ECHO of %u bytes got '%s'", client,
		       tp_verify_result_name(r), p->arg, quoted(line, len, text, sizeof(text)));
	}
}

/* SPDX-License-Identifier: MIT */
/*
 * expo: writing the Prometheus text format into a bounded, growing buffer.
 */
#include "expo.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tp_expo_printf(struct tp_expo *e, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (e->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(e->buf ? e->buf + e->len : NULL, e->buf ? e->cap - e->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			goto fail;
		if (e->buf && (size_t)n < e->cap - e->len) {
			e->len += (size_t)n;
			return;
		}
		size_t cap = e->cap ? e->cap * 2 : 4096;
		while (cap < e->len + (size_t)n + 1)
			cap *= 2;
		if (e->max && cap > e->max)
			cap = e->max;
		if (cap < e->len + (size_t)n + 1)
			goto fail;
		char *b = realloc(e->buf, cap);
		if (!b)
			goto fail;
		e->buf = b;
		e->cap = cap;
	}
fail:
	e->failed = true;
}

void tp_expo_family(struct tp_expo *e, const char *name, const char *type, const char *help)
{
	tp_expo_printf(e, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *tp_expo_labels(char *buf, size_t len, size_t n, const char *const *keys, const char *const *vals)
{
	size_t o = 0;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(buf + o, len - o, "%s%s=\"", i ? "," : "", keys[i]);
		if (w < 0 || (size_t)w >= len - o)
			goto full;
		o += (size_t)w;
		for (const char *p = vals[i]; *p; p++) {
			const char *esc = *p == '\\'   ? "\\\\"
			                  : *p == '"'  ? "\\\""
			                  : *p == '\n' ? "\\n"
			                               : NULL;
			size_t need = esc ? 2 : 1;
			if (o + need + 2 > len)
				goto full;
			if (esc)
				memcpy(buf + o, esc, 2);
			else
				buf[o] = *p;
			o += need;
		}
		buf[o++] = '"';
		buf[o] = '\0';
	}
	return buf;
full:
	buf[o < len ? o : len - 1] = '\0';
	return buf;
}

static void sample_name(struct tp_expo *e, const char *name, const char *labels)
{
	if (labels && *labels)
		tp_expo_printf(e, "%s{%s} ", name, labels);
	else
		tp_expo_printf(e, "%s ", name);
}

void tp_expo_u64(struct tp_expo *e, const char *name, const char *labels, uint64_t v)
{
	sample_name(e, name, labels);
	tp_expo_printf(e, "%" PRIu64 "\n", v);
}

void tp_expo_double(struct tp_expo *e, const char *name, const char *labels, double v)
{
	sample_name(e, name, labels);
	tp_expo_printf(e, "%.6f\n", v);
}

char *tp_expo_seconds(char *buf, size_t len, uint64_t ns)
{
	uint64_t frac = ns % 1000000000ull;
	int digits = 9;

	if (frac == 0) {
		snprintf(buf, len, "%" PRIu64, (uint64_t)(ns / 1000000000ull));
		return buf;
	}
	while (frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	snprintf(buf, len, "%" PRIu64 ".%0*" PRIu64, (uint64_t)(ns / 1000000000ull), digits, frac);
	return buf;
}

void tp_expo_hist(struct tp_expo *e, const char *name, const char *labels, const struct tp_metrics_hist *h)
{
	const char *sep = labels && *labels ? "," : "";
	uint64_t cum = 0;
	char le[32];

	if (!labels)
		labels = "";
	for (size_t i = 0; i < TP_METRICS_HIST_BUCKETS; i++) {
		cum += h->counts[i];
		tp_expo_printf(e, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, labels, sep,
		               tp_expo_seconds(le, sizeof(le), tp_metrics_hist_bounds_ns[i]), cum);
	}
	cum += h->counts[TP_METRICS_HIST_BUCKETS];
	tp_expo_printf(e, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, cum);
	tp_expo_printf(e, "%s_sum%s%s%s %s\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
	               tp_expo_seconds(le, sizeof(le), h->sum_ns));
	tp_expo_printf(e, "%s_count%s%s%s %" PRIu64 "\n", name, *labels ? "{" : "", labels,
	               *labels ? "}" : "", cum);
}

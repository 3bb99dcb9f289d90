/* SPDX-License-Identifier: MIT */
/*
 * expo: the Prometheus text exposition format, version 0.0.4: a growing
 * buffer and the lines of counters, gauges and histograms written into it.
 * Pure formatting: no I/O, no knowledge of which metrics exist.  Never
 * logs.  A failed allocation marks the buffer failed; later writes do
 * nothing, and the caller checks `failed` once at the end.
 */
#ifndef TP_EXPO_H
#define TP_EXPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h" /* struct tp_metrics_hist, the one histogram it writes */

#define TP_EXPO_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct tp_expo {
	char *buf; /* owned; free() it */
	size_t len, cap;
	size_t max; /* the buffer never grows past this: failed instead */
	bool failed;
};

/* Append printf-style text. */
void tp_expo_printf(struct tp_expo *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void tp_expo_family(struct tp_expo *e, const char *name, const char *type, const char *help);

/*
 * Label text for a sample: k="v" pairs separated by commas, each value
 * escaped (backslash, double quote and newline), into buf.  keys and vals
 * hold n entries.  Returns buf ("" for n == 0); cut short if len is too small.
 */
char *tp_expo_labels(char *buf, size_t len, size_t n, const char *const *keys, const char *const *vals);

/* One sample: name{labels} value (labels may be "" or NULL). */
void tp_expo_u64(struct tp_expo *e, const char *name, const char *labels, uint64_t v);
void tp_expo_double(struct tp_expo *e, const char *name, const char *labels, double v);

/* ns as decimal seconds, exactly, without trailing zeros ("0.0025", "10"). Returns buf. */
char *tp_expo_seconds(char *buf, size_t len, uint64_t ns);

/*
 * A histogram's samples: name_bucket{labels,le="..."} cumulative for every
 * bound and +Inf, name_sum (seconds) and name_count (the +Inf count).
 */
void tp_expo_hist(struct tp_expo *e, const char *name, const char *labels, const struct tp_metrics_hist *h);

#endif

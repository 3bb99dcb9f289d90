/* SPDX-License-Identifier: MIT */
/*
 * log: one place that decides where log entries go.
 *
 * Under systemd, stderr is a stream to journald and JOURNAL_STREAM names its
 * device and inode; only then do entries go through sd_journal_sendv() with
 * structured fields.  Anywhere else (a terminal, a test harness, a pipe) they
 * are plain lines on stderr.  Either sink is written with one call per entry,
 * so entries from different threads never interleave.
 */
#include "log.h"

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

static _Atomic int log_level = TP_LOG_INFO;
static bool to_journal;
static _Atomic(const char *) stderr_lead;
static const char *log_ident = "tpserver";

/* Events that operators look up by MESSAGE_ID; generated once, never change. */
static const struct {
	const char *event;
	const char *id;
} message_ids[] = {
        {"start", "98f9f5bf22e845a781568eca8f836c2f"},  {"ready", "8ae476b3aba14f41849b30b057a8e20f"},
        {"reload", "e5a15f47228c49be835929e487e53c95"}, {"busy", "f2ec25955a324298b3d0514d3b5711fd"},
        {"stop", "037132f6ca094b12abe51304f002ee91"},   {"stall", "7b99725e9675418589fbe151effdbdab"},
        {"late", "6da03b6347c34b78bc1e3fa0993bfdf5"},   {"refused", "c8c9863655044936a429b8024e7baf06"},
};

bool tp_log_under_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	/*
	 * Set by systemd.  glibc saturates an out-of-range number, which then
	 * only fails the comparison with fstat() below.
	 */
	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2) /* NOLINT(cert-err34-c) */
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

const char *tp_log_stderr_prefix(enum tp_log_level level)
{
	static const char *const prefix[] = {"<0>", "<1>", "<2>", "<3>", "<4>", "<5>", "<6>", "<7>"};

	if ((int)level < 0 || (int)level > 7 || !tp_log_under_journal())
		return "";
	return prefix[level];
}

void tp_log_one_line(char *text, size_t n)
{
	for (char *p = text; p < text + n && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

void tp_log_host_port(char *buf, size_t len, const char *host, unsigned port)
{
	bool v6 = strchr(host, ':') != NULL;
	snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

void tp_log_init(const char *ident, enum tp_log_level level)
{
	if (ident)
		log_ident = ident;
	atomic_store(&log_level, (int)level);
	to_journal = tp_log_under_journal();
}

void tp_log_set_stderr_lead(const char *lead)
{
	atomic_store(&stderr_lead, lead);
}

void tp_log_set_level(enum tp_log_level level)
{
	atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

bool tp_log_enabled(enum tp_log_level level)
{
	return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

static const char *level_word(enum tp_log_level level)
{
	switch ((int)level) {
	case 2:
		return "critical";
	case TP_LOG_ERROR:
		return "error";
	case TP_LOG_WARNING:
		return "warning";
	case TP_LOG_NOTICE:
		return "notice";
	case TP_LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

static const char *message_id(const char *event)
{
	if (!event)
		return NULL;
	for (size_t i = 0; i < sizeof(message_ids) / sizeof(message_ids[0]); i++)
		if (strcmp(message_ids[i].event, event) == 0)
			return message_ids[i].id;
	return NULL;
}

#define MAX_FIELDS 16

static void emit_journal(enum tp_log_level level, const char *file, int line, const char *func,
                         const char *event, const struct tp_log_field *fields, size_t nfields,
                         const char *msg)
{
	struct iovec iov[MAX_FIELDS + 8];
	int n = 0;
	const char *id = message_id(event);

	/* Each field whole, however long (a path in a reload error): no fixed buffer cuts it. */
#define ADD(...)                                                     \
	do {                                                         \
		char *f_;                                            \
		int len_ = asprintf(&f_, __VA_ARGS__);               \
		if (len_ > 0)                                        \
			iov[n++] = (struct iovec){f_, (size_t)len_}; \
	} while (0)

	ADD("MESSAGE=%s", msg);
	if (n == 0)
		return; /* no memory for the message: no entry without one */
	ADD("PRIORITY=%d", (int)level);
	ADD("CODE_FILE=%s", file);
	ADD("CODE_LINE=%d", line);
	ADD("CODE_FUNC=%s", func);
	ADD("SYSLOG_IDENTIFIER=%s", log_ident);
	if (event)
		ADD("TP_EVENT=%s", event);
	if (id)
		ADD("MESSAGE_ID=%s", id);
	for (size_t i = 0; i < nfields && i < MAX_FIELDS; i++)
		ADD("%s=%s", fields[i].key, fields[i].value);
#undef ADD

	(void)sd_journal_sendv(iov, n); /* a log line that cannot be logged has nowhere to go */
	for (int i = 0; i < n; i++)
		free(iov[i].iov_base);
}

static void emit_stderr(enum tp_log_level level, const char *event, const struct tp_log_field *fields,
                        size_t nfields, const char *msg)
{
	char line[TP_MSG_MAX + 1024];
	const char *lead = atomic_load(&stderr_lead);
	size_t len;
	int r;

	r = snprintf(line, sizeof(line), "%s%s[%d]: %s: %s", lead ? lead : "", log_ident, (int)getpid(),
	             level_word(level), msg);
	len = r < 0 ? 0 : ((size_t)r < sizeof(line) ? (size_t)r : sizeof(line) - 1);
	if (tp_log_enabled(TP_LOG_DEBUG)) {
		/* At debug level show the structured side too; it helps reading tests. */
		if (event && len < sizeof(line) - 1) {
			r = snprintf(line + len, sizeof(line) - len, " [event=%s", event);
			len += r < 0 ? 0 : (size_t)r;
			for (size_t i = 0; i < nfields && len < sizeof(line) - 1; i++) {
				r = snprintf(line + len, sizeof(line) - len, " %s=%s", fields[i].key,
				             fields[i].value);
				len += r < 0 ? 0 : (size_t)r;
			}
			if (len < sizeof(line) - 1)
				line[len++] = ']';
		}
	}
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	/* One write per entry: lines from different threads stay whole. */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void tp_log_emit(enum tp_log_level level, const char *file, int line, const char *func, const char *event,
                 const struct tp_log_field *fields, size_t nfields, const char *fmt, ...)
{
	char msg[TP_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (to_journal)
		emit_journal(level, file, line, func, event, fields, nfields, msg);
	else
		emit_stderr(level, event, fields, nfields, msg);
}

static const struct {
	const char *name;
	enum tp_log_level level;
} level_names[] = {
        {"debug", TP_LOG_DEBUG},     {"info", TP_LOG_INFO},   {"notice", TP_LOG_NOTICE},
        {"warning", TP_LOG_WARNING}, {"error", TP_LOG_ERROR},
};

int tp_log_level_parse(const char *s, enum tp_log_level *ret_level)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i].name) == 0) {
			*ret_level = level_names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

const char *tp_log_level_name(enum tp_log_level level)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (level_names[i].level == level)
			return level_names[i].name;
	return "info";
}

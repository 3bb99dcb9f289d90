/* SPDX-License-Identifier: MIT */
/*
 * log: leveled logging, to journald with structured fields when stderr is
 * connected to the journal (JOURNAL_STREAM), else human-readable lines on
 * stderr.  The call sites are the same either way.
 *
 * Thread-safe: any thread may log.  Each entry names an event (TP_EVENT=)
 * and may carry extra fields; events that operators search for have a
 * stable MESSAGE_ID (see log.c).
 */
#ifndef TP_LOG_H
#define TP_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum tp_log_level {
	TP_LOG_ERROR = 3, /* syslog priorities, so journald gets them as is */
	TP_LOG_WARNING = 4,
	TP_LOG_NOTICE = 5,
	TP_LOG_INFO = 6,
	TP_LOG_DEBUG = 7,
};

/* Parse a log level name ("debug", "info", ...). Returns 0 or -EINVAL. */
int tp_log_level_parse(const char *s, enum tp_log_level *ret_level);

/* The name of a log level ("info"). Never NULL. */
const char *tp_log_level_name(enum tp_log_level level);

/*
 * The longest message an entry, a reload's outcome or a refusal carries
 * whole: an error naming two paths of PATH_MAX (a file and a file it
 * includes), a line and a setting, and what is wrong.
 */
#define TP_MSG_MAX (2 * 4096 + 1024)

/* An extra structured field: KEY (uppercase, digits, '_') and its value. */
struct tp_log_field {
	const char *key;
	const char *value;
};

/* Choose the sink (journal or stderr) and the level. Call once at start. */
void tp_log_init(const char *ident, enum tp_log_level level);

/*
 * For a line a program writes to stderr itself (outside tp_log, e.g. before
 * tp_log_init or in a mode that exits at once): "<N>" with N the syslog
 * priority of level when stderr is the journal's stream (JOURNAL_STREAM
 * matches it; journald reads the prefix, SyslogLevelPrefix= being on by
 * default), else "".  Checks the environment on each call.
 */
const char *tp_log_stderr_prefix(enum tp_log_level level);

/* Is stderr the journal (systemd's JOURNAL_STREAM names it)?  Then tp_log() sends native entries. */
bool tp_log_under_journal(void);

/*
 * Make text one line whatever bytes it quotes (a configuration value, a
 * path): each control byte among its first n, up to its NUL, becomes '?',
 * as it would otherwise start a forged line in a log or a status file.
 */
void tp_log_one_line(char *text, size_t n);

/* host:port for a message, an IPv6 host in brackets: [2001:db8::5]:443. */
void tp_log_host_port(char *buf, size_t len, const char *host, unsigned port);

/* The plural ending of a count in a message: "%zu connection%s", n, tp_log_plural(n). */
static inline const char *tp_log_plural(unsigned long long n)
{
	return n == 1 ? "" : "s";
}

/*
 * Text each line written to stderr starts with, in the same write (not
 * entries sent to the journal): "\r\033[K" erases a status line that a
 * terminal shows, so the entry does not run on from it.  lead must stay
 * valid while set (a string literal); NULL: none, the default.  Any thread.
 */
void tp_log_set_stderr_lead(const char *lead);

/* Change the level (reload). */
void tp_log_set_level(enum tp_log_level level);

/* Would an entry at this level be written? */
bool tp_log_enabled(enum tp_log_level level);

/* Write one entry. Use the tp_log*() macros, which add the code location. */
void tp_log_emit(enum tp_log_level level, const char *file, int line, const char *func, const char *event,
                 const struct tp_log_field *fields, size_t nfields, const char *fmt, ...)
        __attribute__((format(printf, 8, 9)));

/* Critical entries (watchdog stall) use syslog priority 2. */
#define TP_LOG_CRIT ((enum tp_log_level)2)

#define tp_logf(level, event, fields, nfields, ...)                                              \
	do {                                                                                     \
		if (tp_log_enabled(level))                                                       \
			tp_log_emit(level, __FILE__, __LINE__, __func__, event, fields, nfields, \
			            __VA_ARGS__);                                                \
	} while (0)

#define tp_log(level, event, ...) tp_logf(level, event, NULL, 0, __VA_ARGS__)

#endif

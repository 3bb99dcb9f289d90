/* SPDX-License-Identifier: MIT */
/*
 * reload_status: write the reload status file, and wait on it for the
 * outcome of a reload (see reload_status.h).
 */
#include "reload_status.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STATUS_NAME "reload-status"
#define POLL_MS 10
/* The file's text: "GEN STATE MESSAGE\n", then "reading GEN\n" while a read is in progress. */
#define STATUS_TEXT_MAX (TP_MSG_MAX + 64)

const char *tp_reload_status_dir(char *buf, size_t len)
{
	const char *e = getenv("RUNTIME_DIRECTORY");

	if (!e || !*e)
		return NULL;
	/* systemd lists one entry per RuntimeDirectory= name, separated by ':'. */
	snprintf(buf, len, "%.*s", (int)strcspn(e, ":"), e);
	return buf;
}

int tp_reload_status_write(const char *dir, unsigned long gen, const char *state, const char *msg,
                           bool reading)
{
	char path[4200], tmp[4200], text[STATUS_TEXT_MAX];
	int n, fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, STATUS_NAME);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, STATUS_NAME);
	n = snprintf(text, sizeof(text) - 1, "%lu %s %s", gen, state, msg); /* room for the newline */
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(text) - 1)
		n = (int)sizeof(text) - 2;
	tp_log_one_line(text, (size_t)n); /* one line, whatever bytes the message quotes */
	text[n++] = '\n';
	text[n] = '\0';
	if (reading)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "reading %lu\n", gen + 1);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, text, (size_t)n) != n)
		r = errno ? -errno : -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		(void)unlink(tmp);
	return r;
}

struct status {
	unsigned long gen;
	char state[16];
	char msg[TP_MSG_MAX];
	bool reading;
};

/* "GEN STATE MESSAGE": the generation and state into st, *ret_msg at the message. */
static int parse_line(const char *line, struct status *st, int *ret_msg)
{
	char *end;
	size_t len;

	errno = 0;
	st->gen = strtoul(line, &end, 10);
	if (errno || end == line || *end != ' ')
		return -EINVAL;
	end++;
	len = strcspn(end, " \n");
	if (len == 0 || len >= sizeof(st->state))
		return -EINVAL;
	memcpy(st->state, end, len);
	st->state[len] = '\0';
	end += len;
	end += strspn(end, " ");
	*ret_msg = (int)(end - line);
	return 0;
}

/* Read the file; a missing file reads as generation 0 with nothing in progress. */
static int status_read(const char *dir, struct status *st)
{
	char path[4200], line[STATUS_TEXT_MAX];
	FILE *f;
	int n = 0;

	memset(st, 0, sizeof(*st));
	snprintf(path, sizeof(path), "%s/%s", dir, STATUS_NAME);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	if (fgets(line, sizeof(line), f) && parse_line(line, st, &n) == 0) {
		snprintf(st->msg, sizeof(st->msg), "%s", line + n);
		st->msg[strcspn(st->msg, "\n")] = '\0';
		/* Only the line this file writes: "reading GEN\n", the next generation. */
		char *end = line;
		st->reading = fgets(line, sizeof(line), f) && strncmp(line, "reading ", 8) == 0 &&
		              strtoul(line + 8, &end, 10) == st->gen + 1 && end > line + 8 && *end == '\n';
	}
	fclose(f);
	return 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	(void)nanosleep(&ts, NULL);
}

/* The command name of process pid ("" when unknown). */
static void comm_of(pid_t pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	buf[0] = '\0';
	f = fopen(path, "re");
	if (f && fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	if (f)
		fclose(f);
}

int tp_reload_status_wait(const char *dir, pid_t pid, unsigned timeout_ms, const volatile sig_atomic_t *stop,
                          char *msg, size_t msglen)
{
	char comm[32];
	struct status st;
	unsigned long target;
	int r = status_read(dir, &st);

	if (r < 0) {
		snprintf(msg, msglen, "cannot read %s/%s: %s", dir, STATUS_NAME, strerror(-r));
		return r;
	}
	/* A read in progress may have begun before the file changed: wait for the one after it. */
	target = st.gen + (st.reading ? 2 : 1);
	comm_of(pid, comm, sizeof(comm));
	if (comm[0] && strcmp(comm, "tpserver") != 0) {
		/* SIGHUP ends most programs: a wrong PID must not. */
		snprintf(msg, msglen, "process %d is \"%s\", not tpserver: not signalled", (int)pid, comm);
		return -ESRCH;
	}
	if (*stop)
		return -EINTR; /* the reload is moot: pid is not sent it */
	if (kill(pid, SIGHUP) < 0) {
		r = -errno;
		snprintf(msg, msglen, "cannot signal process %d: %s", (int)pid, strerror(errno));
		return r;
	}
	for (unsigned waited = 0; waited < timeout_ms; waited += POLL_MS) {
		sleep_ms(POLL_MS);
		if (*stop) /* before the outcome: one of a stop that began meanwhile is moot too */
			return -EINTR;
		r = status_read(dir, &st);
		if (r == 0 && st.gen >= target) {
			snprintf(msg, msglen, "%s", st.msg);
			return strcmp(st.state, "applied") == 0 ? 0 : 1;
		}
		if (kill(pid, 0) < 0 && errno == ESRCH) {
			snprintf(msg, msglen, "process %d exited before the reload was done", (int)pid);
			return -ESRCH;
		}
	}
	snprintf(msg, msglen, "no outcome of the reload from process %d within %u ms", (int)pid, timeout_ms);
	return -ETIMEDOUT;
}

/* SPDX-License-Identifier: MIT */
/*
 * config_text: a configuration file's text as libconfig is given it, and
 * its errors as one line (see config_text.h).
 */
#include "config_text.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "config_lex.h"
#include "log.h"

/*
 * A pipe, as a shell's <(...) gives, is read once: a reload would find it
 * empty and apply the defaults.  (A named FIFO is a file a writer may fill
 * again: it only delays the reload, see CONFIG.md.)
 */
static bool is_pipe(const char *path)
{
	struct statfs fs;

	return statfs(path, &fs) == 0 && fs.f_type == PIPEFS_MAGIC;
}

int tp_config_read_text(const char *path, char **ret_text, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0, cap = 0;
	struct stat st;
	FILE *f;
	int r;

	if (is_pipe(path)) {
		snprintf(err, errlen, "%s: a pipe, read once: a reload could not read it again", path);
		return -EINVAL;
	}
	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		/* %m rather than strerror(): this may run beside worker threads. */
		snprintf(err, errlen, "%s: cannot open: %m", path);
		return r;
	}
	/* A directory opens fine for reading and would only fail as "syntax error". */
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		r = -EISDIR;
		errno = EISDIR;
		snprintf(err, errlen, "%s: cannot open: %m", path);
		goto fail;
	}
	for (;;) {
		if (cap - len < 3) { /* room for a line end and the NUL */
			char *bigger;
			cap = cap ? 2 * cap : 4096;
			bigger = realloc(text, cap);
			if (!bigger) {
				r = -ENOMEM;
				snprintf(err, errlen, "%s: out of memory", path);
				goto fail;
			}
			text = bigger;
		}
		len += fread(text + len, 1, cap - len - 2, f);
		if (ferror(f)) {
			r = -EIO;
			snprintf(err, errlen, "%s: read error", path);
			goto fail;
		}
		if (len > TP_CONFIG_LEX_MAX_FILE_BYTES) {
			r = -EFBIG;
			snprintf(err, errlen, "%s: larger than %d bytes", path, TP_CONFIG_LEX_MAX_FILE_BYTES);
			goto fail;
		}
		if (feof(f))
			break;
	}
	/*
	 * libconfig's scanner ends a comment only at a line end, so a last
	 * line that is a comment without one would be a "syntax error": give
	 * it one, as an editor would.  A UTF-8 byte order mark, which some
	 * editors write, is dropped; neither moves a line number.
	 */
	if (len > 0 && text[len - 1] != '\n')
		text[len++] = '\n';
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
		memmove(text, text + 3, len - 3);
		len -= 3;
	}
	text[len] = '\0';
	/* libconfig would stop at a NUL and silently ignore the rest. */
	if (memchr(text, '\0', len)) {
		r = -EINVAL;
		snprintf(err, errlen, "%s: contains a NUL byte (not a text file)", path);
		goto fail;
	}
	fclose(f);
	*ret_text = text;
	return 0;
fail:
	free(text);
	fclose(f);
	return r;
}

int tp_config_read_include(void *ctx, const char *name, char **ret_text, char *err, size_t errlen)
{
	size_t len = 0, cap;
	char *text = NULL;
	struct stat st;
	int fd, r;

	(void)ctx;
	fd = open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open: %m");
		return r;
	}
	r = fstat(fd, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : !S_ISREG(st.st_mode) ? -EINVAL : 0;
	if (r == 0 && st.st_size > TP_CONFIG_LEX_MAX_FILE_BYTES)
		r = -EFBIG;
	cap = r == 0 ? (size_t)st.st_size + 2 : 0;
	if (r == 0 && !(text = malloc(cap)))
		r = -ENOMEM;
	/* Read one byte more than fstat said: a file that grew is read to its end, up to the bound. */
	while (r == 0) {
		ssize_t n = read(fd, text + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -EIO : 0; /* not -errno: EINVAL means something else here */
			break;
		}
		len += (size_t)n;
		if (len > TP_CONFIG_LEX_MAX_FILE_BYTES) {
			r = -EFBIG;
		} else if (len == cap - 1) {
			char *bigger = realloc(text, cap *= 2);
			r = bigger ? 0 : -ENOMEM;
			text = bigger ? bigger : text;
		}
	}
	if (r == 0 && memchr(text, '\0', len))
		r = -EBADMSG;
	switch (r) {
	case 0:
		text[len] = '\0';
		*ret_text = text;
		text = NULL;
		break;
	case -EISDIR:
		snprintf(err, errlen, "is a directory");
		break;
	case -EINVAL:
		snprintf(err, errlen, "not a regular file");
		break;
	case -EFBIG:
		snprintf(err, errlen, "larger than %d bytes", TP_CONFIG_LEX_MAX_FILE_BYTES);
		break;
	case -EBADMSG:
		snprintf(err, errlen, "contains a NUL byte (not a text file)");
		break;
	case -ENOMEM:
		snprintf(err, errlen, "out of memory");
		break;
	default:
		errno = -r;
		snprintf(err, errlen, "cannot read: %m");
	}
	free(text);
	close(fd);
	return r;
}

int tp_config_one_line(int r, char *err, size_t errlen)
{
	if (r < 0)
		tp_log_one_line(err, errlen);
	return r;
}

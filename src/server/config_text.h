/* SPDX-License-Identifier: MIT */
/*
 * config_text: a configuration file's text as libconfig is given it, and
 * an error about it as one line of text.  Used by config_file; never logs.
 */
#ifndef TP_CONFIG_TEXT_H
#define TP_CONFIG_TEXT_H

#include <stddef.h>

/*
 * Read the file at path into a NUL-terminated buffer (*ret_text, the
 * caller's to free): at most 1 MiB, no NUL byte, a directory refused.
 * A last line gets a line end if it has none (libconfig ends a comment
 * only there) and a UTF-8 byte order mark is dropped: neither moves a
 * line number.  Returns 0, or a negative errno with "PATH: problem" in err.
 */
int tp_config_read_text(const char *path, char **ret_text, char *err, size_t errlen);

/*
 * A tp_config_lex_read_fn that reads name only if it is safe to hand to
 * libconfig: opened with O_NONBLOCK (a FIFO never blocks), a regular file
 * by fstat(), readable, at most TP_CONFIG_LEX_MAX_FILE_BYTES, no NUL byte.
 * ctx is unused.  Reasons in err: "cannot open: <strerror>", "is a
 * directory", "not a regular file", "larger than N bytes", "read error",
 * "contains a NUL byte".
 */
int tp_config_read_include(void *ctx, const char *name, char **ret_text, char *err, size_t errlen);

/*
 * When r < 0, make the message in err (errlen bytes, may be 0) one line,
 * whatever bytes the value or the path it quotes holds (tp_log_one_line()).
 * Returns r.
 */
int tp_config_one_line(int r, char *err, size_t errlen);

#endif

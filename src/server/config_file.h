/* SPDX-License-Identifier: MIT */
/*
 * config_file: tpserver's configuration file (libconfig syntax), read on top
 * of the built-in defaults and written back out by --check-config.
 *
 * The schema is the settings table of config.h (tp_settings[]), each
 * setting by its path or its older name.  Every setting in the file must be in the
 * schema: a misspelt name is an error, never silently ignored, because a
 * typo in a limit would otherwise leave the default in force unnoticed.
 * This module never logs; errors go into a caller-supplied buffer as one
 * line, "FILE:LINE: SETTING: problem".
 */
#ifndef TP_CONFIG_FILE_H
#define TP_CONFIG_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"

/*
 * Read the file at path and apply every setting it contains on top of *cfg
 * (which holds defaults, or the previous configuration on reload); settings
 * absent from the file keep their value in *cfg.
 *
 * Returns 0 on success.  On failure *cfg is left untouched, a one-line
 * message is written to err (errlen bytes, may be 0), and the return is:
 *   -ENOENT  the file does not exist ("PATH: cannot open: ...");
 *   -EINVAL  a syntax error, a setting of the wrong type, a value out of
 *            range, or a setting not in the schema ("PATH:LINE: ...");
 *            or a NUL byte in the file ("PATH: ..."); or an @include'd
 *            file that is not a readable regular file of at most 1 MiB, or
 *            nested more than 10 deep ("FILE:LINE: @include \"NAME\": ...",
 *            naming the including file; checked before libconfig opens any);
 *   another negative errno when the file cannot be read: -EACCES, -EISDIR,
 *   -EFBIG (over 1 MiB), -EIO, -ENOMEM ("PATH: ...").
 * Touches only *cfg and err; safe to call again on SIGHUP.
 */
int tp_config_load_file(struct tp_config *cfg, const char *path, char *err, size_t errlen);

/*
 * Where a setting got its value: file and line; file "" for its default;
 * line 0 for a source without lines ("the command line").
 */
struct tp_config_origin {
	char file[4096]; /* the file as it was named, up to PATH_MAX (an @include'd file by its own name) */
	unsigned line;
};

/*
 * tp_config_load_file(), and on success, when origin is not NULL, records
 * in origin[i] (by tp_settings[] index, TP_SETTINGS_MAX entries) the file
 * and line of every setting the file sets; other entries are untouched.
 */
int tp_config_load_file_origin(struct tp_config *cfg, const char *path, struct tp_config_origin *origin,
                               char *err, size_t errlen);

/*
 * Write the file-backed settings of *cfg to f as a valid configuration file
 * that tp_config_load_file() reads back to the same values.  Command-line
 * only fields (config_path, check_config) are not written.  Ignores write
 * errors: the caller checks ferror(f) if it cares.
 */
void tp_config_print(const struct tp_config *cfg, FILE *f);

/*
 * tp_config_print(), with a comment after each setting saying where its
 * value came from: "# from FILE:LINE" ("# from FILE" where the line is
 * 0), or "# default" where origin[i].file is empty.  origin NULL: no such comments.
 */
void tp_config_print_origin(const struct tp_config *cfg, const struct tp_config_origin *origin, FILE *f);

#endif

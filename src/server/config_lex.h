/* SPDX-License-Identifier: MIT */
/*
 * config_lex: an independent reading of a libconfig 1.5 configuration text,
 * for the two things libconfig 1.5 cannot be trusted with, and one it does
 * not say.
 *
 * - Integers: libconfig 1.5 truncates a literal that does not fit 32 bits
 *   while scanning (4294967297 reads as 1), so the only way to know what the
 *   file says is to lex it again.  This module finds every integer setting
 *   (its path, file, line and literal text) so the loader can compare each
 *   value libconfig returns with the text.
 * - @include: libconfig's scanner calls exit() when an included file cannot
 *   be read (a directory), and blocks on a FIFO.  This module finds every
 *   @include line, nested, exactly where libconfig's scanner would, and asks
 *   the caller for each file's text before libconfig sees any of them.
 * - A name written twice in a group: libconfig says "duplicate setting
 *   name" and its line, not which; this module keeps every setting's name,
 *   path and line, so the loader can name the setting and its first line.
 *
 * The tokens come from config_scan, which follows libconfig 1.5's scanner
 * token for token; a comment or string left open at the end of an included
 * file goes on in the including one, as in libconfig.  Scanning does no
 * I/O: included text comes from the caller's reader, and
 config_text's tp_config_read_include() is the one the loader passes in.  An included
 * file may still change between this check and libconfig's own open; the
 * check is for mistakes, not for an attacker who can write the files.
 * Nothing here logs.
 */
#ifndef TP_CONFIG_LEX_H
#define TP_CONFIG_LEX_H

#include <stdbool.h>
#include <stddef.h>

/* libconfig 1.5's own limit on nested @include (MAX_INCLUDE_DEPTH). */
#define TP_CONFIG_LEX_MAX_INCLUDE_DEPTH 10

/*
 * Largest configuration file read (the main file, a drop-in, an include),
 * and the total of all included text.
 */
#define TP_CONFIG_LEX_MAX_FILE_BYTES (1024 * 1024)
#define TP_CONFIG_LEX_MAX_TOTAL_BYTES (8 * 1024 * 1024)

struct tp_config_lex;

/* One integer written in the text: a setting's value or an element of a list or array. */
struct tp_config_lex_int {
	const char *path; /* "pool.workers"; an element of a list or array: "ports.[0]" */
	const char *file; /* the main file's path, or the name an @include gave */
	unsigned line;    /* the line of the setting's name (of the element itself) */
	const char *text; /* the literal exactly as written, e.g. "-0x10" or "16L" */
	long long value;  /* what the text says, when fits */
	bool fits;        /* false: the text's value is outside long long */
};

/* A setting's name as written: the setting's path, and where the name stands. */
struct tp_config_lex_name {
	const char *path; /* "pool.workers" */
	const char *file; /* as in struct tp_config_lex_int */
	unsigned line;
};

/*
 * Supplies the text of an included file: 0 and *ret_text (malloc'd,
 * NUL-terminated, freed by the scanner), or a negative errno with a short
 * reason ("is a directory") in err.  name is the path as the @include
 * wrote it; libconfig opens it relative to the working directory.
 */
typedef int (*tp_config_lex_read_fn)(void *ctx, const char *name, char **ret_text, char *err, size_t errlen);

/*
 * Scan text (the contents of file, NUL-terminated), calling read for each
 * @include in the order libconfig would open them, depth first.
 *
 * Returns 0 with *ret set (free with tp_config_lex_free()), even when the
 * text is not valid libconfig syntax: then tp_config_lex_problem() says where
 * the structure stopped making sense, and integers after that point are not
 * listed (libconfig refuses such a text anyway).  Returns -EINVAL when an
 * @include cannot be followed (read failed, nested deeper than
 * TP_CONFIG_LEX_MAX_INCLUDE_DEPTH, more than TP_CONFIG_LEX_MAX_TOTAL_BYTES,
 * or a malformed name) with "FILE:LINE: @include \"NAME\": reason" in err,
 * naming the including file and line; -ENOMEM.  Never opens a file itself.
 */
int tp_config_lex_scan(const char *file, const char *text, tp_config_lex_read_fn read, void *ctx,
                       struct tp_config_lex **ret, char *err, size_t errlen);

/* Free lx; NULL is fine. */
void tp_config_lex_free(struct tp_config_lex *lx);

/* NULL when the whole text was understood, else "FILE:LINE: problem". */
const char *tp_config_lex_problem(const struct tp_config_lex *lx);

/* The integers in text order; i < tp_config_lex_count(). */
size_t tp_config_lex_count(const struct tp_config_lex *lx);
const struct tp_config_lex_int *tp_config_lex_get(const struct tp_config_lex *lx, size_t i);

/* The integer whose setting path is path, or NULL when the text has none there. */
const struct tp_config_lex_int *tp_config_lex_find(const struct tp_config_lex *lx, const char *path);

/*
 * A setting named a second time in its group on file:line, where libconfig
 * stops with "duplicate setting name": true, with that name and the first in
 * *ret_second and *ret_first; false when no name there was written before.
 */
bool tp_config_lex_repeat(const struct tp_config_lex *lx, const char *file, unsigned line,
                          const struct tp_config_lex_name **ret_second,
                          const struct tp_config_lex_name **ret_first);

/* True when v, a value libconfig returned, is exactly what the literal says. */
bool tp_config_lex_int_is(const struct tp_config_lex_int *in, long long v);

#endif

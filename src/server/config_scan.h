/* SPDX-License-Identifier: MIT */
/*
 * config_scan: libconfig 1.5's scanner (lib/scanner.l), token for token,
 * over text in memory.  Used by config_lex to find what libconfig will see
 * before libconfig sees it.
 *
 * It mirrors flex's longest match over the same patterns: comments (#, //
 * to the end of the line, which must be there; block comments), strings
 * with backslash escapes, names, booleans (true/false in any case),
 * decimal and hex integers with an optional L or LL, floats, punctuation,
 * and "@include" at the start of a line.  Anything else is one byte of
 * garbage, as in libconfig.  The mode (a block comment or a string left
 * open) belongs to the whole scan, not to one file: flex keeps it when it
 * switches to and back from an included file.  No I/O, no allocation.
 */
#ifndef TP_CONFIG_SCAN_H
#define TP_CONFIG_SCAN_H

#include <stdbool.h>
#include <stddef.h>

enum tp_config_tok {
	TP_TOK_EOF, /* the end of this file's text */
	TP_TOK_NAME,
	TP_TOK_EQUALS, /* = or : */
	TP_TOK_COMMA,
	TP_TOK_SEMI,
	TP_TOK_GROUP,
	TP_TOK_GROUP_END,
	TP_TOK_ARRAY,
	TP_TOK_ARRAY_END,
	TP_TOK_LIST,
	TP_TOK_LIST_END,
	TP_TOK_BOOL,
	TP_TOK_INT, /* decimal or hex, maybe with L or LL: see tp_config_scan_int() */
	TP_TOK_FLOAT,
	TP_TOK_STRING, /* one quoted piece; adjacent pieces are one value */
	TP_TOK_GARBAGE,
	TP_TOK_INCLUDE,     /* its name is in src->include */
	TP_TOK_BAD_INCLUDE, /* an escape other than \\ or \", too long, or unterminated */
};

enum tp_config_scan_mode { TP_SCAN_INITIAL, TP_SCAN_COMMENT, TP_SCAN_STRING };

/* The mode of one scan, shared by every file of it, and where it was entered. */
struct tp_config_scan_state {
	enum tp_config_scan_mode mode;
	const char *file; /* the file and line of the opening " or slash-star */
	unsigned line;
};

struct tp_config_token {
	enum tp_config_tok tok;
	const char *start; /* NAME, INT, FLOAT, BOOL, GARBAGE: the bytes in the text */
	size_t len;
	unsigned line; /* 1-based, where the token starts (a STRING: where it ends) */
};

/* One file's text being scanned; set file, base = p = the text, line = 1, state. */
struct tp_config_src {
	const char *file;
	const char *base, *p; /* the NUL-terminated text, and where the scan is */
	unsigned line;
	struct tp_config_scan_state *state; /* shared by every file of one scan */
	bool no_newline;                    /* no newline after p: a # comment here is garbage */
	char include[4096];                 /* the name of the last TP_TOK_INCLUDE, unescaped */
};

/* The next token of s into *ret; TP_TOK_EOF at the end of s (again on every call). */
void tp_config_scan_next(struct tp_config_src *s, struct tp_config_token *ret);

/*
 * The value of a TP_TOK_INT literal (len bytes at text) as the text says it:
 * true and *ret set, or false when the value is outside long long.  Unlike
 * libconfig 1.5, never truncates.
 */
bool tp_config_scan_int(const char *text, size_t len, long long *ret);

#endif

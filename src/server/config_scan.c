/* SPDX-License-Identifier: MIT */
/*
 * config_scan: libconfig 1.5's scanner rules, one function per pattern.
 * flex takes the longest match, and the earlier rule on a tie; names and
 * numbers start with different characters, so only {float} and {integer}
 * ever compete, and {float} comes first in scanner.l.
 */
#include "config_scan.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_xdigit(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '*';
}

static bool is_name_char(char c)
{
	return is_name_start(c) || is_digit(c) || c == '-' || c == '_';
}

static size_t span(const char *p, bool (*ok)(char))
{
	size_t n = 0;
	while (ok(p[n]))
		n++;
	return n;
}

/* [eE][-+]?[0-9]+ */
static size_t exponent_len(const char *p)
{
	size_t n, d;

	if (*p != 'e' && *p != 'E')
		return 0;
	n = 1 + (p[1] == '+' || p[1] == '-');
	d = span(p + n, is_digit);
	return d ? n + d : 0;
}

/* {float}: ([-+]?[0-9]*\.[0-9]*{exp}?)|([-+]?[0-9]+(\.[0-9]*)?{exp}) */
static size_t float_len(const char *p)
{
	size_t n = (*p == '+' || *p == '-'), d = span(p + n, is_digit), e;

	if (p[n + d] == '.') {
		n += d + 1;
		n += span(p + n, is_digit);
		return n + exponent_len(p + n);
	}
	e = d ? exponent_len(p + n + d) : 0;
	return e ? n + d + e : 0;
}

/* {integer} [-+]?[0-9]+, {hex} 0[Xx][0-9A-Fa-f]+, each with an optional L or LL. */
static size_t int_len(const char *p)
{
	size_t n = (*p == '+' || *p == '-'), d;

	if (n == 0 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && (d = span(p + 2, is_xdigit)) > 0)
		n = 2 + d;
	else if ((d = span(p + n, is_digit)) > 0)
		n += d;
	else
		return 0;
	if (p[n] == 'L')
		n += 1 + (p[n + 1] == 'L');
	return n;
}

/* The value of an int_len() literal; false when it is outside long long. */
bool tp_config_scan_int(const char *p, size_t len, long long *ret)
{
	bool neg = *p == '-';
	unsigned long long lim = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX, m = 0;
	unsigned base = 10;

	if (*p == '+' || *p == '-')
		p++, len--;
	if (len > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		base = 16, p += 2, len -= 2;
	while (len > 0 && p[len - 1] == 'L')
		len--;
	for (size_t i = 0; i < len; i++) {
		unsigned d = is_digit(p[i]) ? (unsigned)(p[i] - '0') : (unsigned)((p[i] | 0x20) - 'a' + 10);
		if (m > (lim - d) / base)
			return false;
		m = m * base + d;
	}
	*ret = !neg ? (long long)m : m > (unsigned long long)LLONG_MAX ? LLONG_MIN : -(long long)m;
	return true;
}

static void count_lines(struct tp_config_src *s, const char *from, const char *to)
{
	for (const char *q = from; q < to; q++)
		s->line += *q == '\n';
}

/* {include_open} ^[ \t]*@include[ \t]+\" then the name up to the closing quote. */
static bool scan_include(struct tp_config_src *s, struct tp_config_token *t)
{
	const char *p = s->p + strspn(s->p, " \t");
	size_t n = 0;

	if (strncmp(p, "@include", 8) != 0 || (p[8] != ' ' && p[8] != '\t'))
		return false;
	p += 8 + strspn(p + 8, " \t");
	if (*p != '"')
		return false;
	t->line = s->line;
	t->tok = TP_TOK_INCLUDE;
	for (p++; *p != '"'; p++) {
		/* libconfig knows \\ and \" only; flex would echo anything else to stdout. */
		if (*p == '\\' && (p[1] == '\\' || p[1] == '"'))
			p++;
		else if (*p == '\\' || *p == '\0' || n + 1 == sizeof(s->include))
			t->tok = TP_TOK_BAD_INCLUDE;
		if (t->tok == TP_TOK_BAD_INCLUDE)
			break;
		s->line += *p == '\n';
		s->include[n++] = *p;
	}
	s->include[n] = '\0';
	s->p = t->tok == TP_TOK_INCLUDE ? p + 1 : p;
	return true;
}

/* Skip the rest of a block comment or a string; false when the file ends first. */
static bool finish_mode(struct tp_config_src *s)
{
	const char *p = s->p, *end = p;
	bool done;

	if (s->state->mode == TP_SCAN_COMMENT) {
		end = strstr(p, "*/");
		done = end != NULL;
		end = done ? end + 2 : p + strlen(p);
	} else {
		while (*end && *end != '"')
			end += (end[0] == '\\' && end[1]) ? 2 : 1;
		done = *end == '"';
		end += done;
	}
	count_lines(s, p, end);
	s->p = end;
	return done;
}

static enum tp_config_tok punctuation(char c)
{
	static const char chars[] = "=:,;{}[]()";
	static const enum tp_config_tok toks[] = {
	        TP_TOK_EQUALS,    TP_TOK_EQUALS, TP_TOK_COMMA,     TP_TOK_SEMI, TP_TOK_GROUP,
	        TP_TOK_GROUP_END, TP_TOK_ARRAY,  TP_TOK_ARRAY_END, TP_TOK_LIST, TP_TOK_LIST_END};
	const char *at = c ? strchr(chars, c) : NULL;
	return at ? toks[at - chars] : TP_TOK_GARBAGE;
}

/* A name, a boolean, a number or garbage at s->p (never a blank). */
static void scan_word(struct tp_config_src *s, struct tp_config_token *t)
{
	const char *p = s->p;
	size_t n;

	if (is_name_start(*p)) {
		n = 1 + span(p + 1, is_name_char);
		t->tok = (n == 4 && strncasecmp(p, "true", 4) == 0) ||
		                         (n == 5 && strncasecmp(p, "false", 5) == 0)
		                 ? TP_TOK_BOOL
		                 : TP_TOK_NAME;
	} else {
		size_t f = float_len(p), i = int_len(p);
		/* Longest match; on a tie flex takes the earlier rule, {float}. */
		t->tok = f == 0 && i == 0 ? punctuation(*p) : f >= i ? TP_TOK_FLOAT : TP_TOK_INT;
		n = f == 0 && i == 0 ? 1 : f >= i ? f : i;
	}
	t->start = p;
	t->len = n;
	s->p = p + n;
}

/* The newline ending the line at s->p, or NULL; once there is none, never look again. */
static const char *line_end(struct tp_config_src *s)
{
	const char *nl = s->no_newline ? NULL : strchr(s->p, '\n');

	s->no_newline = !nl;
	return nl;
}

/* The next token of s, or TP_TOK_EOF at its end (the mode may go on in another file). */
void tp_config_scan_next(struct tp_config_src *s, struct tp_config_token *ret)
{
	for (;;) {
		const char *p = s->p;

		if (s->state->mode != TP_SCAN_INITIAL) {
			bool was_string = s->state->mode == TP_SCAN_STRING, done = finish_mode(s);
			ret->line = s->line;
			ret->tok = TP_TOK_EOF;
			if (!done)
				return;
			s->state->mode = TP_SCAN_INITIAL;
			if (was_string) {
				ret->tok = TP_TOK_STRING;
				return;
			}
			continue;
		}
		ret->line = s->line;
		if (*p == '\0') {
			ret->tok = TP_TOK_EOF;
			return;
		}
		/* flex's ^: the start of a buffer, or just after a newline. */
		if ((p == s->base || p[-1] == '\n') && scan_include(s, ret))
			return;
		if (*p == '\n' || *p == ' ' || *p == '\t' || *p == '\r' || *p == '\f') {
			s->line += *p == '\n';
			s->p++;
		} else if (*p == '"' || (p[0] == '/' && p[1] == '*')) {
			*s->state = (struct tp_config_scan_state){.mode = *p == '"' ? TP_SCAN_STRING
			                                                            : TP_SCAN_COMMENT,
			                                          .file = s->file,
			                                          .line = s->line};
			s->p += *p == '"' ? 1 : 2;
		} else if ((*p == '#' || (p[0] == '/' && p[1] == '/')) && line_end(s)) {
			/* {comment} (#|\/\/).*$ needs the newline: at the very end it is garbage. */
			s->p = line_end(s);
		} else {
			scan_word(s, ret);
			return;
		}
	}
}

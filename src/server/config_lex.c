/* SPDX-License-Identifier: MIT */
/*
 * config_lex: enough of libconfig 1.5's grammar (lib/grammar.y) over the
 * tokens of config_scan to name the setting each integer belongs to, and
 * the @include lines followed the way libconfig's scanner follows them.
 *
 * The parser is a small state machine over a stack of open groups, lists
 * and arrays.  It only has to be right where libconfig accepts the text:
 * it stops (saying where) at the first token it cannot place, and libconfig
 * refuses such a text anyway.  The fuzz target fuzz_config_lex.c holds the
 * two to the same answers.  The scanner keeps going after the parser stops,
 * so every @include libconfig might reach is checked.
 */
#include "config_lex.h"

#include "config_scan.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum expect {
	X_NAME,
	X_EQUALS,
	X_VALUE,
	X_AFTER_VALUE,
	X_ELEM,
	X_ELEM_OR_END,
	X_AFTER_ELEM,
	X_DONE,
	X_FAILED
};

enum kind { K_GROUP, K_LIST, K_ARRAY };

#define MAX_NESTING 64
#define MAX_PATH 512

struct frame {
	enum kind kind;
	size_t base; /* length of the path of the setting this group, list or array is */
	unsigned index;
};

/* An integer and the copies its public view points to. */
struct entry {
	struct tp_config_lex_int pub;
	char *path, *text;
};

/* A setting's name, and the copy of its path its public view points to. */
struct name {
	struct tp_config_lex_name pub;
	char *path;
};

struct tp_config_lex {
	struct tp_config_scan_state scan;
	tp_config_lex_read_fn read;
	void *ctx;
	size_t total;
	char **files; /* every file name an entry may point to */
	size_t n_files;

	enum expect expect;
	bool last_string; /* "a" "b" is one string value */
	struct frame frames[MAX_NESTING];
	size_t depth;
	char path[MAX_PATH];
	size_t path_len;
	unsigned value_line;

	struct entry *ints;
	size_t n_ints, cap_ints;
	struct name *names;
	size_t n_names, cap_names;
	bool oom;
	char problem[TP_MSG_MAX]; /* FILE:LINE: why, the file a path of up to PATH_MAX */
};

static void fail_parse(struct tp_config_lex *lx, const struct tp_config_src *s, unsigned line,
                       const char *why)
{
	if (lx->expect == X_FAILED)
		return;
	lx->expect = X_FAILED;
	snprintf(lx->problem, sizeof(lx->problem), "%s:%u: %s", s->file, line, why);
}

/* Point the path at a member (name) or an element (name NULL) of the innermost frame. */
static bool set_path(struct tp_config_lex *lx, const char *name, size_t len)
{
	struct frame *f = &lx->frames[lx->depth];
	size_t room = sizeof(lx->path) - f->base;
	const char *dot = f->base ? "." : "";
	int n = name ? snprintf(lx->path + f->base, room, "%s%.*s", dot, (int)len, name)
	             : snprintf(lx->path + f->base, room, "%s[%u]", dot, f->index++);

	lx->path_len = f->base + (size_t)n;
	return n >= 0 && (size_t)n < room;
}

/* Room for one more of n items of size bytes in *items (capacity *cap); false (and oom) when none. */
static bool grow(struct tp_config_lex *lx, void **items, size_t n, size_t *cap, size_t size)
{
	size_t more = *cap ? 2 * *cap : 16;
	void *bigger;

	if (n < *cap)
		return true;
	bigger = realloc(*items, more * size);
	if (!bigger) {
		lx->oom = true;
		return false;
	}
	*items = bigger;
	*cap = more;
	return true;
}

static void add_name(struct tp_config_lex *lx, const struct tp_config_src *s, unsigned line)
{
	struct name *e;

	if (!grow(lx, (void **)&lx->names, lx->n_names, &lx->cap_names, sizeof(*lx->names)))
		return;
	e = &lx->names[lx->n_names];
	e->path = strndup(lx->path, lx->path_len);
	e->pub = (struct tp_config_lex_name){e->path, s->file, line};
	lx->n_names += e->path != NULL;
	lx->oom |= e->path == NULL;
}

static void add_int(struct tp_config_lex *lx, const struct tp_config_src *s, const struct tp_config_token *t)
{
	struct entry *e;

	if (!grow(lx, (void **)&lx->ints, lx->n_ints, &lx->cap_ints, sizeof(*lx->ints)))
		return;
	e = &lx->ints[lx->n_ints];
	e->path = strndup(lx->path, lx->path_len);
	e->text = strndup(t->start, t->len);
	if (!e->path || !e->text) {
		free(e->path);
		free(e->text);
		lx->oom = true;
		return;
	}
	e->pub = (struct tp_config_lex_int){e->path, s->file, lx->value_line, e->text, 0, false};
	e->pub.fits = tp_config_scan_int(t->start, t->len, &e->pub.value);
	lx->n_ints++;
}

/* The value whose path is lx->path is complete: back to its frame. */
static void end_value(struct tp_config_lex *lx, bool was_string)
{
	const struct frame *f = &lx->frames[lx->depth];

	lx->path_len = f->base;
	lx->last_string = was_string;
	lx->expect = f->kind == K_GROUP ? X_AFTER_VALUE : X_AFTER_ELEM;
}

static void begin_value(struct tp_config_lex *lx, const struct tp_config_src *s,
                        const struct tp_config_token *t)
{
	enum kind kind = t->tok == TP_TOK_GROUP ? K_GROUP : t->tok == TP_TOK_LIST ? K_LIST : K_ARRAY;

	switch (t->tok) {
	case TP_TOK_INT:
	case TP_TOK_BOOL:
	case TP_TOK_FLOAT:
	case TP_TOK_STRING:
		if (t->tok == TP_TOK_INT)
			add_int(lx, s, t);
		end_value(lx, t->tok == TP_TOK_STRING);
		return;
	case TP_TOK_GROUP:
	case TP_TOK_LIST:
	case TP_TOK_ARRAY:
		if (lx->frames[lx->depth].kind == K_ARRAY || lx->depth + 1 == MAX_NESTING) {
			/* An array holds only plain values. */
			fail_parse(lx, s, t->line,
			           lx->frames[lx->depth].kind == K_ARRAY ? "syntax error"
			                                                 : "nested too deep to check");
			return;
		}
		lx->frames[++lx->depth] = (struct frame){kind, lx->path_len, 0};
		lx->expect = kind == K_GROUP ? X_NAME : X_ELEM_OR_END;
		return;
	default:
		fail_parse(lx, s, t->line, "syntax error");
	}
}

static bool closes(const struct tp_config_lex *lx, enum tp_config_tok tok)
{
	switch (lx->frames[lx->depth].kind) {
	case K_GROUP:
		return tok == TP_TOK_GROUP_END && lx->depth > 0;
	case K_LIST:
		return tok == TP_TOK_LIST_END;
	case K_ARRAY:
		return tok == TP_TOK_ARRAY_END;
	}
	return false;
}

/* In a group (or the root), where a setting may start or the group end. */
static void member(struct tp_config_lex *lx, const struct tp_config_src *s, const struct tp_config_token *t)
{
	if (t->tok == TP_TOK_NAME) {
		lx->value_line = t->line;
		lx->expect = X_EQUALS;
		if (set_path(lx, t->start, t->len))
			add_name(lx, s, t->line);
		else
			fail_parse(lx, s, t->line, "nested too deep to check");
	} else if (closes(lx, t->tok)) {
		lx->depth--;
		end_value(lx, false);
	} else if (t->tok == TP_TOK_EOF && lx->depth == 0) {
		lx->expect = X_DONE;
	} else {
		fail_parse(lx, s, t->line, "syntax error");
	}
}

/* One token through the grammar: setting = name (=|:) value [;|,], lists and arrays comma-separated. */
static void feed(struct tp_config_lex *lx, const struct tp_config_src *s, const struct tp_config_token *t)
{
	enum expect x = lx->expect;

	if (x == X_DONE || x == X_FAILED)
		return;
	/* "a" "b" is one string. */
	if ((x == X_AFTER_VALUE || x == X_AFTER_ELEM) && t->tok == TP_TOK_STRING && lx->last_string)
		return;
	if (x == X_AFTER_VALUE) {
		lx->expect = X_NAME;
		/* The terminator is optional. */
		if (t->tok != TP_TOK_SEMI && t->tok != TP_TOK_COMMA)
			member(lx, s, t);
	} else if (x == X_NAME) {
		member(lx, s, t);
	} else if (x == X_EQUALS) {
		lx->expect = X_VALUE;
		if (t->tok != TP_TOK_EQUALS)
			fail_parse(lx, s, t->line, "syntax error");
	} else if (x == X_VALUE) {
		begin_value(lx, s, t);
	} else if ((x == X_AFTER_ELEM || x == X_ELEM_OR_END) && closes(lx, t->tok)) {
		lx->depth--;
		end_value(lx, false);
	} else if (x == X_AFTER_ELEM) {
		lx->expect = X_ELEM;
		if (t->tok != TP_TOK_COMMA)
			fail_parse(lx, s, t->line, "syntax error");
	} else {
		lx->value_line = t->line;
		if (set_path(lx, NULL, 0))
			begin_value(lx, s, t);
		else
			fail_parse(lx, s, t->line, "nested too deep to check");
	}
}

static int scan_file(struct tp_config_lex *lx, const char *file, const char *text, unsigned depth, char *err,
                     size_t errlen);

/* Follow the @include just scanned in s: read, check, scan the file, in place. */
static int follow(struct tp_config_lex *lx, const struct tp_config_src *s, const struct tp_config_token *t,
                  unsigned depth, char *err, size_t errlen)
{
	char why[TP_MSG_MAX] = "", *text = NULL, *name = NULL, **files;
	int r = -EINVAL;

	if (t->tok == TP_TOK_BAD_INCLUDE) {
		snprintf(why, sizeof(why),
		         "a name with \\ escapes other than \\\\ or \\\", too long, or unterminated");
	} else if (depth >= TP_CONFIG_LEX_MAX_INCLUDE_DEPTH) {
		snprintf(why, sizeof(why), "nested more than %d deep", TP_CONFIG_LEX_MAX_INCLUDE_DEPTH);
	} else if ((r = lx->read(lx->ctx, s->include, &text, why, sizeof(why))) < 0) {
		r = r == -ENOMEM ? r : -EINVAL;
	} else if ((lx->total += strlen(text)) > TP_CONFIG_LEX_MAX_TOTAL_BYTES) {
		snprintf(why, sizeof(why), "more than %d bytes included in all",
		         TP_CONFIG_LEX_MAX_TOTAL_BYTES);
		r = -EINVAL;
	}
	if (why[0] || r < 0) {
		snprintf(err, errlen, "%s:%u: @include \"%s\": %s", s->file, t->line, s->include, why);
		goto out;
	}
	files = realloc(lx->files, (lx->n_files + 1) * sizeof(*files));
	name = strdup(s->include);
	if (files)
		lx->files = files;
	if (!files || !name) {
		free(name);
		r = -ENOMEM;
		goto out;
	}
	lx->files[lx->n_files++] = name;
	r = scan_file(lx, name, text, depth + 1, err, errlen);
out:
	free(text);
	return r;
}

static int scan_file(struct tp_config_lex *lx, const char *file, const char *text, unsigned depth, char *err,
                     size_t errlen)
{
	struct tp_config_src s = {.file = file, .base = text, .p = text, .line = 1, .state = &lx->scan};
	struct tp_config_token t;

	for (;;) {
		tp_config_scan_next(&s, &t);
		if (t.tok == TP_TOK_EOF) {
			/* Only the main file's end is the end: an included one's goes on in its includer. */
			if (depth == 0 && lx->scan.mode == TP_SCAN_COMMENT) {
				/* libconfig would take the file as it is, without the rest. */
				snprintf(err, errlen,
				         "%s:%u: a comment opened with /* is not closed: nothing after it "
				         "would be read",
				         lx->scan.file, lx->scan.line);
				return -EINVAL;
			}
			if (depth == 0)
				feed(lx, &s, &t);
			return 0;
		}
		if (t.tok == TP_TOK_INCLUDE || t.tok == TP_TOK_BAD_INCLUDE) {
			int r = follow(lx, &s, &t, depth, err, errlen);
			if (r < 0)
				return r;
			continue;
		}
		feed(lx, &s, &t);
	}
}

int tp_config_lex_scan(const char *file, const char *text, tp_config_lex_read_fn read, void *ctx,
                       struct tp_config_lex **ret, char *err, size_t errlen)
{
	struct tp_config_lex *lx = calloc(1, sizeof(*lx));
	int r = -ENOMEM;

	if (!lx || !(lx->files = malloc(sizeof(*lx->files))) || !(lx->files[0] = strdup(file))) {
		snprintf(err, errlen, "%s: out of memory", file);
		goto fail;
	}
	lx->n_files = 1;
	lx->read = read;
	lx->ctx = ctx;
	r = scan_file(lx, lx->files[0], text, 0, err, errlen);
	if (r < 0)
		goto fail;
	if (lx->oom) {
		snprintf(err, errlen, "%s: out of memory", file);
		r = -ENOMEM;
		goto fail;
	}
	*ret = lx;
	return 0;
fail:
	tp_config_lex_free(lx);
	return r;
}

void tp_config_lex_free(struct tp_config_lex *lx)
{
	if (!lx)
		return;
	for (size_t i = 0; i < lx->n_ints; i++) {
		free(lx->ints[i].path);
		free(lx->ints[i].text);
	}
	for (size_t i = 0; i < lx->n_names; i++)
		free(lx->names[i].path);
	for (size_t i = 0; i < lx->n_files; i++)
		free(lx->files[i]);
	free(lx->files);
	free(lx->ints);
	free(lx->names);
	free(lx);
}

const char *tp_config_lex_problem(const struct tp_config_lex *lx)
{
	return lx->expect == X_FAILED ? lx->problem : NULL;
}

size_t tp_config_lex_count(const struct tp_config_lex *lx)
{
	return lx->n_ints;
}

const struct tp_config_lex_int *tp_config_lex_get(const struct tp_config_lex *lx, size_t i)
{
	return i < lx->n_ints ? &lx->ints[i].pub : NULL;
}

const struct tp_config_lex_int *tp_config_lex_find(const struct tp_config_lex *lx, const char *path)
{
	for (size_t i = 0; i < lx->n_ints; i++)
		if (strcmp(lx->ints[i].path, path) == 0)
			return &lx->ints[i].pub;
	return NULL;
}

bool tp_config_lex_repeat(const struct tp_config_lex *lx, const char *file, unsigned line,
                          const struct tp_config_lex_name **ret_second,
                          const struct tp_config_lex_name **ret_first)
{
	for (size_t i = 0; i < lx->n_names; i++) {
		const struct tp_config_lex_name *second = &lx->names[i].pub;

		if (second->line != line || strcmp(second->file, file) != 0)
			continue;
		for (size_t j = 0; j < i; j++)
			if (strcmp(lx->names[j].pub.path, second->path) == 0) {
				*ret_second = second;
				*ret_first = &lx->names[j].pub;
				return true;
			}
	}
	return false;
}

bool tp_config_lex_int_is(const struct tp_config_lex_int *in, long long v)
{
	return in->fits && in->value == v;
}

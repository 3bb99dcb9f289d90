/* SPDX-License-Identifier: MIT */
/*
 * config_file: read and write tpserver's libconfig configuration file.
 *
 * Loading walks every setting the file contains, groups included, and looks
 * each one up in the schema, instead of looking the schema up in the file:
 * that way a setting the schema does not know (a typo such as pool.workerz)
 * is reported with its line rather than silently ignored.  The schema is
 * tp_settings[] from config.c, so a setting is defined once for the file,
 * the flags and this module's output.  A setting's older name (the
 * top-level shutdown_timeout_s and log_level) is accepted as well, but one
 * setting given under both names is an error.
 */
#include "config_file.h"

#include "config_addr.h"
#include "config_lex.h"
#include "config_text.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libconfig.h>

struct load {
	struct tp_config *cfg; /* the copy being filled, never the caller's */
	const char *path;
	const struct tp_config_lex *lex; /* the integers as the text writes them */
	char *err;
	size_t errlen;
	const config_setting_t *seen[TP_SETTINGS_MAX]; /* by tp_settings[] index: where set */
};

/*
 * Compare a schema path such as "pool.workers" with the setting called name
 * inside the group at gpath ("" for the root).  Returns what follows the
 * match in full ("" for an exact match, ".rest" when name is a group on the
 * way to full), or NULL when they differ.
 */
static const char *match(const char *full, const char *gpath, const char *name)
{
	size_t glen = strlen(gpath);
	size_t nlen = strlen(name);

	if (glen > 0) {
		if (strncmp(full, gpath, glen) != 0 || full[glen] != '.')
			return NULL;
		full += glen + 1;
	}
	if (strncmp(full, name, nlen) != 0)
		return NULL;
	return full + nlen;
}

static bool is_exactly(const char *full, const char *gpath, const char *name)
{
	const char *rest = match(full, gpath, name);
	return rest && *rest == '\0';
}

static bool is_prefix(const char *full, const char *gpath, const char *name)
{
	const char *rest = match(full, gpath, name);
	return rest && *rest == '.';
}

/* The setting called name in the group at gpath, by its path or its older name. */
static const struct tp_setting *find_setting(const char *gpath, const char *name)
{
	for (const struct tp_setting *s = tp_settings; s->path; s++)
		if (is_exactly(s->path, gpath, name) ||
		    (s->file_alias && is_exactly(s->file_alias, gpath, name)))
			return s;
	return NULL;
}

/* A group is known when some setting of the schema lives under it. */
static bool is_known_group(const char *gpath, const char *name)
{
	for (const struct tp_setting *s = tp_settings; s->path; s++)
		if (is_prefix(s->path, gpath, name) ||
		    (s->file_alias && is_prefix(s->file_alias, gpath, name)))
			return true;
	return false;
}

/* Report a problem with setting s as "FILE:LINE: GROUP.NAME: message". */
__attribute__((format(printf, 4, 5))) static int fail(const struct load *ld, const config_setting_t *s,
                                                      const char *gpath, const char *fmt, ...)
{
	/* An @include'd file names its own settings; the main file has no name. */
	const char *file = config_setting_source_file(s) ? config_setting_source_file(s) : ld->path;
	char msg[TP_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(ld->err, ld->errlen, "%s:%u: %s%s%s: %s", file, (unsigned)config_setting_source_line(s),
	         gpath, gpath[0] ? "." : "", config_setting_name(s), msg);
	return -EINVAL;
}

static int apply_int(const struct load *ld, const config_setting_t *s, const char *gpath,
                     const struct tp_setting *r)
{
	/* libconfig 1.5 truncates what does not fit 32 bits: 4294967297 reads as 1. */
	const struct tp_config_lex_int *in;
	char path[128];
	long long v;

	/* The path as the file writes it (an older name, too), as the lexer records it. */
	snprintf(path, sizeof(path), "%s%s%s", gpath, gpath[0] ? "." : "", config_setting_name(s));
	in = tp_config_lex_find(ld->lex, path);

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		v = config_setting_get_int(s);
		break;
	case CONFIG_TYPE_INT64:
		/* "16L" is a valid way to write 16; only the value matters. */
		v = config_setting_get_int64(s);
		break;
	default:
		return fail(ld, s, gpath, "expected an integer");
	}
	if (!in)
		return fail(ld, s, gpath, "cannot check the value against the text (%s)",
		            tp_config_lex_problem(ld->lex) ? tp_config_lex_problem(ld->lex) : "not found");
	if (!tp_config_lex_int_is(in, v))
		return fail(ld, s, gpath, "%s is out of range (%d to %d)", in->text, r->min, r->max);
	if (v < r->min || v > r->max)
		return fail(ld, s, gpath, "%lld is out of range (%d to %d)", v, r->min, r->max);
	*(int *)((char *)ld->cfg + r->offset) = (int)v;
	return 0;
}

/* A string, or the name of an enum's value. */
static int apply_text(const struct load *ld, const config_setting_t *s, const char *gpath,
                      const struct tp_setting *set)
{
	char range[128];
	const char *v;
	size_t len;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail(ld, s, gpath, "expected a string");
	v = config_setting_get_string(s);
	len = strlen(v);
	if (set->type == TP_SETTING_STRING && len < (size_t)set->min)
		return fail(ld, s, gpath, "must not be empty");
	if (set->type == TP_SETTING_STRING && len > (size_t)set->max)
		return fail(ld, s, gpath, "longer than %d bytes", set->max);
	if (tp_config_setting_parse(ld->cfg, set, v) < 0)
		return fail(ld, s, gpath, "invalid value \"%s\" (expected %s)", v,
		            tp_config_setting_range(set, range, sizeof(range)));
	return 0;
}

static int apply_addresses(const struct load *ld, const config_setting_t *s, const char *gpath,
                           const struct tp_setting *set)
{
	char why[TP_MSG_MAX];
	if (tp_config_addr_read(ld->cfg, set, s, why, sizeof(why)) < 0)
		return fail(ld, s, gpath, "%s", why);
	return 0;
}

/* Apply setting s, which the file sets as set (by its path or its older name). */
static int apply(struct load *ld, const config_setting_t *s, const char *gpath, const struct tp_setting *set)
{
	const config_setting_t **seen = &ld->seen[set - tp_settings];

	if (*seen)
		return fail(ld, s, gpath, "already set on line %u",
		            (unsigned)config_setting_source_line(*seen));
	*seen = s;
	switch (set->type) {
	case TP_SETTING_INT:
		return apply_int(ld, s, gpath, set);
	case TP_SETTING_ENUM:
	case TP_SETTING_STRING:
		return apply_text(ld, s, gpath, set);
	case TP_SETTING_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			return fail(ld, s, gpath, "expected true or false");
		*(bool *)((char *)ld->cfg + set->offset) = config_setting_get_bool(s) != 0;
		return 0;
	case TP_SETTING_ADDRESSES:
		return apply_addresses(ld, s, gpath, set);
	}
	return fail(ld, s, gpath, "unknown setting");
}

/* Apply every member of group (whose path is gpath, "" for the root). */
static int walk(struct load *ld, const config_setting_t *group, const char *gpath)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		const struct tp_setting *set;
		int ret;

		if ((set = find_setting(gpath, name)) != NULL) {
			ret = apply(ld, s, gpath, set);
		} else if (is_known_group(gpath, name)) {
			char child[128];

			if (!config_setting_is_group(s))
				return fail(ld, s, gpath, "expected a group");
			/* Cannot truncate: child is a prefix of a schema name. */
			snprintf(child, sizeof(child), "%s%s%s", gpath, gpath[0] ? "." : "", name);
			ret = walk(ld, s, child);
		} else {
			ret = fail(ld, s, gpath, "unknown setting");
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The file and line of each setting the file set. */
static void record_origins(const struct load *ld, struct tp_config_origin *origin)
{
	for (size_t i = 0; i < TP_SETTINGS_MAX; i++) {
		const config_setting_t *s = ld->seen[i];
		const char *file;

		if (!s)
			continue;
		file = config_setting_source_file(s) ? config_setting_source_file(s) : ld->path;
		snprintf(origin[i].file, sizeof(origin[i].file), "%s", file);
		origin[i].line = config_setting_source_line(s);
	}
}

/* The line of text's last byte other than white space (0 when there is none). */
static unsigned last_line(const char *text)
{
	unsigned line = 1, last = 0;

	for (const char *p = text; *p; p++) {
		if (*p == '\n')
			line++;
		else if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\f')
			last = line;
	}
	return last;
}

/*
 * What libconfig refused, "FILE:LINE: ...", naming the setting a name
 * written twice is.  libconfig puts an error at the end of the text on the
 * line after the last (or further): that is the last line with anything on it.
 */
static void syntax_error(const config_t *c, const struct tp_config_lex *lex, const char *path,
                         const char *text, char *err, size_t errlen)
{
	const char *file = config_error_file(c) ? config_error_file(c) : path;
	const struct tp_config_lex_name *second, *first;
	unsigned line = (unsigned)config_error_line(c);

	if (strcmp(config_error_text(c), "duplicate setting name") == 0 &&
	    tp_config_lex_repeat(lex, file, line, &second, &first)) {
		if (strcmp(first->file, file) == 0)
			snprintf(err, errlen, "%s:%u: %s: already set on line %u", file, line, second->path,
			         first->line);
		else
			snprintf(err, errlen, "%s:%u: %s: already set in %s:%u", file, line, second->path,
			         first->file, first->line);
		return;
	}
	if (strcmp(file, path) == 0 && line > last_line(text) && last_line(text) > 0) {
		snprintf(err, errlen, "%s:%u: %s at the end of the file", file, last_line(text),
		         config_error_text(c));
		return;
	}
	snprintf(err, errlen, "%s:%u: %s", file, line, config_error_text(c));
}

int tp_config_load_file(struct tp_config *cfg, const char *path, char *err, size_t errlen)
{
	return tp_config_load_file_origin(cfg, path, NULL, err, errlen);
}

int tp_config_load_file_origin(struct tp_config *cfg, const char *path, struct tp_config_origin *origin,
                               char *err, size_t errlen)
{
	struct tp_config copy = *cfg;
	struct load ld = {.cfg = &copy, .path = path, .err = err, .errlen = errlen};
	struct tp_config_lex *lex = NULL;
	char *text = NULL;
	config_t c;
	int r;

	config_init(&c);
	r = tp_config_read_text(path, &text, err, errlen);
	if (r < 0)
		goto out;
	/* Before libconfig sees the text: its scanner exit()s on an @include it cannot read. */
	r = tp_config_lex_scan(path, text, tp_config_read_include, NULL, &lex, err, errlen);
	if (r < 0)
		goto out;
	ld.lex = lex;

	if (config_read_string(&c, text) != CONFIG_TRUE) {
		syntax_error(&c, lex, path, text, err, errlen);
		r = -EINVAL;
		goto out;
	}
	/*
	 * Each setting is checked against its range here; rules across
	 * settings (tp_config_validate) are not: a drop-in or a flag read
	 * later may still change the other side.
	 */
	r = walk(&ld, config_root_setting(&c), "");
	if (r < 0)
		goto out;
	*cfg = copy;
	if (origin)
		record_origins(&ld, origin);
	r = 0;
out:
	config_destroy(&c);
	tp_config_lex_free(lex);
	free(text);
	return tp_config_one_line(r, err, errlen);
}

/* Write s as a libconfig string literal that reads back byte for byte. */
static void print_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void print_setting(const struct tp_config *cfg, const struct tp_config_origin *origin, FILE *f,
                          const struct tp_setting *s, const char *leaf, const char *indent)
{
	const struct tp_config_origin *o = origin ? &origin[s - tp_settings] : NULL;
	const char *sep = " # ";

	fprintf(f, "%s%s = ", indent, leaf);
	switch (s->type) {
	case TP_SETTING_INT:
		fprintf(f, "%d;", tp_config_setting_int(cfg, s));
		break;
	case TP_SETTING_ENUM:
		print_quoted(f, s->name(tp_config_setting_int(cfg, s)));
		fputc(';', f);
		break;
	case TP_SETTING_STRING:
		print_quoted(f, (const char *)cfg + s->offset);
		fputc(';', f);
		break;
	case TP_SETTING_BOOL:
		fprintf(f, "%s;", *(const bool *)((const char *)cfg + s->offset) ? "true" : "false");
		break;
	case TP_SETTING_ADDRESSES:
		tp_config_addr_print(f, (const char *)cfg + s->offset);
		break;
	}
	/* The effective value of an automatic setting is what one checks for. */
	if (s->offset == offsetof(struct tp_config, stall_timeout_ms) && cfg->stall_timeout_ms == 0) {
		fprintf(f, " # automatic: max_sleep_ms + %d = %d", TP_STALL_MARGIN_MS,
		        tp_config_stall_ms(cfg));
		sep = "; ";
	}
	if (o && o->file[0] && o->line)
		fprintf(f, "%sfrom %s:%u", sep, o->file, o->line);
	else if (o && o->file[0])
		fprintf(f, "%sfrom %s", sep, o->file);
	else if (o)
		fprintf(f, "%sdefault", sep);
	fputc('\n', f);
}

/*
 * The leaf name of a schema path directly in the group of glen bytes at the
 * start of group (glen 0: the root), or NULL when it lives elsewhere.
 */
static const char *leaf_in(const char *name, const char *group, size_t glen)
{
	if (glen == 0)
		return strchr(name, '.') ? NULL : name;
	if (strncmp(name, group, glen) != 0 || name[glen] != '.')
		return NULL;
	return name + glen + 1;
}

/* Print the members of one group (glen 0: the root), in the table's order. */
static void print_members(const struct tp_config *cfg, const struct tp_config_origin *origin, FILE *f,
                          const char *group, size_t glen)
{
	const char *indent = glen ? "  " : "";
	const char *leaf;

	if (glen)
		fprintf(f, "%.*s = {\n", (int)glen, group);
	for (const struct tp_setting *s = tp_settings; s->path; s++)
		if ((leaf = leaf_in(s->path, group, glen)) != NULL)
			print_setting(cfg, origin, f, s, leaf, indent);
	if (glen)
		fputs("};\n", f);
}

void tp_config_print(const struct tp_config *cfg, FILE *f)
{
	tp_config_print_origin(cfg, NULL, f);
}

void tp_config_print_origin(const struct tp_config *cfg, const struct tp_config_origin *origin, FILE *f)
{
	/* Groups in the order they first appear in the table. */
	for (const struct tp_setting *s = tp_settings; s->path; s++) {
		const char *dot = strchr(s->path, '.');
		size_t glen = dot ? (size_t)(dot - s->path) : 0;
		bool seen = false;

		if (!glen)
			continue;
		for (const struct tp_setting *q = tp_settings; q != s && !seen; q++)
			seen = leaf_in(q->path, s->path, glen) != NULL;
		if (!seen)
			print_members(cfg, origin, f, s->path, glen);
	}
	print_members(cfg, origin, f, "", 0);
}

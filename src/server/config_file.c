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

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libconfig.h>

/* A configuration file larger than this is a mistake, not a configuration. */
#define MAX_FILE_BYTES (1024 * 1024)

struct load {
	struct tp_config *cfg; /* the copy being filled, never the caller's */
	const char *path;
	const char *text; /* the whole file, for literal_differs() */
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
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(ld->err, ld->errlen, "%s:%u: %s%s%s: %s", file, (unsigned)config_setting_source_line(s),
	         gpath, gpath[0] ? "." : "", config_setting_name(s), msg);
	return -EINVAL;
}

/*
 * Read the file at path into a NUL-terminated buffer.  Returns 0, or a
 * negative errno with "PATH: problem" in err.
 */
static int read_text(const char *path, char **ret_text, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0, cap = 0;
	struct stat st;
	FILE *f;
	int r;

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
		if (cap - len < 2) {
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
		len += fread(text + len, 1, cap - len - 1, f);
		if (ferror(f)) {
			r = -EIO;
			snprintf(err, errlen, "%s: read error", path);
			goto fail;
		}
		if (feof(f))
			break;
		if (len > MAX_FILE_BYTES) {
			r = -EFBIG;
			snprintf(err, errlen, "%s: larger than %d bytes", path, MAX_FILE_BYTES);
			goto fail;
		}
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

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-' || c == '*';
}

/*
 * libconfig 1.5 stores a decimal literal too big for an int (written without
 * the L suffix) truncated to 32 bits, so "workers = 4294967297;" would read
 * as 1 and pass the range check.  Find the literal assigned to name at or
 * after the start of line in text and compare it with the value v libconfig
 * stored.  Returns true, with the literal in ret_lit/ret_len, when they
 * differ; false when they agree or the literal cannot be found (libconfig
 * parsed the file, so trusting it is the only sound fallback).
 */
static bool literal_differs(const char *text, unsigned line, const char *name, long long v,
                            const char **ret_lit, int *ret_len)
{
	static const char ws[] = " \t\r\n\f\v";
	const char *p = text;
	size_t nlen = strlen(name);

	for (unsigned l = 1; l < line && p; l++) {
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	while (p && *p) {
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			if (*p)
				p++;
		} else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			p += strcspn(p, "\n");
		} else if (p[0] == '/' && p[1] == '*') {
			p = strstr(p + 2, "*/");
			if (p)
				p += 2;
		} else if (is_name_char(*p)) {
			const char *tok = p, *q, *lit;
			char *end;
			long long lv;

			while (is_name_char(*p))
				p++;
			if ((size_t)(p - tok) != nlen || strncmp(tok, name, nlen) != 0)
				continue;
			q = p + strspn(p, ws);
			if (*q != '=' && *q != ':')
				continue;
			lit = q + 1 + strspn(q + 1, ws);
			q = lit + (*lit == '+' || *lit == '-');
			if (*q < '0' || *q > '9')
				return false;
			errno = 0;
			lv = strtoll(lit, &end, q[0] == '0' && (q[1] == 'x' || q[1] == 'X') ? 16 : 10);
			*ret_lit = lit;
			*ret_len = (int)(end - lit);
			return errno == ERANGE || lv != v;
		} else {
			p++;
		}
	}
	return false;
}

static int apply_int(const struct load *ld, const config_setting_t *s, const char *gpath,
                     const struct tp_setting *r)
{
	const char *text = ld->text;
	char *included = NULL;
	const char *lit;
	long long v;
	int len, ret;

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

	if (config_setting_source_file(s)) {
		/* Only @include'd settings name a file: rare, so read it again here. */
		text = read_text(config_setting_source_file(s), &included, NULL, 0) == 0 ? included : NULL;
	}
	if (text &&
	    literal_differs(text, config_setting_source_line(s), config_setting_name(s), v, &lit, &len)) {
		ret = fail(ld, s, gpath, "%.*s is out of range (%d to %d)", len, lit, r->min, r->max);
	} else if (v < r->min || v > r->max) {
		ret = fail(ld, s, gpath, "%lld is out of range (%d to %d)", v, r->min, r->max);
	} else {
		*(int *)((char *)ld->cfg + r->offset) = (int)v; /* in range: cannot fail */
		ret = 0;
	}
	free(included);
	return ret;
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
	if (tp_setting_parse(ld->cfg, set, v) < 0)
		return fail(ld, s, gpath, "invalid value \"%s\" (expected %s)", v,
		            tp_setting_range(set, range, sizeof(range)));
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
		break; /* no setting of this type yet */
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

int tp_config_load_file(struct tp_config *cfg, const char *path, char *err, size_t errlen)
{
	struct tp_config copy = *cfg;
	struct load ld = {.cfg = &copy, .path = path, .err = err, .errlen = errlen};
	char *text = NULL;
	char msg[512];
	config_t c;
	int r;

	r = read_text(path, &text, err, errlen);
	if (r < 0)
		return r;
	ld.text = text;

	config_init(&c);
	if (config_read_string(&c, text) != CONFIG_TRUE) {
		const char *file = config_error_file(&c) ? config_error_file(&c) : path;
		snprintf(err, errlen, "%s:%d: %s", file, config_error_line(&c), config_error_text(&c));
		r = -EINVAL;
		goto out;
	}
	r = walk(&ld, config_root_setting(&c), "");
	if (r < 0)
		goto out;
	/* Cross-setting rules have no single line to blame: name the file. */
	if (tp_config_validate(&copy, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "%s: %s", path, msg);
		r = -EINVAL;
		goto out;
	}
	*cfg = copy;
	r = 0;
out:
	config_destroy(&c);
	free(text);
	return r;
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

static void print_setting(const struct tp_config *cfg, FILE *f, const struct tp_setting *s, const char *leaf,
                          const char *indent)
{
	fprintf(f, "%s%s = ", indent, leaf);
	switch (s->type) {
	case TP_SETTING_INT:
		fprintf(f, "%d;", tp_setting_int(cfg, s));
		break;
	case TP_SETTING_ENUM:
		print_quoted(f, s->name(tp_setting_int(cfg, s)));
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
		break; /* no setting of this type yet */
	}
	/* The effective value of an automatic setting is what one checks for. */
	if (s->offset == offsetof(struct tp_config, stall_timeout_ms) && cfg->stall_timeout_ms == 0)
		fprintf(f, " # automatic: max_sleep_ms + %d = %d", TP_STALL_MARGIN_MS,
		        tp_config_stall_ms(cfg));
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
static void print_members(const struct tp_config *cfg, FILE *f, const char *group, size_t glen)
{
	const char *indent = glen ? "  " : "";
	const char *leaf;

	if (glen)
		fprintf(f, "%.*s = {\n", (int)glen, group);
	for (const struct tp_setting *s = tp_settings; s->path; s++)
		if ((leaf = leaf_in(s->path, group, glen)) != NULL)
			print_setting(cfg, f, s, leaf, indent);
	if (glen)
		fputs("};\n", f);
}

void tp_config_print(const struct tp_config *cfg, FILE *f)
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
			print_members(cfg, f, s->path, glen);
	}
	print_members(cfg, f, "", 0);
}

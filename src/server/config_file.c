/* SPDX-License-Identifier: MIT */
/*
 * config_file: read and write tpserver's libconfig configuration file.
 *
 * Loading walks every setting the file contains, groups included, and looks
 * each one up in the schema, instead of looking the schema up in the file:
 * that way a setting the schema does not know (a typo such as pool.workerz)
 * is reported with its line rather than silently ignored.  The numeric part
 * of the schema is tp_config_ranges[] from config.c, so a range is defined
 * once for the file, the flags and this module's output.
 */
#include "config_file.h"

#include "config_lex.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libconfig.h>

/* The settings that are strings; everything else is in tp_config_ranges[]. */
enum string_kind { STRING_HOST, STRING_LOG_LEVEL };

static const struct {
	const char *name;
	enum string_kind kind;
} string_settings[] = {
        {"listen.host", STRING_HOST},
        {"log_level", STRING_LOG_LEVEL},
};

#define N_STRING_SETTINGS (sizeof(string_settings) / sizeof(string_settings[0]))

/* A configuration file larger than this is a mistake, not a configuration. */
#define MAX_FILE_BYTES (1024 * 1024)

struct load {
	struct tp_config *cfg; /* the copy being filled, never the caller's */
	const char *path;
	const struct tp_config_lex *lex; /* the integers as the text writes them */
	char *err;
	size_t errlen;
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

static const struct tp_config_range *find_range(const char *gpath, const char *name)
{
	for (const struct tp_config_range *r = tp_config_ranges; r->name; r++)
		if (is_exactly(r->name, gpath, name))
			return r;
	return NULL;
}

static int find_string(const char *gpath, const char *name)
{
	for (size_t i = 0; i < N_STRING_SETTINGS; i++)
		if (is_exactly(string_settings[i].name, gpath, name))
			return (int)i;
	return -1;
}

/* A group is known when some setting of the schema lives under it. */
static bool is_known_group(const char *gpath, const char *name)
{
	for (const struct tp_config_range *r = tp_config_ranges; r->name; r++)
		if (is_prefix(r->name, gpath, name))
			return true;
	for (size_t i = 0; i < N_STRING_SETTINGS; i++)
		if (is_prefix(string_settings[i].name, gpath, name))
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

static int apply_int(const struct load *ld, const config_setting_t *s, const char *gpath,
                     const struct tp_config_range *r)
{
	/* libconfig 1.5 truncates what does not fit 32 bits: 4294967297 reads as 1. */
	const struct tp_config_lex_int *in = tp_config_lex_find(ld->lex, r->name);
	long long v;

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

static int apply_string(const struct load *ld, const config_setting_t *s, const char *gpath,
                        enum string_kind kind)
{
	const char *v;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail(ld, s, gpath, "expected a string");
	v = config_setting_get_string(s);

	switch (kind) {
	case STRING_HOST:
		if (v[0] == '\0')
			return fail(ld, s, gpath, "must not be empty");
		if (strlen(v) >= sizeof(ld->cfg->host))
			return fail(ld, s, gpath, "longer than %zu bytes", sizeof(ld->cfg->host) - 1);
		snprintf(ld->cfg->host, sizeof(ld->cfg->host), "%s", v);
		return 0;
	case STRING_LOG_LEVEL:
		if (tp_log_level_parse(v, &ld->cfg->log_level) < 0)
			return fail(ld, s, gpath,
			            "invalid value \"%s\" (expected debug, info, notice, warning or error)",
			            v);
		return 0;
	}
	return -EINVAL;
}

/* Apply every member of group (whose path is gpath, "" for the root). */
static int walk(const struct load *ld, const config_setting_t *group, const char *gpath)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		const struct tp_config_range *r;
		int idx, ret;

		if ((r = find_range(gpath, name)) != NULL) {
			ret = apply_int(ld, s, gpath, r);
		} else if ((idx = find_string(gpath, name)) >= 0) {
			ret = apply_string(ld, s, gpath, string_settings[idx].kind);
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
	struct load ld = {&copy, path, NULL, err, errlen};
	struct tp_config_lex *lex = NULL;
	char *text = NULL;
	char msg[512];
	config_t c;
	int r;

	r = read_text(path, &text, err, errlen);
	if (r < 0)
		return r;
	/* Before libconfig sees the text: its scanner exit()s on an @include it cannot read. */
	r = tp_config_lex_scan(path, text, tp_config_lex_read_file, NULL, &lex, err, errlen);
	if (r < 0) {
		free(text);
		return r;
	}
	ld.lex = lex;

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
	tp_config_lex_free(lex);
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

static void print_string_setting(const struct tp_config *cfg, FILE *f, size_t i, const char *leaf,
                                 const char *indent)
{
	fprintf(f, "%s%s = ", indent, leaf);
	switch (string_settings[i].kind) {
	case STRING_HOST:
		print_quoted(f, cfg->host);
		break;
	case STRING_LOG_LEVEL:
		print_quoted(f, tp_log_level_name(cfg->log_level));
		break;
	}
	fputs(";\n", f);
}

static void print_int_setting(const struct tp_config *cfg, FILE *f, const struct tp_config_range *r,
                              const char *leaf, const char *indent)
{
	int v = *(const int *)((const char *)cfg + r->offset);

	fprintf(f, "%s%s = %d;", indent, leaf, v);
	/* The effective value of an automatic setting is what one checks for. */
	if (strcmp(r->name, "limits.stall_timeout_ms") == 0 && v == 0)
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

/* Print the members of one group, strings first (listen.host before port). */
static void print_members(const struct tp_config *cfg, FILE *f, const char *group, size_t glen)
{
	const char *indent = glen ? "  " : "";
	const char *leaf;

	if (glen)
		fprintf(f, "%.*s = {\n", (int)glen, group);
	for (size_t i = 0; i < N_STRING_SETTINGS; i++)
		if (glen && (leaf = leaf_in(string_settings[i].name, group, glen)) != NULL)
			print_string_setting(cfg, f, i, leaf, indent);
	for (const struct tp_config_range *r = tp_config_ranges; r->name; r++)
		if ((leaf = leaf_in(r->name, group, glen)) != NULL)
			print_int_setting(cfg, f, r, leaf, indent);
	/* At the root, strings go last so the output follows the shipped file. */
	for (size_t i = 0; i < N_STRING_SETTINGS; i++)
		if (!glen && (leaf = leaf_in(string_settings[i].name, group, glen)) != NULL)
			print_string_setting(cfg, f, i, leaf, indent);
	if (glen)
		fputs("};\n", f);
}

void tp_config_print(const struct tp_config *cfg, FILE *f)
{
	/* Groups in the order they first appear in the range table. */
	for (const struct tp_config_range *r = tp_config_ranges; r->name; r++) {
		const char *dot = strchr(r->name, '.');
		size_t glen = dot ? (size_t)(dot - r->name) : 0;
		bool seen = false;

		if (!glen)
			continue;
		for (const struct tp_config_range *q = tp_config_ranges; q != r && !seen; q++)
			seen = leaf_in(q->name, r->name, glen) != NULL;
		if (!seen)
			print_members(cfg, f, r->name, glen);
	}
	print_members(cfg, f, "", 0);
}

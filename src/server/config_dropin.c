/* SPDX-License-Identifier: MIT */
/*
 * config_dropin: read the main configuration file, then the drop-ins of its
 * PATH.d/ directory in name order, each with tp_config_load_file_origin()
 * over the result of the ones before.  Every file is checked on its own
 * (syntax, names, types, ranges), so an error names the file and line it is
 * in.  The work happens on copies: the caller's configuration and origins
 * change only when every file was read.
 */
#include "config_dropin.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char DROPIN_EXT[] = ".conf";

/* A drop-in's name: NAME.conf, NAME not empty, not hidden. */
static bool is_dropin_name(const char *name)
{
	size_t len = strlen(name), ext = sizeof(DROPIN_EXT) - 1;

	return name[0] != '.' && len > ext && strcmp(name + len - ext, DROPIN_EXT) == 0;
}

static int dropin_filter(const struct dirent *d)
{
	return is_dropin_name(d->d_name);
}

/* Byte order, whatever the locale: "10-a.conf" before "9-b.conf", "A" before "a". */
static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/*
 * Apply the regular file dir/name; anything else (a directory, a fifo) is
 * skipped.  A name that cannot be followed (a dangling link, a target the
 * service's sandbox hides) is an error: skipped, it would leave the daemon
 * without settings that `--check-config`, run by root, shows applied.
 * Returns 0 or a negative errno with err set.
 */
static int load_one(struct tp_config *cfg, const char *dir, const char *name, struct tp_config_origin *origin,
                    char *err, size_t errlen)
{
	char path[4096];
	struct stat st;
	int n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "%s/%s: path too long", dir, name);
		return -ENAMETOOLONG;
	}
	if (stat(path, &st) < 0) {
		int r = -errno;
		snprintf(err, errlen, "%s: cannot open: %m", path); /* as the file's own open says */
		return r;
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	return tp_config_load_file_origin(cfg, path, origin, err, errlen);
}

/* Apply the drop-ins of dir in name order; a missing dir has none (a dangling link to one is an error). */
static int load_dir(struct tp_config *cfg, const char *dir, struct tp_config_origin *origin, char *err,
                    size_t errlen)
{
	struct dirent **names = NULL;
	int n, r = 0;

	n = scandir(dir, &names, dropin_filter, by_name);
	if (n < 0) {
		int e = errno;
		struct stat st;
		if (e == ENOENT && lstat(dir, &st) < 0)
			return 0; /* no directory: no drop-ins */
		r = -e;
		errno = e;
		/* %m rather than strerror(): this may run beside worker threads. */
		snprintf(err, errlen, "%s: cannot read the drop-in directory: %m", dir);
		return r;
	}
	for (int i = 0; i < n; i++) {
		if (r == 0)
			r = load_one(cfg, dir, names[i]->d_name, origin, err, errlen);
		free(names[i]);
	}
	free(names);
	return r;
}

int tp_config_dropin_load(struct tp_config *cfg, const char *path, bool main_optional,
                          struct tp_config_origin *origin, char *err, size_t errlen)
{
	struct tp_config copy = *cfg;
	struct tp_config_origin *o = NULL;
	char dir[4096];
	int n, r;

	n = snprintf(dir, sizeof(dir), "%s%s", path, TP_CONFIG_DROPIN_SUFFIX);
	if (n < 0 || (size_t)n >= sizeof(dir)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	if (origin) {
		o = malloc(TP_SETTINGS_MAX * sizeof(*o));
		if (!o) {
			snprintf(err, errlen, "%s: out of memory", path);
			return -ENOMEM;
		}
		memcpy(o, origin, TP_SETTINGS_MAX * sizeof(*o));
	}
	if (!main_optional || access(path, F_OK) == 0) {
		r = tp_config_load_file_origin(&copy, path, o, err, errlen);
		if (r < 0)
			goto out;
	}
	r = load_dir(&copy, dir, o, err, errlen);
	if (r < 0)
		goto out;
	*cfg = copy;
	if (origin)
		memcpy(origin, o, TP_SETTINGS_MAX * sizeof(*o));
out:
	free(o);
	return r;
}

/* Make s differ in *cfg from what it was, within its range. */
static void perturb(struct tp_config *cfg, const struct tp_setting *s)
{
	char *field = (char *)cfg + s->offset;
	int v;

	switch (s->type) {
	case TP_SETTING_INT:
		v = tp_config_setting_int(cfg, s);
		*(int *)field = v < s->max ? v + 1 : v - 1;
		break;
	case TP_SETTING_ENUM:
		v = tp_config_setting_int(cfg, s);
		for (const int *e = s->values; *e >= 0; e++)
			if (*e != v) {
				*(int *)field = *e;
				break;
			}
		break;
	case TP_SETTING_STRING:
	case TP_SETTING_ADDRESSES: /* the text as given; never parsed here */
		if (field[0] == '\0' && s->size > 1)
			field[1] = '\0';
		field[0] = field[0] == 'x' ? 'y' : 'x';
		break;
	case TP_SETTING_BOOL:
		*(bool *)field = !*(bool *)field;
		break;
	}
}

static bool same(const struct tp_config *a, const struct tp_config *b, const struct tp_setting *s)
{
	if (s->type == TP_SETTING_STRING || s->type == TP_SETTING_ADDRESSES)
		return strcmp((const char *)a + s->offset, (const char *)b + s->offset) == 0;
	return memcmp((const char *)a + s->offset, (const char *)b + s->offset, s->size) == 0;
}

int tp_config_origin_args(struct tp_config_origin *origin, int argc, char **argv, char *err, size_t errlen)
{
	struct tp_config a, b;
	int r;

	tp_config_defaults(&a);
	b = a;
	for (const struct tp_setting *s = tp_settings; s->path; s++)
		perturb(&b, s);
	r = tp_config_parse_args(&a, argc, argv, err, errlen);
	if (r == 0)
		r = tp_config_parse_args(&b, argc, argv, err, errlen);
	if (r != 0)
		return r;
	for (const struct tp_setting *s = tp_settings; s->path; s++) {
		struct tp_config_origin *o = &origin[s - tp_settings];

		if (same(&a, &b, s)) {
			snprintf(o->file, sizeof(o->file), "%s", "the command line");
			o->line = 0;
		}
	}
	return 0;
}

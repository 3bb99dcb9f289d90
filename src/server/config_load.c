/* SPDX-License-Identifier: MIT */
/*
 * config_load: the settings a start, a reload and --check-config use.  See
 * config_load.h.
 */
#include "config_load.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_dropin.h"
#include "listener.h"
#include "log.h"
#include "sd.h"

/* A refusal of the whole configuration, named after its file (when there is one): err. */
static int name_file(const struct tp_config *cfg, int r, const char *msg, char *err, size_t errlen)
{
	if (r < 0)
		snprintf(err, errlen, "%s%s%s", cfg->config_path, cfg->config_path[0] ? ": " : "", msg);
	return r;
}

/* Where setting `path` was set (an entry with no file: by default), or NULL without origins. */
static const struct tp_config_origin *origin_of(const struct tp_config_origin *origin, const char *path)
{
	for (size_t i = 0; origin && tp_settings[i].path; i++)
		if (strcmp(tp_settings[i].path, path) == 0)
			return &origin[i];
	return NULL;
}

/* Where setting `path` was set, as an error's prefix: "FILE:LINE: path", or the file alone. */
static void name_setting(const struct tp_config *cfg, const struct tp_config_origin *origin, const char *path,
                         char *buf, size_t len)
{
	const struct tp_config_origin *o = origin_of(origin, path);

	if (o && o->file[0] && o->line)
		snprintf(buf, len, "%s:%u: %s", o->file, o->line, path);
	else if (o && o->file[0])
		snprintf(buf, len, "%s: %s", o->file, path);
	else
		snprintf(buf, len, "%s%s%s", cfg->config_path, cfg->config_path[0] ? ": " : "", path);
}

int tp_config_load_check_listen(const struct tp_config *cfg, const struct tp_config_origin *origin,
                                bool start, char *err, size_t errlen)
{
	bool data, metrics, agent;
	tp_sd_passed(&data, &metrics, &agent);
	bool resolve = !data && (start || !getenv("INVOCATION_ID"));
	const struct {
		const char *what, *path, *host;
		int port;
		bool used;
	} addrs[] = {
	        {"listen", "listen.host", cfg->host, cfg->port, !start || !data},
	        {"metrics", "metrics.host", cfg->metrics_host, cfg->metrics_port,
	         cfg->metrics_enabled && resolve && !metrics},
	        {"agent", "agent.host", cfg->agent_host, cfg->agent_port,
	         cfg->agent_enabled && resolve && !agent},
	};
	char msg[1024], where[4200]; /* a host is at most 255 bytes; a path 4095 */
	int ret = 0;

	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		int r = addrs[i].used ? tp_listener_check(addrs[i].what, addrs[i].host, addrs[i].port,
		                                          resolve, msg, sizeof(msg))
		                      : 0;
		if (r < 0 && (ret == 0 || r == -EINVAL)) {
			name_setting(cfg, origin, addrs[i].path, where, sizeof(where));
			snprintf(err, errlen, "%s: %s", where, msg);
			/* A host may hold any byte: the message stays one line. */
			tp_log_one_line(err, errlen);
			ret = r;
		}
		if (r == -EINVAL)
			break;
	}
	return ret;
}

/*
 * The rules across settings, on the result of the files, the drop-ins and
 * the flags (a file alone may be completed by what follows it): no single
 * line is to blame, so the refusal says where each of the rule's settings
 * was set ("shutdown.drain_s at FILE:LINE; shutdown.timeout_s by default").
 * Without origins, named after the main file.
 */
static int check_result(const struct tp_config *cfg, const struct tp_config_origin *origin, char *err,
                        size_t errlen)
{
	const char *paths[TP_RULE_PATHS_MAX + 1];
	char msg[TP_MSG_MAX];
	int r = tp_config_validate(cfg, paths, msg, sizeof(msg));
	size_t at;

	if (r == 0 || !origin || !paths[0])
		return name_file(cfg, r, msg, err, errlen);
	at = (size_t)snprintf(err, errlen, "%s (", msg);
	for (size_t i = 0; paths[i] && at < errlen; i++) {
		const struct tp_config_origin *o = origin_of(origin, paths[i]);
		const char *sep = i ? "; " : "";
		char entry[sizeof(o->file) + 128];
		if (o && o->file[0] && o->line)
			snprintf(entry, sizeof(entry), "%s%s at %s:%u", sep, paths[i], o->file, o->line);
		else if (o && o->file[0])
			snprintf(entry, sizeof(entry), "%s%s from %s", sep, paths[i], o->file);
		else
			snprintf(entry, sizeof(entry), "%s%s by default", sep, paths[i]);
		size_t n = strlen(entry);
		/* Paths of thousands of bytes may not all fit: whole entries or none. */
		if (at + n + sizeof("; ...)") > errlen) {
			snprintf(err + at, errlen - at, "%s...)", sep);
			return r;
		}
		memcpy(err + at, entry, n + 1);
		at += n;
	}
	if (at < errlen)
		snprintf(err + at, errlen - at, ")");
	return r;
}

int tp_config_load_read(const struct tp_config_args *a, struct tp_config *ret,
                        struct tp_config_origin *origin, char *err, size_t errlen)
{
	struct tp_config cli, cfg;
	const char *path;
	int r;

	tp_config_defaults(&cli);
	r = tp_config_parse_args(&cli, a->argc, a->argv, err, errlen);
	*ret = cli; /* what the flags asked (a check?), also when the files fail */
	if (r != 0)
		return r;

	tp_config_defaults(&cfg);
	path = cli.config_explicit ? cli.config_path : TP_DEFAULT_CONFIG_PATH;
	r = tp_config_dropin_load(&cfg, path, !cli.config_explicit, origin, err, errlen);
	if (r < 0)
		return r;
	r = tp_config_parse_args(&cfg, a->argc, a->argv, err, errlen);
	if (r == 0 && origin)
		r = tp_config_origin_args(origin, a->argc, a->argv, err, errlen);
	if (r != 0)
		return r;
	if (!cfg.config_explicit && access(path, F_OK) == 0)
		snprintf(cfg.config_path, sizeof(cfg.config_path), "%s", path);
	r = check_result(&cfg, origin, err, errlen);
	if (r < 0)
		return r;
	*ret = cfg;
	return 0;
}

int tp_config_load_again(struct tp_config *ret, char *err, size_t errlen, void *ctx)
{
	/* Origins only to name a refusal; without memory for them it is named after the file. */
	struct tp_config_origin *origin = calloc(TP_SETTINGS_MAX, sizeof(*origin));
	int r = tp_config_load_read(ctx, ret, origin, err, errlen);

	/* An address -t and a start refuse is refused here too: else the next restart fails. */
	if (r == 0 && tp_config_load_check_listen(ret, origin, false, err, errlen) == -EINVAL)
		r = -EINVAL;
	free(origin);
	return r > 0 ? -EINVAL : r;
}

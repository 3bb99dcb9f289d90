/* SPDX-License-Identifier: MIT */
/*
 * config_rules: what is checked of the settings as a whole, once the
 * file, the drop-ins and the flags are all read (config.h): each value in
 * its range, the rules across settings, and what is allowed but worth a
 * warning.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cidr.h"

static bool stall_warning(const struct tp_config *cfg, char *msg, size_t len)
{
	if (cfg->stall_timeout_ms == 0 || cfg->stall_timeout_ms > cfg->max_sleep_ms)
		return false;
	snprintf(msg, len,
	         "limits.stall_timeout_ms (%d) is not above limits.max_sleep_ms (%d): a SLEEP the limits "
	         "allow counts as a stuck worker (the agent answers ready down, the watchdog is not "
	         "pinged); 0 means max_sleep_ms + 30000",
	         cfg->stall_timeout_ms, cfg->max_sleep_ms);
	return true;
}

static bool stop_warning(const struct tp_config *cfg, char *msg, size_t len)
{
	/* With a drain the rule is enforced (tp_config_validate); without, a file that has always worked
	 * still starts. */
	if (cfg->drain_s > 0 || cfg->shutdown_timeout_s < cfg->stop_timeout_s)
		return false;
	snprintf(msg, len,
	         "shutdown.timeout_s (%d) is not under shutdown.stop_timeout_s (%d), the unit's "
	         "TimeoutStopSec: a stop answers what still runs with ERR server shutting down a second "
	         "before stop_timeout_s; raise the two and TimeoutStopSec= together",
	         cfg->shutdown_timeout_s, cfg->stop_timeout_s);
	return true;
}

/* Prefixes with address bits past their length match their whole network: say which, every one. */
static bool prefix_warning(const struct tp_config *cfg, char *msg, size_t len)
{
	const struct {
		const char *path, *text;
	} lists[] = {{"listen.allow", cfg->allow}, {"listen.proxy_trusted", cfg->proxy_trusted}};
	size_t at = 0;

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		char found[TP_CIDR_HOST_BITS_TEXT_MAX];
		if (tp_cidr_host_bits(lists[i].text, found, sizeof(found)) == 0)
			continue;
		if (at < len)
			at += (size_t)snprintf(msg + at, len - at, "%s%s: %s", at ? "; " : "", lists[i].path,
			                       found);
	}
	if (at == 0)
		return false;
	if (at < len)
		snprintf(msg + at, len - at,
		         " (address bits set past a prefix's length: it matches its whole network)");
	return true;
}

/* A trusted proxy prefix of length 0 lets any client name any address in a PROXY header. */
static bool trust_all_warning(const struct tp_config *cfg, char *msg, size_t len)
{
	struct tp_cidr_list l;
	size_t i = 0;

	if (!cfg->proxy_protocol || tp_cidr_parse_list(cfg->proxy_trusted, &l) != 0)
		return false;
	while (i < l.n && l.v[i].bits != 0)
		i++;
	if (i == l.n)
		return false;
	snprintf(msg, len,
	         "listen.proxy_trusted has %.*s, every address: any client may open with a PROXY header "
	         "naming any address, which fairness, the per-address limits and the logs then take for "
	         "its own; list the load balancers' addresses",
	         (int)l.v[i].text_len, cfg->proxy_trusted + l.v[i].text_at);
	return true;
}

static bool ready_warning(const struct tp_config *cfg, char *msg, size_t len)
{
	if (cfg->agent_ready_s > 0)
		return false;
	snprintf(msg, len,
	         "agent.ready_s is 0: the agent check never answers ready, so neither SIGUSR1 nor a "
	         "restart ends a drain HAProxy holds (SIGUSR2's or a leave's); give it a few times "
	         "HAProxy's agent-inter");
	return true;
}

const tp_config_warning_fn tp_config_warnings[] = {stall_warning,     stop_warning,  prefix_warning,
                                                   trust_all_warning, ready_warning, NULL};

/* -EINVAL, with the settings a refused rule is about in ret_paths. */
static int refuse(const char **ret_paths, const char *a, const char *b, const char *c)
{
	const char *paths[TP_RULE_PATHS_MAX] = {a, b, c};
	size_t n = 0;

	for (size_t i = 0; i < TP_RULE_PATHS_MAX; i++)
		if (paths[i])
			ret_paths[n++] = paths[i];
	ret_paths[n] = NULL;
	return -EINVAL;
}

int tp_config_validate(const struct tp_config *cfg, const char **ret_paths, char *err, size_t errlen)
{
	ret_paths[0] = NULL;
	for (const struct tp_setting *s = tp_settings; s->path; s++) {
		size_t len;
		int v;

		switch (s->type) {
		case TP_SETTING_INT:
			v = tp_config_setting_int(cfg, s); /* only an INT field is an int */
			if (v < s->min || v > s->max) {
				snprintf(err, errlen, "%s: %d is out of range (%d to %d)", s->path, v, s->min,
				         s->max);
				return refuse(ret_paths, s->path, NULL, NULL);
			}
			break;
		case TP_SETTING_STRING:
			len = strnlen((const char *)cfg + s->offset, s->size);
			if (len == 0) {
				snprintf(err, errlen, "%s: must not be empty", s->path);
				return refuse(ret_paths, s->path, NULL, NULL);
			}
			if (len > (size_t)s->max || len == s->size) {
				snprintf(err, errlen, "%s: longer than %d bytes", s->path, s->max);
				return refuse(ret_paths, s->path, NULL, NULL);
			}
			break;
		case TP_SETTING_ENUM:
		case TP_SETTING_BOOL:
		case TP_SETTING_ADDRESSES:
			break; /* only ever set through tp_config_setting_parse() */
		}
	}
	/* systemd kills a service still running TimeoutStopSec after SIGTERM: the drain must fit. */
	if (cfg->drain_s > 0 && cfg->drain_s + cfg->shutdown_timeout_s >= cfg->stop_timeout_s) {
		snprintf(err, errlen,
		         "shutdown.drain_s (%d) + shutdown.timeout_s (%d) must stay under "
		         "shutdown.stop_timeout_s (%d), the unit's TimeoutStopSec",
		         cfg->drain_s, cfg->shutdown_timeout_s, cfg->stop_timeout_s);
		return refuse(ret_paths, "shutdown.drain_s", "shutdown.timeout_s", "shutdown.stop_timeout_s");
	}
	return 0;
}

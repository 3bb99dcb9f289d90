/* SPDX-License-Identifier: MIT */
/*
 * config_load: the effective configuration, as a start, a reload and
 * --check-config see it: the defaults, then the file (the explicit one, or
 * the default path when it exists) and the drop-ins of its .d/ directory
 * (config_dropin.h), then the command-line flags; then the rules across
 * settings, a refusal naming where each of a rule's settings was set.
 * Never logs: the caller says what a refusal means (exit 78, a reload
 * refused).  Runs on main's thread at start, on the reload's thread after.
 */
#ifndef TP_CONFIG_LOAD_H
#define TP_CONFIG_LOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "config_file.h" /* struct tp_config_origin */

/* The command line the configuration is read with, again at each reload. */
struct tp_config_args {
	int argc;
	char **argv;
};

/*
 * The effective configuration into *ret; origin (or NULL: room for
 * TP_SETTINGS_MAX entries) gets where each setting came from.  Returns 0,
 * 1 (--help or --version printed), or a negative errno with err set; on an
 * error *ret holds what the flags asked (a check?), also when the files
 * failed.
 */
int tp_config_load_read(const struct tp_config_args *a, struct tp_config *ret,
                        struct tp_config_origin *origin, char *err, size_t errlen);

/*
 * The addresses a start binds, checked before anything is bound so that a
 * refusal names the line that set the address: one that cannot be an
 * address or a name that does not resolve (-EINVAL, exit 78), and an
 * address not of this host or a name DNS did not answer for (-EADDRNOTAVAIL,
 * -EAGAIN: perhaps not yet; exit 1, as a failed bind, which systemd's
 * Restart= retries within its start limit).  A start binds the listening
 * socket unless systemd passed one for requests, and then also the metrics
 * and agent ones when enabled and not passed (sockets.h).  --check-config
 * (start false) says the same, except where systemd runs it (INVOCATION_ID:
 * the packaged unit is socket-activated): there only a listen.host that
 * looks numeric is checked, without DNS.  An -EINVAL comes first; of
 * addresses not of this host, the first.
 */
int tp_config_load_check_listen(const struct tp_config *cfg, const struct tp_config_origin *origin,
                                bool start, char *err, size_t errlen);

/*
 * The reload's read (a tp_reload_fn, reload.h; ctx is the struct
 * tp_config_args of the start): tp_config_load_read(), and a refusal of an
 * address -t and a start would refuse.  Returns 0 or a negative errno with
 * err set.
 */
int tp_config_load_again(struct tp_config *ret, char *err, size_t errlen, void *ctx);

#endif

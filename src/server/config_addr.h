/* SPDX-License-Identifier: MIT */
/*
 * config_addr: address-list settings (TP_SETTING_ADDRESSES) in the
 * libconfig file: read from a list of strings or one string, written back
 * as a list.  Never logs: a problem comes back as a message for the
 * caller, who names the file and line.
 */
#ifndef TP_CONFIG_ADDR_H
#define TP_CONFIG_ADDR_H

#include <libconfig.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

/*
 * Set s in *cfg from the file's value v.  Returns 0, or -EINVAL with the
 * reason in err (without the path).
 */
int tp_config_addr_read(struct tp_config *cfg, const struct tp_setting *s, const config_setting_t *v,
                        char *err, size_t errlen);

/* Write the list "A, B" as [ "A", "B" ]; ([] when empty). */
void tp_config_addr_print(FILE *f, const char *list);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * config_dropin: the configuration file and its drop-in directory.
 *
 * Next to the main file PATH, the directory PATH.d/ (/etc/tpserver.conf.d/)
 * may hold drop-ins: every NAME.conf in it, in byte order of NAME, is read
 * after the main file, each parsed on its own and applied setting by
 * setting, so a later file overrides only the settings it names.  Local
 * overrides live there and survive package upgrades that replace the main
 * file.  (libconfig's @include cannot do this: a group written twice is an
 * error.)  Names starting with '.', names not ending in ".conf", and
 * anything but regular files (after symbolic links) are skipped.  This
 * module never logs.
 */
#ifndef TP_CONFIG_DROPIN_H
#define TP_CONFIG_DROPIN_H

#include <stddef.h>

#include "config.h"
#include "config_file.h"

/* The drop-in directory of the main file path: path with ".d" appended. */
#define TP_CONFIG_DROPIN_SUFFIX ".d"

/*
 * Apply, over *cfg, the main file at path (unless main_optional is true and
 * it does not exist), then every drop-in of path.d/ in name order.  A
 * missing path.d/ is not an error.  When origin is not NULL, origin[i] (by
 * tp_settings[] index) gets the file and line that set setting i last.
 *
 * Returns 0, or a negative errno with one line in err naming the file (and
 * line, as tp_config_load_file() does); on failure *cfg and origin are left
 * untouched.  -ENOENT: the main file is missing (and not optional).  Reads
 * files only; safe to call again on SIGHUP.
 */
int tp_config_dropin_load(struct tp_config *cfg, const char *path, bool main_optional,
                          struct tp_config_origin *origin, char *err, size_t errlen);

/*
 * Mark in origin[] (file "the command line", line 0) every setting that
 * the flags of argv set.  Found by parsing argv over two configurations
 * that differ in every setting: what a flag sets is equal in both
 * afterwards, whatever spelling the flag had.  Returns 0, or the return of
 * tp_config_parse_args() (1 for --help or --version, which printed).
 */
int tp_config_origin_args(struct tp_config_origin *origin, int argc, char **argv, char *err, size_t errlen);

#endif

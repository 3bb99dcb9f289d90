/* SPDX-License-Identifier: MIT */
/*
 * client_opts: tpclient's command line.
 *
 * Parsing fills the struct of client_settings.h from argv and checks each
 * value against its range, so the load engine can trust it.  This module
 * never logs and never exits: errors come back as one line naming the
 * flag, and the caller prints it and exits 2.
 */
#ifndef TP_CLIENT_OPTS_H
#define TP_CLIENT_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client_settings.h"

/* Exit status of tpclient for a bad command line. */
#define TP_CLIENT_EXIT_USAGE 2

/* Fill *o with the defaults. Never fails. */
void tp_client_opts_defaults(struct tp_client_opts *o);

/*
 * Parse argv into *o (which holds defaults).  Returns 0; 1 when --help or
 * --version was printed to stdout and the program should exit 0; or
 * -EINVAL with a one-line message naming the flag in err.  Never exits,
 * never logs.
 */
int tp_client_opts_parse(struct tp_client_opts *o, int argc, char **argv, char *err, size_t errlen);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * client_opts_fixture: a command line parsed from a list of arguments, as
 * the unit tests of client_opts.c write it (header only, so each test
 * still links only the layer it tests).
 */
#ifndef TP_CLIENT_OPTS_FIXTURE_H
#define TP_CLIENT_OPTS_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client_opts.h"

/* Parse a NULL-terminated list of arguments (writable copies, as argv is). */
static inline int parse_list(struct tp_client_opts *o, char *err, size_t errlen, const char *const *args)
{
	char *argv[64];
	int argc = 0, r;

	argv[argc++] = strdup("tpclient");
	for (; *args; args++)
		argv[argc++] = strdup(*args);
	argv[argc] = NULL;
	r = tp_client_opts_parse(o, argc, argv, err, errlen);
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return r;
}

#define PARSE(o, err, ...) parse_list(o, err, sizeof(err), (const char *const[]){__VA_ARGS__, NULL})

#endif

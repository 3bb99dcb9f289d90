/* SPDX-License-Identifier: MIT */
/*
 * client_json: what tpclient prints at the end of a run with --json: one
 * JSON object on one line, the same facts as the text report of
 * client_report.  The fields are documented in docs/TPCLIENT.md; scripts
 * read them, so they change only by adding fields.
 */
#ifndef TP_CLIENT_JSON_H
#define TP_CLIENT_JSON_H

#include <stdio.h>

#include "client_report.h"

/* One JSON object on one line; with --group, a "groups" array too. */
void tp_client_json_report(FILE *f, const struct tp_client_report *r);

#endif

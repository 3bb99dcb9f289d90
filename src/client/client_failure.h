/* SPDX-License-Identifier: MIT */
/*
 * client_failure: how tpclient logs a reply that was not the right OK:
 * the first few failures of a worker in detail (what was expected, what
 * came), at warning level, the rest and every busy reply at debug level.
 * Runs on the worker thread of the connection; logged is that worker's.
 */
#ifndef TP_CLIENT_FAILURE_H
#define TP_CLIENT_FAILURE_H

#include <stddef.h>

#include "client_window.h"
#include "verify.h"

/*
 * Log the reply line[0..len) that client got for req, checked as r: req is
 * NULL for a line with no request outstanding, line NULL for a line too
 * long to keep.  *logged counts the failures logged at warning level.
 * At most 80 bytes of the line are quoted, each control byte as '?', so
 * a server's reply cannot write to the terminal or forge a log line.
 */
void tp_client_failure_log(unsigned *logged, unsigned client, const struct tp_client_req *req,
                           enum tp_verify_result r, const char *line, size_t len);

#endif

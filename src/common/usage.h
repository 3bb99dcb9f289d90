/* SPDX-License-Identifier: MIT */
/*
 * usage: one entry of a program's --help, as both programs print them: the
 * flag, then its text from a fixed column, wrapped before column 80.
 */
#ifndef TP_USAGE_H
#define TP_USAGE_H

#include <stdio.h>

/*
 * Print lead (e.g. "  -c, --clients N"), then text from column `column`
 * (0-based), wrapped at spaces so that no line passes column 79; a lead
 * that leaves less than two spaces before the column puts the text on the
 * lines below it.
 */
void tp_usage_line(FILE *f, const char *lead, int column, const char *text);

#endif

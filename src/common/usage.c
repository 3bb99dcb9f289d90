/* SPDX-License-Identifier: MIT */
/*
 * usage: --help's layout of one entry, the same for both programs.  See
 * usage.h.
 */
#include "usage.h"

#include <string.h>

void tp_usage_line(FILE *f, const char *lead, int column, const char *text)
{
	const int width = 79 - column;
	int col = fprintf(f, "%s", lead);

	if (col > column - 2) { /* no two spaces before the column: the text starts below the lead */
		fputc('\n', f);
		col = 0;
	}
	while (*text) {
		int n = (int)strlen(text);

		if (n > width)
			for (n = width; n > 0 && text[n] != ' '; n--)
				;
		if (n == 0)
			n = (int)strcspn(text, " "); /* one word longer than the column */
		fprintf(f, "%*s%.*s\n", column - col, "", n, text);
		text += n + strspn(text + n, " ");
		col = 0;
	}
}

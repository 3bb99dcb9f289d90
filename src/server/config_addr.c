/* SPDX-License-Identifier: MIT */
/*
 * config_addr: reading and writing address lists in the file.
 */
#include "config_addr.h"

#include <errno.h>
#include <string.h>

#include "cidr.h"

int tp_config_addr_read(struct tp_config *cfg, const struct tp_setting *s, const config_setting_t *v,
                        char *err, size_t errlen)
{
	char text[TP_CIDR_TEXT_MAX];
	const char *list = text;
	size_t n = 0;
	int type = config_setting_type(v);

	text[0] = '\0';
	if (type == CONFIG_TYPE_STRING) {
		list = config_setting_get_string(v); /* whole: the parser refuses one too long */
	} else if (type == CONFIG_TYPE_LIST || type == CONFIG_TYPE_ARRAY) {
		for (int i = 0; i < config_setting_length(v); i++) {
			const config_setting_t *e = config_setting_get_elem(v, (unsigned)i);
			const char *a = config_setting_type(e) == CONFIG_TYPE_STRING
			                        ? config_setting_get_string(e)
			                        : NULL;
			if (!a) {
				snprintf(err, errlen, "expected a list of address strings");
				return -EINVAL;
			}
			if (strpbrk(a, ", \t") || !*a || n + strlen(a) + 3 > sizeof(text)) {
				snprintf(err, errlen, "invalid address prefix \"%s\"", a);
				return -EINVAL;
			}
			n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s", n ? ", " : "", a);
		}
	} else {
		snprintf(err, errlen, "expected a list of address strings");
		return -EINVAL;
	}
	if (tp_config_setting_parse(cfg, s, list) < 0) {
		snprintf(err, errlen,
		         "invalid address list \"%s\" (expected up to %d prefixes such as 10.0.0.0/8 or "
		         "2001:db8::/32)",
		         list, TP_CIDR_MAX);
		return -EINVAL;
	}
	return 0;
}

void tp_config_addr_print(FILE *f, const char *list)
{
	fputc('[', f);
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		fprintf(f, "%s\"%.*s\"", p == list ? " " : ", ", (int)n, p);
		p += n;
		p += strspn(p, ", ");
	}
	fputs(*list ? " ];" : "];", f);
}

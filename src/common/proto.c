/* SPDX-License-Identifier: MIT */
/*
 * proto: request parsing and reply formatting.  See proto.h; the grammar is
 * written down for users in docs/PROTOCOL.md.
 */
#include "proto.h"

#include <string.h>
#include <strings.h>

#include "decimal.h"

static const struct {
	const char *name;
	size_t len;
	const char *label;
} ops[TP_OP_COUNT] = {
#define TP_OP_ROW(id, name, label) [TP_OP_##id] = {name, sizeof(name) - 1, label},
        TP_PROTO_OPS(TP_OP_ROW)
#undef TP_OP_ROW
};

const char *tp_proto_op_name(enum tp_op op)
{
	return (int)op < TP_OP_COUNT ? ops[op].name : "?";
}

const char *tp_proto_op_label(enum tp_op op)
{
	return (int)op < TP_OP_COUNT ? ops[op].label : "none";
}

/*
 * The op whose name, spelt as in the table, starts the line and is followed
 * by a space: how nearly every request is written.  Found with one compare
 * of a few bytes per op, before any search for the space and without the
 * case-insensitive compare; anything else takes the general path.
 */
static int op_as_spelt(const char *line, size_t len)
{
#define TP_OP_SPELT(id, name, label)                                   \
	if (len > sizeof(name) - 1 && line[sizeof(name) - 1] == ' ' && \
	    memcmp(line, name, sizeof(name) - 1) == 0)                 \
		return TP_OP_##id;
	TP_PROTO_OPS(TP_OP_SPELT)
#undef TP_OP_SPELT
	return -1;
}

/* The op named by the op_len bytes at line, in any case; -1 for none. */
static int op_named(const char *line, size_t op_len)
{
	for (int i = 0; i < TP_OP_COUNT; i++)
		if (ops[i].len == op_len && strncasecmp(ops[i].name, line, op_len) == 0)
			return i;
	return -1;
}

/*
 * The argument of op: after the space at sp (NULL: none) up to end.
 * Inlined into both paths: a call would cost the common one the register
 * saves it avoids.
 */
__attribute__((always_inline)) static inline enum tp_proto_status
parse_arg(int op, const char *sp, const char *end, uint32_t max_sleep_ms, struct tp_proto_req *ret)
{
	const char *arg = sp ? sp + 1 : end;
	size_t arg_len = (size_t)(end - arg);
	uint64_t ms;

	ret->op = (enum tp_op)op;
	switch (ret->op) {
	case TP_OP_SLEEP:
		if (!sp || tp_decimal_parse(arg, arg_len, max_sleep_ms, &ms) < 0)
			return TP_PROTO_INVALID_ARG;
		ret->sleep_ms = (uint32_t)ms;
		break;
	case TP_OP_ECHO:
		ret->text = arg;
		ret->text_len = arg_len;
		break;
	}
	return TP_PROTO_OK;
}

/*
 * Any line with an op: its OP is up to the first space, matched in any
 * case.  Out of line, so that the calls it makes cost the common path of
 * tp_proto_parse() no register saves.
 */
__attribute__((noinline)) static enum tp_proto_status
parse_general(const char *line, size_t len, uint32_t max_sleep_ms, struct tp_proto_req *ret)
{
	const char *sp = memchr(line, ' ', len);
	size_t op_len = sp ? (size_t)(sp - line) : len;
	int op;

	ret->op_name = line;
	ret->op_len = op_len;
	/* A line starting with a space is not empty: its OP is empty, which no op matches. */
	op = op_named(line, op_len);
	if (op < 0)
		return TP_PROTO_UNKNOWN_OP;
	return parse_arg(op, sp, line + len, max_sleep_ms, ret);
}

enum tp_proto_status tp_proto_parse(const char *line, size_t len, uint32_t max_sleep_ms,
                                    struct tp_proto_req *ret)
{
	int op;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return TP_PROTO_EMPTY;
	op = op_as_spelt(line, len);
	if (op < 0)
		return parse_general(line, len, max_sleep_ms, ret);
	ret->op_name = line;
	ret->op_len = ops[op].len;
	return parse_arg(op, line + ops[op].len, line + len, max_sleep_ms, ret);
}

const char *tp_proto_error_line(enum tp_proto_status status)
{
	switch (status) {
	case TP_PROTO_OK:
		break; /* not an error: it has no error line */
	case TP_PROTO_EMPTY:
		return "ERR empty request\n";
	case TP_PROTO_UNKNOWN_OP:
		return "ERR unknown op\n";
	case TP_PROTO_INVALID_ARG:
		return "ERR invalid argument\n";
	case TP_PROTO_TOO_LONG:
		return "ERR line too long\n";
	case TP_PROTO_BUSY:
		return "ERR server busy\n";
	case TP_PROTO_TOO_MANY:
		return "ERR too many connections\n";
	case TP_PROTO_SHUTDOWN:
		return "ERR server shutting down\n";
	}
	return "ERR internal error\n";
}

size_t tp_proto_format_error(enum tp_proto_status status, const char *op, size_t op_len, char *buf)
{
	static const char prefix[] = "ERR unknown op ";
	size_t n;

	if (status != TP_PROTO_UNKNOWN_OP) {
		const char *s = tp_proto_error_line(status);
		n = strlen(s);
		memcpy(buf, s, n);
		return n;
	}
	memcpy(buf, prefix, sizeof(prefix) - 1);
	n = sizeof(prefix) - 1;
	if (op_len > TP_PROTO_MAX_OP_ECHO)
		op_len = TP_PROTO_MAX_OP_ECHO;
	for (size_t i = 0; i < op_len; i++) {
		unsigned char c = (unsigned char)op[i];
		buf[n++] = (char)((c >= 0x20 && c < 0x7f) ? c : '?');
	}
	buf[n++] = '\n';
	return n;
}

size_t tp_proto_format_sleep(uint32_t ms, char *buf)
{
	char tmp[10];
	size_t n = 0, len = 0;

	do {
		tmp[n++] = (char)('0' + ms % 10);
		ms /= 10;
	} while (ms);
	buf[len++] = 'O';
	buf[len++] = 'K';
	buf[len++] = ' ';
	while (n)
		buf[len++] = tmp[--n];
	buf[len++] = '\n';
	return len;
}

size_t tp_proto_reply_len(const struct tp_proto_req *req)
{
	char tmp[16];

	switch (req->op) {
	case TP_OP_ECHO:
		return req->text_len + 4;
	case TP_OP_SLEEP:
		break;
	}
	return tp_proto_format_sleep(req->sleep_ms, tmp);
}

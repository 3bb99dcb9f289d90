/* SPDX-License-Identifier: MIT */
/*
 * proto: the request grammar and the reply formats, as pure functions.
 *
 * A request line (without its line ending) is "OP ARG"; OP is matched
 * case-insensitively against the command table in proto.c.  Parsing never
 * allocates and never does I/O; a parsed request points into the caller's
 * line buffer.  Replies are formatted into caller buffers, always ending in
 * "\n" and never containing any other newline.
 */
#ifndef TP_PROTO_H
#define TP_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "copy.h"

/*
 * The command table: X(enum suffix, wire name, label), the label being the
 * lower-case name the metrics and tpclient's reports give the op.  A new
 * row also needs its argument's case in parse_arg() (proto.c) and its
 * cases in tp_proto_reply_len() and tp_ops_run() (ops.h), which switch over
 * every op, so the compiler names what is missing; docs/DESIGN.md, "Where
 * to add things", lists the rest.
 */
#define TP_PROTO_OPS(X)            \
	X(SLEEP, "SLEEP", "sleep") \
	X(ECHO, "ECHO", "echo")

/* The X-macro expands to "TP_OP_x," entries clang-format cannot see. */
/* clang-format off */
enum tp_op {
#define TP_OP_ENUM(id, name, label) TP_OP_##id,
	TP_PROTO_OPS(TP_OP_ENUM)
#undef TP_OP_ENUM
};

/* How many ops there are: counted in an enum of its own, so a switch over ops has no case to make up. */
enum {
#define TP_OP_SLOT(id, name, label) TP_OP_SLOT_##id,
	TP_PROTO_OPS(TP_OP_SLOT)
#undef TP_OP_SLOT
	TP_OP_SLOTS
};
#define TP_OP_COUNT ((int)TP_OP_SLOTS)
/* clang-format on */

enum tp_proto_status {
	TP_PROTO_OK = 0,
	TP_PROTO_EMPTY,       /* ERR empty request */
	TP_PROTO_UNKNOWN_OP,  /* ERR unknown op <OP> */
	TP_PROTO_INVALID_ARG, /* ERR invalid argument */
	TP_PROTO_TOO_LONG,    /* ERR line too long */
	TP_PROTO_BUSY,        /* ERR server busy */
	TP_PROTO_TOO_MANY,    /* ERR too many connections */
	TP_PROTO_SHUTDOWN,    /* ERR server shutting down */
};

struct tp_proto_req {
	enum tp_op op;
	uint32_t sleep_ms; /* TP_OP_SLEEP */
	const char *text;  /* TP_OP_ECHO: points into the line, may be empty */
	size_t text_len;
	const char *op_name; /* on TP_PROTO_UNKNOWN_OP: the OP as sent, in the line */
	size_t op_len;
};

/* Longest OP quoted back in "ERR unknown op <OP>"; longer ones are cut. */
#define TP_PROTO_MAX_OP_ECHO 32

/* Longest error reply, including its newline. */
#define TP_PROTO_MAX_ERR (sizeof("ERR unknown op ") + TP_PROTO_MAX_OP_ECHO + 1)

/*
 * Parse one request line of len bytes (line ending already removed; a
 * trailing "\r" is stripped here).  max_sleep_ms caps SLEEP.  Returns
 * TP_PROTO_OK with *ret filled, or the error status (for
 * TP_PROTO_UNKNOWN_OP, ret->op_name/op_len name the OP).  Never fails
 * otherwise.
 */
enum tp_proto_status tp_proto_parse(const char *line, size_t len, uint32_t max_sleep_ms,
                                    struct tp_proto_req *ret);

/*
 * Format the error reply for status into buf (at least TP_PROTO_MAX_ERR
 * bytes).  op/op_len are used only for TP_PROTO_UNKNOWN_OP; bytes that are
 * not printable ASCII are replaced by '?'.  Returns the reply length.
 */
size_t tp_proto_format_error(enum tp_proto_status status, const char *op, size_t op_len, char *buf);

/* The constant reply line of a status without arguments, e.g. "ERR server busy\n". */
const char *tp_proto_error_line(enum tp_proto_status status);

/* Length of the OK reply for a request: "OK <ms>\n" or "OK <text>\n". */
size_t tp_proto_reply_len(const struct tp_proto_req *req);

/* Format "OK <ms>\n" into buf (>= 16 bytes). Returns the length. */
size_t tp_proto_format_sleep(uint32_t ms, char *buf);

/*
 * ECHO replies are built in two halves, in place.  The line's reader lays
 * each one down as three reserved bytes, the text and "\n"
 * (tp_proto_echo_place); the one that answers writes the "OK " of each
 * (tp_proto_echo_finish), which makes buf[0, len) that many "OK <text>\n"
 * replies back to back.  Texts never hold "\n" (it ends their line).
 */
static inline size_t tp_proto_echo_place(const char *text, size_t text_len, char *dst)
{
	tp_copy_short(dst + 3, text, text_len);
	dst[3 + text_len] = '\n';
	return text_len + 4;
}

/* Finish the replies laid down back to back in buf[0, len) (len > 0). Inline: a worker's every ECHO. */
static inline void tp_proto_echo_finish(char *buf, size_t len)
{
	char *p = buf, *end = buf + len;

	for (;;) {
		p[0] = 'O';
		p[1] = 'K';
		p[2] = ' ';
		p = (char *)memchr(p + 3, '\n', (size_t)(end - p - 3)) + 1;
		if (p >= end)
			return;
	}
}

/* The wire name of an op ("SLEEP"); "?" for none. */
const char *tp_proto_op_name(enum tp_op op);

/* The label of an op ("sleep"), as metrics and reports name it; "none" for none. */
const char *tp_proto_op_label(enum tp_op op);

#endif

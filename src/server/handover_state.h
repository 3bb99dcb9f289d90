/* SPDX-License-Identifier: MIT */
/*
 * handover_state: the versioned record of the connections one instance
 * hands to the next through systemd's file descriptor store (handover.c):
 * per connection, the socket's identity (st_dev, st_ino), the client's
 * address and port as the server knew them (a PROXY header's, or the
 * peer's), its flow, and the input already read but not yet answered (a
 * partial line, or lines not yet parsed).
 *
 * Layout, little-endian: "TPHS", u16 version, u16 0, u32 generation, u32
 * count; per record u64 dev, u64 ino, u64 flow, u16 port, u8 address
 * length, u8 flags (bit 0: discarding), u32 input length, the address, the
 * input; then a 64-bit
 * FNV-1a checksum of everything before it.  A reader never trusts a length
 * before checking it against what is left.
 *
 * Pure: no I/O, no logging, no global state.
 */
#ifndef TP_HANDOVER_STATE_H
#define TP_HANDOVER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TP_HANDOVER_STATE_VERSION 1
#define TP_HANDOVER_ADDR_MAX 46                   /* INET6_ADDRSTRLEN */
#define TP_HANDOVER_INPUT_MAX (16u * 1024 * 1024) /* far above any connection's carried input */

/* One connection's record.  input points into the caller's memory (write) or the parsed buffer (read). */
struct tp_handover_conn {
	uint64_t dev, ino; /* fstat() of the socket: the key that pairs the record with its fd */
	uint64_t flow;     /* the flow it belongs to (0: none) */
	uint16_t port;
	bool discarding;                 /* the input starts inside an over-long line, already answered */
	char addr[TP_HANDOVER_ADDR_MAX]; /* NUL-terminated text */
	const char *input;
	uint32_t input_len;
};

/* Bytes tp_handover_state_write() needs for the n records c. */
size_t tp_handover_state_size(const struct tp_handover_conn *c, size_t n);

/*
 * Write the n records c and gen into buf (len bytes, at least
 * tp_handover_state_size()).  Returns the bytes written, or 0 when len is
 * too small or a record is out of bounds (address too long, input over
 * TP_HANDOVER_INPUT_MAX).
 */
size_t tp_handover_state_write(const struct tp_handover_conn *c, size_t n, uint32_t gen, char *buf,
                               size_t len);

/*
 * Parse len bytes at buf.  On success returns 0 with *ret (n records,
 * malloc'd, free() it; their input points into buf) and the generation.
 * Returns -EPROTONOSUPPORT for another version, -EBADMSG for anything
 * malformed or a checksum mismatch, -ENOMEM.  Nothing is returned on error.
 */
int tp_handover_state_read(const char *buf, size_t len, uint32_t *ret_gen, struct tp_handover_conn **ret,
                           size_t *ret_n);

#endif

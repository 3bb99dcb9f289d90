/* SPDX-License-Identifier: MIT */
/*
 * memtrim: when to give the heap's freed memory back to the system
 * (malloc_trim; glibc otherwise keeps a burst's memory for good).  Once
 * per quiet spell, when nothing has happened for TP_MEMTRIM_QUIET_NS; and
 * while traffic goes on, which may be for ever, when the resident free heap
 * is TP_MEMTRIM_BUSY_FREE above what the last trim left, at most once per
 * TP_MEMTRIM_BUSY_EVERY_NS.  Passive: the caller's tick says whether
 * anything happened since the last one.  One thread (loop 0's).
 */
#ifndef TP_MEMTRIM_H
#define TP_MEMTRIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TP_MEMTRIM_QUIET_NS (5 * 1000000000ull)
#define TP_MEMTRIM_BUSY_EVERY_NS (5 * 1000000000ull) /* at most one trim this often while not quiet */
#define TP_MEMTRIM_BUSY_FREE ((size_t)4 << 20)       /* resident free heap worth a trim while not quiet */

struct tp_memtrim {
	uint64_t quiet_since_ns; /* the last tick with activity; 0 before the first */
	bool trimmed;            /* since the last activity */
	uint64_t busy_trim_ns;   /* the last trim while not quiet */
	size_t held_base;        /* resident free heap the last trim left (or at the first look) */
};

/* The process's virtual and resident sizes in bytes (/proc/self/statm); false if unreadable. */
bool tp_memtrim_statm(size_t *size, size_t *resident);

/*
 * One tick at now_ns (> 0); active: whether anything happened since the
 * last (a reply written, a connection come or gone, a rejection).  Trims
 * if it is time; returns whether it did.
 */
bool tp_memtrim_tick(struct tp_memtrim *t, bool active, uint64_t now_ns);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * framer: splits a byte stream into request lines, with a hard bound on the
 * memory any one connection can make it hold.
 *
 * Lines end in "\n" (a "\r" before it is left for proto to strip).  A line
 * longer than max_line bytes is reported once as too long, as soon as that
 * is known, and the rest of it is discarded up to its newline.  The consumer
 * may stop the framer after any line (the connection is paused); the bytes
 * not yet framed are then kept, and framing continues from them on
 * tp_framer_resume().  Bytes are never lost and never reordered.
 *
 * Memory: at most max_line + 1 bytes for a partial line, plus, only while
 * stopped, the unframed rest of the chunk that was being fed.  The buffer is
 * released whenever it empties, so an idle connection holds none.
 *
 * Pure: no I/O, no logging; one framer is used by one thread at a time.
 */
#ifndef TP_FRAMER_H
#define TP_FRAMER_H

#include <stdbool.h>
#include <stddef.h>

struct tp_framer {
	char *buf;       /* retained bytes: partial line, or unframed rest when stopped */
	size_t len;      /* bytes in buf */
	size_t cap;      /* allocated size of buf */
	size_t max_line; /* longest line accepted, without its "\n" */
	size_t ahead;    /* while a callback runs: input bytes after its line's "\n" at hand (0: unknown) */
	bool discarding; /* inside an over-long line: drop up to the next "\n" */
	bool stopped;    /* the consumer stopped framing; buf holds unframed bytes */
};

/*
 * Called for each line, in order: line/len without the "\n", or too_long set
 * (line NULL) once per over-long line.  Return 0 to go on, non-zero to stop
 * after this line.  While it runs, the framer's `ahead` says how many bytes
 * of input follow the line's "\n" in the same buffer (line + len + 1 on):
 * a consumer may look at what comes next (0 when none, or not known).
 */
typedef int (*tp_framer_cb)(void *ctx, const char *line, size_t len, bool too_long);

/* An empty framer of lines up to max_line bytes; it allocates on its first partial line. */
void tp_framer_init(struct tp_framer *f, size_t max_line);

/* Release the buffer. Safe on a zeroed or already released framer. */
void tp_framer_release(struct tp_framer *f);

/*
 * Frame len bytes of input.  Must not be called while stopped (resume
 * first).  Returns 1 when the consumer stopped (the unframed rest is kept),
 * 0 when all input was framed, -ENOMEM when the rest could not be kept.
 */
int tp_framer_feed(struct tp_framer *f, const char *data, size_t len, tp_framer_cb cb, void *ctx);

/*
 * Continue framing the bytes kept when the consumer stopped.  Returns as
 * tp_framer_feed().  A no-op returning 0 when not stopped.
 */
int tp_framer_resume(struct tp_framer *f, tp_framer_cb cb, void *ctx);

/*
 * Load bytes carried over from another process's framer (a partial line,
 * or lines not yet framed), as if the consumer had stopped before them:
 * they are framed by the next tp_framer_resume().  They start at a line
 * boundary, or, with discarding, inside an over-long line already reported.
 * Only on a fresh framer.  Returns 0 or -ENOMEM.
 */
int tp_framer_preload(struct tp_framer *f, const char *data, size_t len, bool discarding);

/* Change the line limit (live reload); applies from the next line. */
void tp_framer_set_max_line(struct tp_framer *f, size_t max_line);

#endif

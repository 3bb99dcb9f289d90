/* SPDX-License-Identifier: MIT */
/*
 * signals: the signals the daemon handles (SIGTERM, SIGINT: stop; SIGHUP:
 * reload; SIGUSR1, SIGUSR2: logged), blocked in every thread and read by
 * loop 0 from a signalfd, so that no handler runs and the loop does the work.
 */
#ifndef TP_SIGNALS_H
#define TP_SIGNALS_H

/*
 * Block the handled signals in the calling thread (and so in every thread
 * it creates later).  Call before any thread exists.  Never fails.
 */
void tp_signals_block(void);

/* Block them and open a non-blocking signalfd for them.  Returns the fd or a negative errno. */
int tp_signals_open(void);

/* The next pending signal's number from fd, or 0 when none is pending. */
int tp_signals_next(int fd);

#endif

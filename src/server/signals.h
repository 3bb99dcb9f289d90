/* SPDX-License-Identifier: MIT */
/*
 * signals: the signals the server handles (SIGTERM, SIGINT, SIGHUP,
 * SIGUSR1, SIGUSR2), read as events from a signalfd by loop 0 rather than
 * handled asynchronously.  Never logs.
 */
#ifndef TP_SIGNALS_H
#define TP_SIGNALS_H

/*
 * Block those signals in the calling thread, which every thread it starts
 * later inherits (so their default actions never run), and return a
 * non-blocking, close-on-exec signalfd for them, or -errno.
 */
int tp_signals_open(void);

/* The next pending signal on fd, or 0 when there is none. */
int tp_signals_next(int fd);

#endif

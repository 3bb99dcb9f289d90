/* SPDX-License-Identifier: MIT */
/* signals: the handled set, blocked everywhere and read from a signalfd (see signals.h). */
#include "signals.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

static void handled(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	/* Their default action would kill the process. */
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
}

void tp_signals_block(void)
{
	sigset_t set;

	handled(&set);
	(void)pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int tp_signals_open(void)
{
	sigset_t set;
	int fd;

	handled(&set);
	(void)pthread_sigmask(SIG_BLOCK, &set, NULL);
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int tp_signals_next(int fd)
{
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

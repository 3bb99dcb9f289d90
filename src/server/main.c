/* SPDX-License-Identifier: MIT */
/*
 * main: tpserver's entry point: the settings read (config_load.h), signal
 * set-up, and the server's lifetime.  Exit status: 0 after a clean
 * shutdown, 78 (EX_CONFIG) for any configuration error (file or flags),
 * 1 for anything else that stops the start.
 *
 * `tpserver --reload-and-wait PID` is systemd's ExecReload: it signals the
 * daemon PID and waits for the outcome of the reload (reload_status.h):
 * 0 when applied, 1 with the daemon's message when refused, when the
 * daemon is gone, or after RELOAD_WAIT_MS; 0, saying so, when SIGTERM
 * (a stop or restart of the service, which systemd sends its control
 * process too) or SIGINT ends the wait: a helper killed by it would fail
 * the unit.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "config_file.h"
#include "config_load.h"
#include "log.h"
#include "reload_status.h"
#include "sd.h"
#include "server.h"
#include "signals.h"

#define RELOAD_WAIT_MS 30000
#define NOBODY_ID 65534 /* nobody and nogroup */

/*
 * --check-config run by root reads any file, while the packaged service
 * runs as a dynamic user, which reads only what others may: read the
 * configuration again in a child that is nobody, from / as the service
 * does (an @include is opened relative to the working directory), and
 * warn of what it could not (a file or directory mode, an @include).  Only
 * for a file named by an absolute path, as the service's is.
 */
static void check_unprivileged(const struct tp_config_args *a, const struct tp_config *cfg)
{
	char msg[TP_MSG_MAX];
	size_t len = 0;
	int fds[2];
	pid_t pid;

	if (geteuid() != 0 || cfg->config_path[0] != '/' || pipe2(fds, O_CLOEXEC) < 0)
		return;
	pid = fork();
	if (pid == 0) {
		struct tp_config again;
		close(fds[0]);
		if (chdir("/") == 0 && setgroups(0, NULL) == 0 && setgid(NOBODY_ID) == 0 &&
		    setuid(NOBODY_ID) == 0 && tp_config_load_read(a, &again, NULL, msg, sizeof(msg)) < 0)
			(void)!write(fds[1], msg, strlen(msg));
		_exit(0);
	}
	close(fds[1]);
	while (pid > 0 && len < sizeof(msg) - 1) {
		ssize_t n = read(fds[0], msg + len, sizeof(msg) - 1 - len);
		if (n <= 0)
			break; /* the child's end: it wrote all it had, or nothing */
		len += (size_t)n;
	}
	close(fds[0]);
	if (pid > 0)
		(void)waitpid(pid, NULL, 0);
	msg[len] = '\0';
	if (len)
		fprintf(stderr,
		        "%stpserver: warning: as an unprivileged user (the packaged service runs as one): "
		        "%s\n",
		        tp_log_stderr_prefix(TP_LOG_WARNING), msg);
}

#define RELOAD_AND_WAIT "--reload-and-wait"

/* Whether argv[1] is --reload-and-wait, alone or joined to its PID with '='. */
static bool is_reload_and_wait(int argc, char **argv)
{
	size_t n = strlen(RELOAD_AND_WAIT);

	return argc >= 2 && strncmp(argv[1], RELOAD_AND_WAIT, n) == 0 &&
	       (argv[1][n] == '\0' || argv[1][n] == '=');
}

/* --reload-and-wait: the signal that ended the wait, or 0. */
static volatile sig_atomic_t wait_ended_by;

static void end_wait(int signo)
{
	wait_ended_by = signo;
}

/* The wait ended by a signal: what is left to know, at notice (exit 0). */
static int wait_ended(void)
{
	fprintf(stderr, "%stpserver: reload: stopped waiting (%s): %s\n", tp_log_stderr_prefix(TP_LOG_NOTICE),
	        strsignal(wait_ended_by),
	        wait_ended_by == SIGTERM ? "the service is stopping, so the reload's outcome is moot"
	                                 : "the daemon's log says whether the file was applied");
	return 0;
}

/* tpserver --reload-and-wait PID (or =PID), alone. */
static int reload_and_wait(int argc, char **argv)
{
	const char *joined = strchr(argv[1], '=');
	const char *pid_text = joined ? joined + 1 : argc > 2 ? argv[2] : NULL;
	struct sigaction sa = {.sa_handler = end_wait}; /* no SA_RESTART: the poll's sleep ends at once */
	char dir[4096], msg[TP_MSG_MAX], *end;
	long pid;
	int r;

	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	if (!pid_text || argc != (joined ? 2 : 3)) {
		fprintf(stderr,
		        "%stpserver: --reload-and-wait takes a process id and nothing else: "
		        "tpserver --reload-and-wait PID\n",
		        tp_log_stderr_prefix(TP_LOG_ERROR));
		return TP_EXIT_CONFIG;
	}
	errno = 0;
	pid = strtol(pid_text, &end, 10);
	if (errno || *end || end == pid_text || pid <= 0) {
		fprintf(stderr, "%stpserver: --reload-and-wait: invalid process id \"%s\"\n",
		        tp_log_stderr_prefix(TP_LOG_ERROR), pid_text);
		return TP_EXIT_CONFIG;
	}
	if (!tp_reload_status_dir(dir, sizeof(dir))) {
		fprintf(stderr,
		        "%stpserver: --reload-and-wait: RUNTIME_DIRECTORY is not set "
		        "(RuntimeDirectory= in the unit)\n",
		        tp_log_stderr_prefix(TP_LOG_ERROR));
		return 1;
	}
	r = tp_reload_status_wait(dir, (pid_t)pid, RELOAD_WAIT_MS, &wait_ended_by, msg, sizeof(msg));
	if (r == 0)
		return 0;
	if (r == -EINTR || wait_ended_by) /* a refusal read as the signal came: the stop's, moot too */
		return wait_ended();
	fprintf(stderr, "%stpserver: %s%s\n", tp_log_stderr_prefix(TP_LOG_ERROR),
	        r == 1 ? "reload refused: " : "reload: ", msg);
	return 1;
}

/* A start that fails with err (-errno r): its start event, and what `systemctl status` shows. */
static int start_failed(const char *err, int r, int exit_status)
{
	tp_log(TP_LOG_ERROR, "start", "%s", err);
	(void)tp_sd_notifyf("STATUS=cannot start: %s\nERRNO=%d", err, -r);
	return exit_status;
}

int main(int argc, char **argv)
{
	/* Static: a reload's thread may still read it while the process exits. */
	static struct tp_config_args a;
	static struct tp_config_origin origin[TP_SETTINGS_MAX];
	struct tp_config cfg;
	struct tp_server *srv = NULL;
	char err[TP_MSG_MAX];
	int r;

	a = (struct tp_config_args){argc, argv};
	/*
	 * One heap for every thread (MEMORY.md): what one event loop frees
	 * serves the next, where per-thread arenas would each keep their own
	 * high-water mark.  Requests take their slots from per-loop caches, so
	 * the loops seldom meet on its lock.
	 */
	(void)mallopt(M_ARENA_MAX, 1);
	if (is_reload_and_wait(argc, argv))
		return reload_and_wait(argc, argv);
	r = tp_config_load_read(&a, &cfg, origin, err, sizeof(err));
	if (r > 0)
		return 0;
	if (r < 0 && !cfg.check_config && tp_log_under_journal()) {
		/* A start under systemd: its start event, which the catalog explains. */
		tp_log_init("tpserver", TP_LOG_INFO);
		return start_failed(err, r, TP_EXIT_CONFIG);
	}
	if (r < 0) {
		/* Under systemd (a check): at priority err in the journal. */
		fprintf(stderr, "%stpserver: %s\n", tp_log_stderr_prefix(TP_LOG_ERROR), err);
		return TP_EXIT_CONFIG;
	}
	if (cfg.check_config) {
		r = tp_config_load_check_listen(&cfg, origin, false, err, sizeof(err));
		if (r == -EINVAL) {
			fprintf(stderr, "%stpserver: %s\n", tp_log_stderr_prefix(TP_LOG_ERROR), err);
			return TP_EXIT_CONFIG;
		}
		if (r < 0)
			fprintf(stderr, "%stpserver: warning: %s: a start fails (exit 1) while it is so\n",
			        tp_log_stderr_prefix(TP_LOG_WARNING), err);
		check_unprivileged(&a, &cfg);
		for (const tp_config_warning_fn *w = tp_config_warnings; *w; w++)
			if ((*w)(&cfg, err, sizeof(err)))
				fprintf(stderr, "%stpserver: warning: %s\n",
				        tp_log_stderr_prefix(TP_LOG_WARNING), err);
		if (cfg.quiet)
			return 0;
		printf("# configuration OK%s%s\n", cfg.config_path[0] ? ": " : " (built-in defaults)",
		       cfg.config_path);
		tp_config_print_origin(&cfg, origin, stdout);
		return 0;
	}

	tp_log_init("tpserver", cfg.log_level);

	/* Before any thread exists: every thread inherits the mask, loop 0 reads a signalfd. */
	tp_signals_block();
	/* A client that vanishes must cost an EPIPE, never the process. */
	signal(SIGPIPE, SIG_IGN);

	tp_log(TP_LOG_INFO, "start", "tpserver %s starting (configuration: %s)", TP_VERSION,
	       cfg.config_path[0] ? cfg.config_path : "built-in defaults");
	r = tp_config_load_check_listen(&cfg, origin, true, err, sizeof(err));
	if (r == 0)
		r = tp_server_new(&cfg, tp_config_load_again, &a, &srv, err, sizeof(err));
	if (r < 0) /* -EINVAL: an unusable address or inherited socket, a configuration problem */
		return start_failed(err, r, r == -EINVAL ? TP_EXIT_CONFIG : 1);
	r = tp_server_run(srv);
	tp_server_free(srv);
	return r;
}

/* SPDX-License-Identifier: MIT */
/*
 * main: tpserver's entry point: settings (defaults < file < flags), signal
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
#include "config_dropin.h"
#include "config_file.h"
#include "listener.h"
#include "log.h"
#include "reload_status.h"
#include "sd.h"
#include "server.h"
#include "signals.h"

#define RELOAD_WAIT_MS 30000
#define NOBODY_ID 65534 /* nobody and nogroup */

struct args {
	int argc;
	char **argv;
};

/* A refusal of the whole configuration, named after its file (when there is one): err. */
static int name_file(const struct tp_config *cfg, int r, const char *msg, char *err, size_t errlen)
{
	if (r < 0)
		snprintf(err, errlen, "%s%s%s", cfg->config_path, cfg->config_path[0] ? ": " : "", msg);
	return r;
}

/* Where setting `path` was set (an entry with no file: by default), or NULL without origins. */
static const struct tp_config_origin *origin_of(const struct tp_config_origin *origin, const char *path)
{
	for (size_t i = 0; origin && tp_settings[i].path; i++)
		if (strcmp(tp_settings[i].path, path) == 0)
			return &origin[i];
	return NULL;
}

/* Where setting `path` was set, as an error's prefix: "FILE:LINE: path", or the file alone. */
static void name_setting(const struct tp_config *cfg, const struct tp_config_origin *origin, const char *path,
                         char *buf, size_t len)
{
	const struct tp_config_origin *o = origin_of(origin, path);

	if (o && o->file[0] && o->line)
		snprintf(buf, len, "%s:%u: %s", o->file, o->line, path);
	else if (o && o->file[0])
		snprintf(buf, len, "%s: %s", o->file, path);
	else
		snprintf(buf, len, "%s%s%s", cfg->config_path, cfg->config_path[0] ? ": " : "", path);
}

/*
 * The addresses a start binds, checked before anything is bound so that a
 * refusal names the line that set the address: one that cannot be an
 * address or a name that does not resolve (-EINVAL, exit 78), and an
 * address not of this host or a name DNS did not answer for (-EADDRNOTAVAIL,
 * -EAGAIN: perhaps not yet; exit 1, as a failed bind, which systemd's
 * Restart= retries within its start limit).  A start binds
 * the listening socket unless systemd passed one for requests, and then
 * also the metrics and agent ones when enabled and not passed (sockets.h).
 * --check-config (start false) says the same, except where systemd runs it
 * (INVOCATION_ID: the packaged unit is socket-activated): there only a
 * listen.host that looks numeric is checked, without DNS.  An -EINVAL
 * comes first; of addresses not of this host, the first.
 */
static int check_listen(const struct tp_config *cfg, const struct tp_config_origin *origin, bool start,
                        char *err, size_t errlen)
{
	bool data, metrics, agent;
	tp_sd_passed(&data, &metrics, &agent);
	bool resolve = !data && (start || !getenv("INVOCATION_ID"));
	const struct {
		const char *what, *path, *host;
		int port;
		bool used;
	} addrs[] = {
	        {"listen", "listen.host", cfg->host, cfg->port, !start || !data},
	        {"metrics", "metrics.host", cfg->metrics_host, cfg->metrics_port,
	         cfg->metrics_enabled && resolve && !metrics},
	        {"agent", "agent.host", cfg->agent_host, cfg->agent_port,
	         cfg->agent_enabled && resolve && !agent},
	};
	char msg[1024], where[4200]; /* a host is at most 255 bytes; a path 4095 */
	int ret = 0;

	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		int r = addrs[i].used ? tp_listener_check(addrs[i].what, addrs[i].host, addrs[i].port,
		                                          resolve, msg, sizeof(msg))
		                      : 0;
		if (r < 0 && (ret == 0 || r == -EINVAL)) {
			name_setting(cfg, origin, addrs[i].path, where, sizeof(where));
			snprintf(err, errlen, "%s: %s", where, msg);
			/* A host may hold any byte: the message stays one line. */
			tp_log_one_line(err, errlen);
			ret = r;
		}
		if (r == -EINVAL)
			break;
	}
	return ret;
}

/*
 * The rules across settings, on the result of the files, the drop-ins and
 * the flags (a file alone may be completed by what follows it): no single
 * line is to blame, so the refusal says where each of the rule's settings
 * was set ("shutdown.drain_s at FILE:LINE; shutdown.timeout_s by default").
 * Without origins, named after the main file.
 */
static int check_result(const struct tp_config *cfg, const struct tp_config_origin *origin, char *err,
                        size_t errlen)
{
	const char *paths[TP_RULE_PATHS_MAX + 1];
	char msg[TP_MSG_MAX];
	int r = tp_config_validate(cfg, paths, msg, sizeof(msg));
	size_t at;

	if (r == 0 || !origin || !paths[0])
		return name_file(cfg, r, msg, err, errlen);
	at = (size_t)snprintf(err, errlen, "%s (", msg);
	for (size_t i = 0; paths[i] && at < errlen; i++) {
		const struct tp_config_origin *o = origin_of(origin, paths[i]);
		const char *sep = i ? "; " : "";
		char entry[sizeof(o->file) + 128];
		if (o && o->file[0] && o->line)
			snprintf(entry, sizeof(entry), "%s%s at %s:%u", sep, paths[i], o->file, o->line);
		else if (o && o->file[0])
			snprintf(entry, sizeof(entry), "%s%s from %s", sep, paths[i], o->file);
		else
			snprintf(entry, sizeof(entry), "%s%s by default", sep, paths[i]);
		size_t n = strlen(entry);
		/* Paths of thousands of bytes may not all fit: whole entries or none. */
		if (at + n + sizeof("; ...)") > errlen) {
			snprintf(err + at, errlen - at, "%s...)", sep);
			return r;
		}
		memcpy(err + at, entry, n + 1);
		at += n;
	}
	if (at < errlen)
		snprintf(err + at, errlen - at, ")");
	return r;
}

/*
 * The effective configuration: defaults, then the file (the explicit one,
 * or the default path when it exists) and the drop-ins of its .d/
 * directory, then the command-line flags.  origin (or NULL) gets where each
 * setting came from.  Returns 0, 1 (--help/--version printed), or a
 * negative errno with err set.
 */
static int load_config(const struct args *a, struct tp_config *ret, struct tp_config_origin *origin,
                       char *err, size_t errlen)
{
	struct tp_config cli, cfg;
	const char *path;
	int r;

	tp_config_defaults(&cli);
	r = tp_config_parse_args(&cli, a->argc, a->argv, err, errlen);
	*ret = cli; /* what the flags asked (a check?), also when the files fail */
	if (r != 0)
		return r;

	tp_config_defaults(&cfg);
	path = cli.config_explicit ? cli.config_path : TP_DEFAULT_CONFIG_PATH;
	r = tp_config_load_dropins(&cfg, path, !cli.config_explicit, origin, err, errlen);
	if (r < 0)
		return r;
	r = tp_config_parse_args(&cfg, a->argc, a->argv, err, errlen);
	if (r == 0 && origin)
		r = tp_config_origin_args(origin, a->argc, a->argv, err, errlen);
	if (r != 0)
		return r;
	if (!cfg.config_explicit && access(path, F_OK) == 0)
		snprintf(cfg.config_path, sizeof(cfg.config_path), "%s", path);
	r = check_result(&cfg, origin, err, errlen);
	if (r < 0)
		return r;
	*ret = cfg;
	return 0;
}

/*
 * --check-config run by root reads any file, while the packaged service
 * runs as a dynamic user, which reads only what others may: read the
 * configuration again in a child that is nobody, from / as the service
 * does (an @include is opened relative to the working directory), and
 * warn of what it could not (a file or directory mode, an @include).  Only
 * for a file named by an absolute path, as the service's is.
 */
static void check_unprivileged(const struct args *a, const struct tp_config *cfg)
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
		    setuid(NOBODY_ID) == 0 && load_config(a, &again, NULL, msg, sizeof(msg)) < 0)
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

static int reload_config(struct tp_config *ret, char *err, size_t errlen, void *ctx)
{
	/* Origins only to name a refusal; without memory for them it is named after the file. */
	struct tp_config_origin *origin = calloc(TP_SETTINGS_MAX, sizeof(*origin));
	int r = load_config(ctx, ret, origin, err, errlen);

	/* An address -t and a start refuse is refused here too: else the next restart fails. */
	if (r == 0 && check_listen(ret, origin, false, err, errlen) == -EINVAL)
		r = -EINVAL;
	free(origin);
	return r > 0 ? -EINVAL : r;
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
	static struct args a;
	static struct tp_config_origin origin[TP_SETTINGS_MAX];
	struct tp_config cfg;
	struct tp_server *srv = NULL;
	char err[TP_MSG_MAX];
	int r;

	a = (struct args){argc, argv};
	/*
	 * One heap for every thread (MEMORY.md): what one event loop frees
	 * serves the next, where per-thread arenas would each keep their own
	 * high-water mark.  Requests take their slots from per-loop caches, so
	 * the loops seldom meet on its lock.
	 */
	(void)mallopt(M_ARENA_MAX, 1);
	if (is_reload_and_wait(argc, argv))
		return reload_and_wait(argc, argv);
	r = load_config(&a, &cfg, origin, err, sizeof(err));
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
		r = check_listen(&cfg, origin, false, err, sizeof(err));
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
	r = check_listen(&cfg, origin, true, err, sizeof(err));
	if (r == 0)
		r = tp_server_new(&cfg, reload_config, &a, &srv, err, sizeof(err));
	if (r < 0) /* -EINVAL: an unusable address or inherited socket, a configuration problem */
		return start_failed(err, r, r == -EINVAL ? TP_EXIT_CONFIG : 1);
	r = tp_server_run(srv);
	tp_server_free(srv);
	return r;
}

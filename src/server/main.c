/* SPDX-License-Identifier: MIT */
/*
 * main: tpserver's entry point: settings (defaults < file < flags), signal
 * set-up, and the server's lifetime.  Exit status: 0 after a clean
 * shutdown, 78 (EX_CONFIG) for any configuration error (file or flags),
 * 1 for anything else that stops the start.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_file.h"
#include "log.h"
#include "server.h"

struct args {
	int argc;
	char **argv;
};

/*
 * The effective configuration: defaults, then the file (the explicit one,
 * or the default path when it exists), then the command-line flags.
 * Returns 0, 1 (--help/--version printed), or a negative errno with err set.
 */
static int load_config(const struct args *a, struct tp_config *ret, char *err, size_t errlen)
{
	struct tp_config cli, cfg;
	const char *path = NULL;
	int r;

	tp_config_defaults(&cli);
	r = tp_config_parse_args(&cli, a->argc, a->argv, err, errlen);
	if (r != 0)
		return r;

	tp_config_defaults(&cfg);
	if (cli.config_explicit)
		path = cli.config_path;
	else if (access(TP_DEFAULT_CONFIG_PATH, F_OK) == 0)
		path = TP_DEFAULT_CONFIG_PATH;
	if (path) {
		r = tp_config_load_file(&cfg, path, err, errlen);
		if (r < 0)
			return r;
	}
	r = tp_config_parse_args(&cfg, a->argc, a->argv, err, errlen);
	if (r != 0)
		return r;
	if (path && !cfg.config_explicit)
		snprintf(cfg.config_path, sizeof(cfg.config_path), "%s", path);
	r = tp_config_validate(&cfg, err, errlen);
	if (r < 0)
		return r;
	*ret = cfg;
	return 0;
}

static int reload_config(struct tp_config *ret, char *err, size_t errlen, void *ctx)
{
	int r = load_config(ctx, ret, err, errlen);
	return r > 0 ? -EINVAL : r;
}

int main(int argc, char **argv)
{
	/* Static: a reload's thread may still read it while the process exits. */
	static struct args a;
	struct tp_config cfg;
	struct tp_server *srv = NULL;
	char err[1024];
	sigset_t set;
	int r;

	a = (struct args){argc, argv};
	r = load_config(&a, &cfg, err, sizeof(err));
	if (r > 0)
		return 0;
	if (r < 0) {
		fprintf(stderr, "tpserver: %s\n", err);
		return TP_EXIT_CONFIG;
	}
	if (cfg.check_config) {
		if (cfg.quiet)
			return 0;
		printf("# configuration OK%s%s\n", cfg.config_path[0] ? ": " : " (built-in defaults)",
		       cfg.config_path);
		tp_config_print(&cfg, stdout);
		return 0;
	}

	tp_log_init("tpserver", cfg.log_level);

	/* Before any thread exists: every thread inherits the mask, loop 0 reads a signalfd. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* A client that vanishes must cost an EPIPE, never the process. */
	signal(SIGPIPE, SIG_IGN);

	tp_log(TP_LOG_INFO, "start", "tpserver %s starting (configuration: %s)", TP_VERSION,
	       cfg.config_path[0] ? cfg.config_path : "built-in defaults");
	r = tp_server_new(&cfg, reload_config, &a, &srv, err, sizeof(err));
	if (r < 0) {
		tp_log(TP_LOG_ERROR, "start", "%s", err);
		/* -EINVAL: an unusable address or inherited socket, a configuration problem. */
		return r == -EINVAL ? TP_EXIT_CONFIG : 1;
	}
	r = tp_server_run(srv);
	tp_server_free(srv);
	return r;
}

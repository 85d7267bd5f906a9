/* vdi-hostd: the host agent. Reads its configuration (`-n` checks it and
 * exits), opens the host (stored desktops, re-adopted VMMs), starts the API,
 * the display relay and the heartbeat, and supervises desktops from the main
 * thread until SIGTERM or SIGINT. VMMs keep running when it exits. Also the
 * entry of `vdi-hostd --monitor` (see vmm.h). */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hostd/api.h"
#include "hostd/conf.h"
#include "hostd/heartbeat.h"
#include "hostd/host.h"
#include "hostd/relay.h"
#include "hostd/vmm.h"
#include "lib/fdlimit.h"
#include "lib/privdrop.h"
#include "lib/log.h"

#define EXIT_USAGE 2
#define TICK_MS	   200

static const char usage_text[] =
    "usage: vdi-hostd [-c FILE] [-n [-v]] [-d]\n"
    "Runs desktop VMs on this host for the vdi broker.\n"
    "\n"
    "  -c FILE   configuration file (default /etc/vdi/hostd.conf)\n"
    "  -n        check the configuration and exit: 0 when valid, 2 with "
    "file:line: message\n"
    "  -v        with -n, print the effective configuration\n"
    "  -d        debug log\n"
    "  -h        this text\n"
    "\n"
    "Exit status: 0 on SIGTERM or SIGINT, 1 on a runtime failure, 2 on bad "
    "options or\n"
    "configuration. Desktops keep running when vdi-hostd exits; the next one "
    "adopts them.\n";

static void listen_notice(const char *what, const struct sockaddr_storage *ss, const char *text)
{
	if (!conf_is_loopback(ss))
		log_info("%s listens beyond loopback on %s, as configured", what, text);
}

static int run(const struct conf *c, const char *self)
{
	struct heartbeat *hb = NULL;
	struct relay *relay = NULL;
	struct host_api *api = NULL;
	struct host *h;
	char err[512];
	sigset_t set;
	int status = 1, sig = 0;

	fd_limit_raise(); /* VMM logs, sockets, relay and API connections */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	/* Blocked before any thread starts, so they all leave these to
	 * sigtimedwait(). */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* before its directories are checked: they must be the user's */
	if (privileges_drop(c->user, "vdi-hostd", err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		return 1;
	}
	h = host_open(c, self);
	if (!h)
		return 1;
	api = host_api_start(c, h);
	if (!api)
		goto out;
	listen_notice("the API", &c->api_addr, c->api_listen);
	if (c->relay_listen[0]) {
		relay = relay_start(c, h);
		if (!relay)
			goto out;
		listen_notice("the display relay", &c->relay_addr, c->relay_listen);
	}
	hb = heartbeat_start(c, h);
	log_info("ready");
	for (;;) {
		struct timespec tick = {.tv_nsec = TICK_MS * 1000000L};

		sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP)
			log_info("SIGHUP: nothing to reload; restart vdi-hostd to apply a new "
				 "configuration (desktops keep running)");
		host_tick(h);
	}
	log_info("%s: stopping; desktops keep running", strsignal(sig));
	status = 0;
out:
	heartbeat_stop(hb);
	relay_stop(relay);
	host_api_stop(api);
	host_close(h);
	return status;
}

int main(int argc, char **argv)
{
	const char *path = "/etc/vdi/hostd.conf";
	bool check = false, print = false, debug = false;
	char err[1024], self[PATH_MAX];
	struct conf c;
	ssize_t n;
	int opt, r;

	if (argc > 1 && !strcmp(argv[1], "--monitor"))
		return vmm_monitor_main(argc, argv);
	while ((opt = getopt(argc, argv, "c:nvdh")) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'n': check = true; break;
		case 'v': print = true; break;
		case 'd': debug = true; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vdi-hostd: unexpected argument '%s'\n%s", argv[optind],
			usage_text);
		return EXIT_USAGE;
	}
	log_init("vdi-hostd", LOG_LEVEL_INFO, false);
	r = conf_load(path, &c, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "%s\n", err);
		conf_free(&c);
		return EXIT_USAGE;
	}
	if (check) {
		if (print)
			conf_print(stdout, &c);
		else
			printf("%s: configuration ok\n", path);
		conf_free(&c);
		return 0;
	}
	log_set_level(debug ? LOG_LEVEL_DEBUG : (enum log_level)c.log_level);
	umask(077); /* disks, logs, sockets and pid files are hostd's alone */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		log_warn("cannot find my own executable (for --monitor)");
		conf_free(&c);
		return 1;
	}
	self[n] = '\0';
	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = run(&c, self);
	curl_global_cleanup();
	conf_free(&c);
	return r;
}

/* vdi-broker: loads the configuration (-n checks it), opens the store and the
 * authenticator, starts the maintenance thread and the HTTPS listeners, and runs until
 * SIGTERM or SIGINT. --add-user creates a local user in the store (the first admin). */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/api.h"
#include "broker/broker.h"
#include "broker/config.h"
#include "lib/fdlimit.h"
#include "lib/privdrop.h"
#include "lib/log.h"

#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: vdi-broker [-c FILE] [-n [-v]] [-d]\n"
    "       vdi-broker [-c FILE] --add-user NAME [--groups G1,G2] [--display-name TEXT]\n"
    "  -c FILE   configuration (default /etc/vdi/broker.conf)\n"
    "  -n        check the configuration and exit (0 valid, 2 not); -v prints it\n"
    "  -d        debug log\n"
    "  --add-user NAME  add a local user to the store, password on standard input\n";

/* Reads one line from stdin into buf without its newline. */
static int read_password(char *buf, size_t len)
{
	size_t n;

	if (!fgets(buf, (int)len, stdin))
		return -EINVAL;
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	return n ? 0 : -EINVAL;
}

static int add_user(const struct broker_config *cfg, const char *name, const char *groups,
		    const char *display_name)
{
	char err[1024], password[1100], *copy, *save = NULL, *g;
	json_t *list = json_array();
	struct broker *b;
	int r;

	/* Only backend = local without users_file logs in with the store's users. */
	if (cfg->bc_auth.ac_backend != AUTH_BACKEND_LOCAL ||
	    (cfg->bc_auth.ac_users_file && cfg->bc_auth.ac_users_file[0])) {
		fprintf(stderr,
			"vdi-broker: users come from %s here, not from the broker's store: "
			"create %s there and name it in [broker] admin_users to make it an "
			"administrator\n",
			cfg->bc_auth.ac_backend == AUTH_BACKEND_LDAP ? "the LDAP directory"
								     : "[auth] users_file",
			name);
		json_decref(list);
		return EXIT_USAGE;
	}
	if (read_password(password, sizeof(password)) < 0) {
		fprintf(stderr, "vdi-broker: give the password on standard input\n");
		json_decref(list);
		return EXIT_USAGE;
	}
	copy = strdup(groups ? groups : "");
	for (g = strtok_r(copy, ",", &save); g; g = strtok_r(NULL, ",", &save)) {
		while (*g == ' ')
			g++;
		if (*g)
			json_array_append_new(list, json_string(g));
	}
	free(copy);
	b = broker_open(cfg, err, sizeof(err));
	if (!b) {
		fprintf(stderr, "vdi-broker: %s\n", err);
		json_decref(list);
		return 1;
	}
	r = broker_user_add(b, name, password, display_name, NULL, list, err, sizeof(err));
	explicit_bzero(password, sizeof(password));
	if (r == 0)
		broker_audit(b, "vdi-broker --add-user", "user_add", name, "success", NULL, NULL);
	broker_close(b);
	json_decref(list);
	if (r < 0) {
		fprintf(stderr, "vdi-broker: %s\n", err);
		return r == -EINVAL || r == -EEXIST ? EXIT_USAGE : 1;
	}
	printf("user %s added\n", name);
	return 0;
}

static int serve(const struct broker_config *cfg)
{
	struct broker *b;
	struct api *api = NULL;
	sigset_t set;
	char err[1024];
	long files = fd_limit_raise();
	int sig, status = 1;

	/* a connection holds up to 4 descriptors; handshakes as many again */
	if (files > 0 && files < 8L * cfg->bc_max_connections + 256)
		log_warnx("open-file limit %ld is low for [http] max_connections = %d: raise "
			  "LimitNOFILE",
			  files, cfg->bc_max_connections);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* before any thread starts */
	signal(SIGPIPE, SIG_IGN);
	/* before any file is made: the state directory is the user's */
	if (privileges_drop(cfg->bc_user, "vdi-broker", err, sizeof(err)) < 0) {
		log_err("%s", err);
		return 1;
	}
	b = broker_open(cfg, err, sizeof(err));
	if (!b) {
		log_err("%s", err);
		return 1;
	}
	if (broker_start(b) < 0) {
		log_err("cannot start the maintenance thread");
		goto out;
	}
	api = api_start(b, err, sizeof(err));
	if (!api) {
		log_err("%s", err);
		goto out;
	}
	log_info("ready");
	for (;;) {
		sig = sigwaitinfo(&set, NULL);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP)
			log_info("SIGHUP: restart vdi-broker to apply a new configuration");
	}
	log_info("%s: stopping", strsignal(sig));
	broker_cancel_logins(b); /* a directory that hangs must not hold the stop */
	status = 0;
out:
	api_stop(api);
	broker_close(b);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
	    {"add-user", required_argument, NULL, 'A'},
	    {"groups", required_argument, NULL, 'G'},
	    {"display-name", required_argument, NULL, 'D'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = "/etc/vdi/broker.conf", *new_user = NULL, *groups = NULL,
		   *display_name = NULL;
	bool check = false, print = false, debug = false;
	struct broker_config cfg;
	char err[1024];
	int opt, status;

	while ((opt = getopt_long(argc, argv, "c:nvdh", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'n': check = true; break;
		case 'v': print = true; break;
		case 'd': debug = true; break;
		case 'A': new_user = optarg; break;
		case 'G': groups = optarg; break;
		case 'D': display_name = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vdi-broker: unexpected argument '%s'\n%s", argv[optind],
			usage_text);
		return EXIT_USAGE;
	}
	/* whatever the broker makes (database, WAL files, certificate) is its own: 0600 and
	 * 0700 even where a file is created without an explicit mode */
	umask(077);
	log_init("vdi-broker", LOG_LEVEL_INFO, false);
	if (broker_config_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		broker_config_free(&cfg);
		return EXIT_USAGE;
	}
	if (check) {
		if (print)
			broker_config_print(stdout, &cfg);
		broker_config_free(&cfg);
		return 0;
	}
	log_set_level(debug ? LOG_LEVEL_DEBUG : (enum log_level)cfg.bc_log_level);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		fprintf(stderr, "vdi-broker: cannot initialise libcurl\n");
		broker_config_free(&cfg);
		return 1;
	}
	status = new_user ? add_user(&cfg, new_user, groups, display_name) : serve(&cfg);
	curl_global_cleanup();
	broker_config_free(&cfg);
	return status;
}

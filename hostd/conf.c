/* vdi-hostd's option table and the checks run after parsing. Defaults keep
 * everything on loopback; paths may be relative to the directory hostd is
 * started from. */
#include "hostd/conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/hostport.h"

#define OPT(sec, name, type, field, def, min, max, help)                                           \
	{                                                                                          \
		.co_section = sec, .co_name = name, .co_type = type,                               \
		.co_offset = offsetof(struct conf, field), .co_default = def, .co_min = min,       \
		.co_max = max, .co_help = help                                                     \
	}
#define PATH_OPT(sec, name, field, def, help)                                                      \
	OPT(sec, name, CONFIG_STRING, field, def, 0, 4095, help)

static const char *const log_levels[] = {"error", "warning", "info", "debug", NULL};
static const char *const engines[] = {"qemu", "vdi-hv", NULL};
static const char *const accels[] = {"auto", "kvm", "tcg", NULL};

static const struct config_option conf_options[] = {
    OPT("hostd", "host_id", CONFIG_STRING, host_id, "", 0, 64,
	"this host's name towards the broker (default: the host name)"),
    OPT("hostd", "user", CONFIG_STRING, user, "", 0, 64,
	"started as root: the user to run as (in the kvm group for vdi-hv)"),
    PATH_OPT("hostd", "state_dir", state_dir, "/var/lib/vdi-hostd",
	     "desktop definitions, disks and logs"),
    PATH_OPT("hostd", "run_dir", run_dir, "/run/vdi-hostd",
	     "sockets, pid files (short: unix socket paths must fit 108 bytes)"),
    PATH_OPT("hostd", "template_dirs", template_dirs, "/var/lib/vdi/templates",
	     "colon-separated directories templates may name files in"),
    {.co_section = "hostd",
     .co_name = "log_level",
     .co_type = CONFIG_ENUM,
     .co_offset = offsetof(struct conf, log_level),
     .co_default = "info",
     .co_choices = log_levels},
    OPT("api", "listen", CONFIG_STRING, api_listen, "127.0.0.1:8443", 0, 128,
	"address:port of the HTTPS API"),
    PATH_OPT("api", "cert", tls_cert, "/etc/vdi/hostd.crt", "hostd's certificate (PEM)"),
    PATH_OPT("api", "key", tls_key, "/etc/vdi/hostd.key", "its private key (PEM)"),
    PATH_OPT("api", "ca", tls_ca, "/etc/vdi/ca.crt", "the CA that signs the broker's certificate"),
    OPT("api", "broker_name", CONFIG_STRING, broker_name, "vdi-broker", 0, 128,
	"the name (CN) of the broker's certificate: the one client let in by the API and the "
	"relay; another certificate from the CA, a host's, is refused"),
    OPT("api", "max_body", CONFIG_INT, api_max_body, "65536", 1024, 1048576,
	"largest request body in bytes"),
    OPT("api", "max_connections", CONFIG_INT, api_max_connections, "32", 1, 1024,
	"simultaneous API connections (and as many in their TLS handshake)"),
    OPT("api", "max_connections_per_address", CONFIG_INT, api_max_per_address, "16", 1, 1024,
	"API connections one client address may hold"),
    OPT("relay", "listen", CONFIG_STRING, relay_listen, "127.0.0.1:5900", 0, 128,
	"address:port of the display relay (TLS); empty: no relay"),
    {.co_section = "relay",
     .co_name = "require_client_cert",
     .co_type = CONFIG_BOOL,
     .co_offset = offsetof(struct conf, relay_require_client_cert),
     .co_default = "yes"},
    OPT("relay", "max_sessions", CONFIG_INT, relay_max_sessions, "64", 1, 4096,
	"simultaneous display sessions"),
    OPT("relay", "handshake_timeout", CONFIG_DURATION, relay_handshake_timeout, "10s", 1, 300,
	"time for TLS and the ticket line"),
    OPT("relay", "ticket_max_lifetime", CONFIG_DURATION, ticket_max_lifetime, "120s", 1, 3600,
	"latest expiry accepted for a ticket, from now"),
    OPT("broker", "heartbeat_url", CONFIG_STRING, heartbeat_url, "", 0, 1024,
	"https URL heartbeats are POSTed to; empty: none"),
    OPT("broker", "heartbeat_interval", CONFIG_DURATION, heartbeat_interval, "1s", 1, 3600,
	"time between heartbeats"),
    OPT("broker", "heartbeat_timeout", CONFIG_DURATION, heartbeat_timeout, "2s", 1, 60,
	"time one heartbeat may take"),
    {.co_section = "desktops",
     .co_name = "default_engine",
     .co_type = CONFIG_ENUM,
     .co_offset = offsetof(struct conf, default_engine),
     .co_default = "qemu",
     .co_choices = engines},
    OPT("desktops", "max_desktops", CONFIG_INT, max_desktops, "100", 1, 10000,
	"desktops defined on this host"),
    OPT("desktops", "max_memory_mib", CONFIG_INT, max_memory_mib, "16384", 64, 1048576,
	"most memory one desktop may have"),
    OPT("desktops", "max_vcpus", CONFIG_INT, max_vcpus, "16", 1, 64, "most vCPUs per desktop"),
    OPT("desktops", "stop_timeout", CONFIG_DURATION, stop_timeout, "30s", 1, 3600,
	"time a guest gets to shut down before it is forced off"),
    OPT("desktops", "start_timeout", CONFIG_DURATION, start_timeout, "60s", 1, 3600,
	"time a VMM gets to answer on its control socket"),
    PATH_OPT("qemu", "binary", qemu_binary, "/usr/bin/qemu-system-x86_64", "QEMU"),
    PATH_OPT("qemu", "img", qemu_img, "/usr/bin/qemu-img", "qemu-img (overlay disks)"),
    {.co_section = "qemu",
     .co_name = "accel",
     .co_type = CONFIG_ENUM,
     .co_offset = offsetof(struct conf, qemu_accel),
     .co_default = "auto",
     .co_choices = accels},
    OPT("qemu", "machine", CONFIG_STRING, qemu_machine, "pc", 1, 64, "QEMU machine type"),
    PATH_OPT("vdi-hv", "binary", vdihv_binary, "/usr/bin/vdi-hv", "vdi-hv"),
    OPT("vdi-hv", "launcher", CONFIG_STRING, vdihv_launcher, "", 0, 4095,
	"command words put before vdi-hv's own (kvmbox run --box DIR --); empty: none"),
    OPT("vdi-hv", "uid_base", CONFIG_INT, vdihv_uid_base, "700000", 1000, 2000000000,
	"first uid (and gid) of the range vdi-hv desktops run as, one each, when hostd "
	"runs as root"),
    OPT("metrics", "listen", CONFIG_STRING, metrics_listen, "", 0, 128,
	"address:port of a second mutual-TLS listener serving only /metrics, /healthz and "
	"/readyz to the certificate named client_name (a scraper's); empty: none (they are "
	"on the API, for the broker's certificate)"),
    OPT("metrics", "client_name", CONFIG_STRING, metrics_client_name, "vdi-metrics", 1, 128,
	"the name (CN) of the scraper's certificate, from [api] ca, let in on [metrics] "
	"listen"),
    CONFIG_END,
};

int conf_parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
				 .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai;
	char host[INET6_ADDRSTRLEN], service[12];
	unsigned port;

	if (hostport_split(text, host, sizeof(host), &port) < 0 || port == 0)
		return -EINVAL;
	snprintf(service, sizeof(service), "%u", port);
	if (getaddrinfo(host, service, &hints, &ai) != 0)
		return -EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

bool conf_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return false;
}

static void free_dir_list(struct conf *c)
{
	for (size_t i = 0; c->template_dir_list && c->template_dir_list[i]; i++)
		free(c->template_dir_list[i]);
	free(c->template_dir_list);
	c->template_dir_list = NULL;
}

static int resolve_template_dirs(struct conf *c, const char *name, char *err, size_t errlen)
{
	size_t n = 1;
	char *copy, *save = NULL;

	for (const char *p = c->template_dirs; *p; p++)
		n += *p == ':';
	c->template_dir_list = calloc(n + 1, sizeof(char *));
	copy = strdup(c->template_dirs);
	if (!c->template_dir_list || !copy) {
		free(copy);
		snprintf(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	n = 0;
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char *real = realpath(dir, NULL);
		struct stat st;

		if (!real || stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s: [hostd] template_dirs: %s is not a directory",
				 name, dir);
			free(real);
			free(copy);
			return -EINVAL;
		}
		c->template_dir_list[n++] = real;
	}
	free(copy);
	if (!n) {
		snprintf(err, errlen, "%s: [hostd] template_dirs: no directory given", name);
		return -EINVAL;
	}
	return 0;
}

/* The checks a single option's bounds cannot express. */
static int check(const char *name, struct conf *c, char *err, size_t errlen)
{
	if (conf_parse_listen(c->api_listen, &c->api_addr, &c->api_addr_len) < 0) {
		snprintf(err, errlen, "%s: [api] listen: '%s' is not ADDRESS:PORT", name,
			 c->api_listen);
		return -EINVAL;
	}
	if (c->relay_listen[0] &&
	    conf_parse_listen(c->relay_listen, &c->relay_addr, &c->relay_addr_len) < 0) {
		snprintf(err, errlen, "%s: [relay] listen: '%s' is not ADDRESS:PORT", name,
			 c->relay_listen);
		return -EINVAL;
	}
	if (c->metrics_listen[0] &&
	    conf_parse_listen(c->metrics_listen, &c->metrics_addr, &c->metrics_addr_len) < 0) {
		snprintf(err, errlen, "%s: [metrics] listen: '%s' is not ADDRESS:PORT", name,
			 c->metrics_listen);
		return -EINVAL;
	}
	if (!strcmp(c->metrics_client_name, c->broker_name) ||
	    !strcmp(c->metrics_client_name, c->host_id)) {
		snprintf(err, errlen,
			 "%s: [metrics] client_name: '%s' is the broker's or this host's name: "
			 "give the scraper a certificate of its own",
			 name, c->metrics_client_name);
		return -EINVAL;
	}
	if (!c->broker_name[0]) {
		snprintf(err, errlen,
			 "%s: [api] broker_name: empty (the broker's certificate names it)", name);
		return -EINVAL;
	}
	if (!strcmp(c->host_id, c->broker_name)) {
		snprintf(err, errlen,
			 "%s: [hostd] host_id: '%s' is the broker's name ([api] broker_name): "
			 "this host's certificate would let it act as the broker",
			 name, c->host_id);
		return -EINVAL;
	}
	if (strlen(c->run_dir) > CONF_RUN_DIR_MAX) {
		snprintf(err, errlen,
			 "%s: [hostd] run_dir: longer than %d characters (unix socket paths "
			 "inside it would not fit)",
			 name, CONF_RUN_DIR_MAX);
		return -EINVAL;
	}
	if (strchr(c->state_dir, ',') || strchr(c->run_dir, ',')) {
		snprintf(err, errlen, "%s: [hostd] state_dir and run_dir may not contain ','",
			 name);
		return -EINVAL;
	}
	if (!c->state_dir[0] || !c->run_dir[0]) {
		snprintf(err, errlen, "%s: [hostd] state_dir and run_dir may not be empty", name);
		return -EINVAL;
	}
	if (c->heartbeat_url[0] && strncmp(c->heartbeat_url, "https://", 8)) {
		snprintf(err, errlen, "%s: [broker] heartbeat_url: must start with https://", name);
		return -EINVAL;
	}
	if (c->heartbeat_timeout > c->heartbeat_interval * 5) {
		snprintf(err, errlen,
			 "%s: [broker] heartbeat_timeout: at most 5 heartbeat intervals", name);
		return -EINVAL;
	}
	return resolve_template_dirs(c, name, err, errlen);
}

int conf_load(const char *path, struct conf *c, char *err, size_t errlen)
{
	int r;

	memset(c, 0, sizeof(*c));
	r = config_load(path, conf_options, c, err, errlen);
	return r < 0 ? r : check(path, c, err, errlen);
}

int conf_load_string(const char *name, const char *text, struct conf *c, char *err, size_t errlen)
{
	int r;

	memset(c, 0, sizeof(*c));
	r = config_load_string(name, text, conf_options, c, err, errlen);
	return r < 0 ? r : check(name, c, err, errlen);
}

void conf_free(struct conf *c)
{
	config_free(conf_options, c);
	free_dir_list(c);
}

void conf_print(FILE *out, const struct conf *c)
{
	config_print(out, conf_options, c);
}

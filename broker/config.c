/* The option table of vdi-broker and its checks across options. */
#include "broker/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "lib/config.h"

static const char *const log_levels[] = {"error", "warning", "info", "debug", NULL};

#define OPT(sec, name, type, field, ...)                                                           \
	{                                                                                          \
		.co_section = (sec), .co_name = (name), .co_type = (type),                         \
		.co_offset = offsetof(struct broker_config, field), __VA_ARGS__                    \
	}

static const struct config_option options[] = {
    OPT("broker", "state_dir", CONFIG_STRING, bc_state_dir, .co_default = "/var/lib/vdi-broker",
	.co_max = 1024, .co_help = "the SQLite store and a generated HTTPS certificate"),
    OPT("broker", "user", CONFIG_STRING, bc_user, .co_default = "", .co_max = 64,
	.co_help = "started as root: the user to run as (keeping only the right to bind low "
		   "ports)"),
    OPT("broker", "log_level", CONFIG_ENUM, bc_log_level, .co_default = "info",
	.co_choices = log_levels, .co_help = "error, warning, info or debug"),
    OPT("broker", "admin_users", CONFIG_STRING, bc_admin_users, .co_default = "", .co_max = 4096,
	.co_help = "users with the admin role (comma-separated)"),
    OPT("broker", "admin_groups", CONFIG_STRING, bc_admin_groups, .co_default = "vdi-admins",
	.co_max = 4096, .co_help = "groups whose members have the admin role"),
    OPT("broker", "max_sessions_per_user", CONFIG_INT, bc_max_sessions, .co_default = "0",
	.co_min = 0, .co_max = 1000, .co_help = "desktop sessions per user, 0: no limit"),
    OPT("broker", "ticket_lifetime", CONFIG_DURATION, bc_ticket_lifetime, .co_default = "30s",
	.co_min = 5, .co_max = 60, .co_help = "how long a display ticket may wait to be used"),
    OPT("broker", "session_idle_timeout", CONFIG_DURATION, bc_session_idle, .co_default = "30m",
	.co_min = 60, .co_max = 7 * 86400, .co_help = "web session ends after this idle time"),
    OPT("broker", "audit_retention", CONFIG_DURATION, bc_audit_retention, .co_default = "180d",
	.co_min = 86400, .co_max = 3650 * 86400,
	.co_help = "audit rows older than this are deleted"),
    OPT("broker", "account_recheck", CONFIG_DURATION, bc_account_recheck, .co_default = "60s",
	.co_min = 0, .co_max = 86400,
	.co_help = "signed-in users looked up again this often (deleted: sessions end; groups "
		   "changed: roles and entitlements follow); 0: never"),
    OPT("broker", "session_lifetime", CONFIG_DURATION, bc_session_lifetime, .co_default = "12h",
	.co_min = 60, .co_max = 30 * 86400, .co_help = "web session ends this long after login"),
    OPT("broker", "maintenance_interval", CONFIG_DURATION, bc_maintenance_interval,
	.co_default = "1s", .co_min = 1, .co_max = 60,
	.co_help = "period of timeouts, pool sizing and desktop provisioning"),
    OPT("broker", "provision_timeout", CONFIG_DURATION, bc_provision_timeout, .co_default = "5m",
	.co_min = 5, .co_max = 86400,
	.co_help = "a desktop not running this long after its start is in error"),
    OPT("broker", "degraded_after", CONFIG_INT, bc_degraded_after, .co_default = "3", .co_min = 1,
	.co_max = 1000, .co_help = "desktops of a pool failing in a row that make it degraded"),
    OPT("broker", "password_cost", CONFIG_INT, bc_password_cost, .co_default = "15", .co_min = 10,
	.co_max = 20, .co_help = "scrypt cost (log2 N) of passwords hashed here"),
    OPT("http", "listen", CONFIG_STRING, bc_listen, .co_default = "127.0.0.1:9443", .co_max = 128,
	.co_help = "HTTPS address:port of the API and portal"),
    OPT("http", "cert", CONFIG_STRING, bc_cert, .co_default = "", .co_max = 4096,
	.co_help = "server certificate (PEM); empty: self-signed in state_dir"),
    OPT("http", "key", CONFIG_STRING, bc_key, .co_default = "", .co_max = 4096,
	.co_help = "its private key (PEM)"),
    OPT("http", "static_dir", CONFIG_STRING, bc_static_dir, .co_default = "", .co_max = 4096,
	.co_help = "portal files served outside /api/; empty: none"),
    OPT("http", "public_url", CONFIG_STRING, bc_public_url, .co_default = "", .co_max = 512,
	.co_help = "https://name[:port] users reach; empty: from the Host header"),
    OPT("http", "max_body", CONFIG_INT, bc_max_body, .co_default = "65536", .co_min = 1024,
	.co_max = 1048576, .co_help = "largest request body in bytes"),
    OPT("http", "max_connections", CONFIG_INT, bc_max_connections, .co_default = "512", .co_min = 4,
	.co_max = 16384, .co_help = "simultaneous connections (one thread each)"),
    OPT("http", "max_connections_per_address", CONFIG_INT, bc_max_per_address, .co_default = "64",
	.co_min = 1, .co_max = 16384,
	.co_help = "connections one client address may hold (its display connections aside)"),
    OPT("http", "request_timeout", CONFIG_DURATION, bc_request_timeout, .co_default = "30s",
	.co_min = 1, .co_max = 3600,
	.co_help = "time a client may take to send a request's headers and body"),
    OPT("http", "idle_timeout", CONFIG_DURATION, bc_http_idle, .co_default = "60s", .co_min = 2,
	.co_max = 3600,
	.co_help = "an HTTP connection idle this long is closed; TLS handshakes get at most 10s"),
    OPT("gateway", "idle_timeout", CONFIG_DURATION, bc_gateway_idle, .co_default = "30m",
	.co_min = 2, .co_max = 7 * 86400,
	.co_help = "a display connection with no traffic either way ends after this"),
    OPT("gateway", "max_duration", CONFIG_DURATION, bc_gateway_lifetime, .co_default = "12h",
	.co_min = 2, .co_max = 30 * 86400,
	.co_help = "a display connection ends this long after it opened"),
    OPT("hosts", "cert", CONFIG_STRING, bc_host_cert, .co_default = "", .co_max = 4096,
	.co_help = "the broker's certificate towards vdi-hostd (client and heartbeat server)"),
    OPT("hosts", "key", CONFIG_STRING, bc_host_key, .co_default = "", .co_max = 4096,
	.co_help = "its private key"),
    OPT("hosts", "ca", CONFIG_STRING, bc_host_ca, .co_default = "", .co_max = 4096,
	.co_help = "CA of the hosts' certificates"),
    OPT("hosts", "heartbeat_listen", CONFIG_STRING, bc_heartbeat_listen, .co_default = "",
	.co_max = 128, .co_help = "mutual-TLS address:port for heartbeats; empty: none"),
    OPT("hosts", "host_timeout", CONFIG_DURATION, bc_host_timeout, .co_default = "15s", .co_min = 2,
	.co_max = 3600, .co_help = "silence after which a host is down"),
    OPT("hosts", "request_timeout", CONFIG_DURATION, bc_host_request_timeout, .co_default = "10s",
	.co_min = 1, .co_max = 300, .co_help = "one call to a vdi-hostd"),
    OPT("metrics", "listen", CONFIG_STRING, bc_metrics_listen, .co_default = "", .co_max = 128,
	.co_help = "HTTPS address:port serving /metrics, /healthz and /readyz to anyone who "
		   "reaches it (for Prometheus; keep it on loopback); empty: none (/metrics is "
		   "then for admins on [http] listen)"),
    AUTH_CONFIG_OPTIONS(offsetof(struct broker_config, bc_auth)),
    CONFIG_END,
};

static bool readable(const char *path)
{
	FILE *f = fopen(path, "re");

	if (!f)
		return false;
	fclose(f);
	return true;
}

int broker_config_load(const char *path, struct broker_config *cfg, char *err, size_t errlen)
{
	int r;

	memset(cfg, 0, sizeof(*cfg));
	r = config_load(path, options, cfg, err, errlen);
	if (r < 0)
		return r;
	if (!cfg->bc_state_dir[0]) {
		snprintf(err, errlen, "%s: [broker] state_dir is empty", path);
		return -EINVAL;
	}
	if (!cfg->bc_cert[0] != !cfg->bc_key[0]) {
		snprintf(err, errlen, "%s: [http] cert and key go together (both or neither)",
			 path);
		return -EINVAL;
	}
	if (cfg->bc_public_url[0] && strncmp(cfg->bc_public_url, "https://", 8)) {
		snprintf(err, errlen, "%s: [http] public_url must start with https://", path);
		return -EINVAL;
	}
	if (cfg->bc_heartbeat_listen[0] &&
	    (!cfg->bc_host_cert[0] || !cfg->bc_host_key[0] || !cfg->bc_host_ca[0])) {
		snprintf(err, errlen, "%s: [hosts] heartbeat_listen needs cert, key and ca", path);
		return -EINVAL;
	}
	if (!cfg->bc_host_cert[0] != !cfg->bc_host_key[0] ||
	    (cfg->bc_host_cert[0] && !cfg->bc_host_ca[0])) {
		snprintf(err, errlen, "%s: [hosts] cert, key and ca go together", path);
		return -EINVAL;
	}
	{
		const char *files[] = {cfg->bc_cert, cfg->bc_key, cfg->bc_host_cert,
				       cfg->bc_host_key, cfg->bc_host_ca};
		const char *names[] = {"[http] cert", "[http] key", "[hosts] cert", "[hosts] key",
				       "[hosts] ca"};

		for (size_t i = 0; i < 5; i++) {
			if (files[i][0] && !readable(files[i])) {
				snprintf(err, errlen, "%s: %s %s: %s", path, names[i], files[i],
					 strerror(errno));
				return -EINVAL;
			}
		}
	}
	if (cfg->bc_static_dir[0]) {
		struct stat st;

		if (stat(cfg->bc_static_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s: [http] static_dir %s is not a directory", path,
				 cfg->bc_static_dir);
			return -EINVAL;
		}
	}
	/* Unknown users' dummy check costs what a hash made here costs. */
	cfg->bc_auth.ac_password_cost = cfg->bc_password_cost;
	return auth_config_finish(&cfg->bc_auth, path, err, errlen);
}

void broker_config_free(struct broker_config *cfg)
{
	config_free(options, cfg);
}

void broker_config_print(FILE *out, const struct broker_config *cfg)
{
	config_print(out, options, cfg);
}

bool broker_config_list_has(const char *list, const char *name)
{
	size_t nlen = strlen(name);

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len;

		while (*p == ' ' || *p == '\t')
			p++;
		len = end ? (size_t)(end - p) : strlen(p);
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == nlen && !strncasecmp(p, name, len))
			return true;
		p = end ? end + 1 : p + strlen(p);
	}
	return false;
}

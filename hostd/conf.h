/* vdi-hostd's configuration: the option table (lib/config.h) with every
 * option's default and bounds, and the checks that need more than one option or
 * the file system (listen addresses, directories, socket path lengths). Not the
 * API or the engines. */
#ifndef VDI_HOSTD_CONF_H
#define VDI_HOSTD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

enum conf_engine { CONF_ENGINE_QEMU, CONF_ENGINE_VDIHV };
enum conf_accel { CONF_ACCEL_AUTO, CONF_ACCEL_KVM, CONF_ACCEL_TCG };

/* The longest run_dir: sockets live at run_dir/<id>/vnc.sock and must fit
 * sun_path. */
#define CONF_RUN_DIR_MAX 56

struct conf {
	/* [hostd] */
	char *host_id;
	char *user; /* started as root: run as this user */
	char *state_dir;
	char *run_dir;
	char *template_dirs; /* colon-separated */
	int log_level;	     /* enum log_level */
	/* [api] */
	char *api_listen;
	char *tls_cert, *tls_key, *tls_ca;
	int api_max_body;
	int api_max_connections, api_max_per_address;
	char *broker_name; /* the CN the broker's certificate carries (API and relay) */
	/* [relay] */
	char *relay_listen; /* empty: no relay */
	bool relay_require_client_cert;
	int relay_max_sessions;
	int relay_handshake_timeout;
	int ticket_max_lifetime;
	/* [broker] */
	char *heartbeat_url; /* empty: no heartbeat */
	int heartbeat_interval;
	int heartbeat_timeout;
	/* [desktops] */
	int default_engine; /* enum conf_engine */
	int max_desktops;
	int max_memory_mib;
	int max_vcpus;
	int stop_timeout;
	int start_timeout;
	/* [qemu] */
	char *qemu_binary;
	char *qemu_img;
	int qemu_accel; /* enum conf_accel */
	char *qemu_machine;
	/* [vdi-hv] */
	char *vdihv_binary;
	/* Words run before vdi-hv's command line, split on blanks: a program that
	 * runs vdi-hv somewhere with KVM (kvmbox run --box DIR --). Empty: none. */
	char *vdihv_launcher;
	/* Started as root, the vdi-hv of each running desktop runs as its own uid and gid:
	 * uid_base + a slot below max_desktops. */
	int vdihv_uid_base;
	/* [metrics] */
	char *metrics_listen;	   /* empty: /metrics only on the API */
	char *metrics_client_name; /* the CN let in on metrics_listen */

	/* Derived by conf_load(): parsed addresses and the template directories
	 * resolved. */
	struct sockaddr_storage api_addr, relay_addr, metrics_addr;
	socklen_t api_addr_len, relay_addr_len, metrics_addr_len;
	char **template_dir_list; /* NULL-terminated, absolute, symlinks resolved */
};

/* Loads path into c (defaults for what it does not set) and checks it. Returns
 * 0, or -EINVAL with "file:line: message" or "file: message" in err. Release
 * with conf_free() whatever the outcome. */
int conf_load(const char *path, struct conf *c, char *err, size_t errlen);
/* The same from text (tests). */
int conf_load_string(const char *name, const char *text, struct conf *c, char *err, size_t errlen);
void conf_free(struct conf *c);
void conf_print(FILE *out, const struct conf *c);

/* Parses "ADDR:PORT" or "[ADDR6]:PORT" (numeric addresses only). 0 or -EINVAL.
 */
int conf_parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len);
/* Whether the address is a loopback one (127.0.0.0/8 or ::1). */
bool conf_is_loopback(const struct sockaddr_storage *ss);

#endif

/* Desktop definitions: everything in a create request is checked here, once,
 * before any file is touched; template paths are resolved with realpath() and
 * must stay inside a configured template directory, so "../" or a symlink
 * cannot point a VM at host files. */
#include "hostd/desktop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "lib/desktop_life.h"
#include "lib/json.h"

static const char *const state_names[] = {"stopped", "starting", "running", "stopping", "failed"};
static const char *const engine_names[] = {"qemu", "vdi-hv"};

const char *desktop_state_name(enum desktop_state s)
{
	return (unsigned)s < 5 ? state_names[s] : "unknown";
}

const char *desktop_engine_name(enum desktop_engine e)
{
	return (unsigned)e < 2 ? engine_names[e] : "unknown";
}

static bool is_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

bool desktop_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n < 1 || n > DESKTOP_ID_MAX || !is_alnum(id[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(id[i]) && id[i] != '-' && id[i] != '_')
			return false;
	return true;
}

static bool inside(const char *dir, const char *path)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return true;
	return !strncmp(dir, path, n) && path[n] == '/';
}

char *desktop_find_template(const struct conf *c, const char *name, const char **why)
{
	size_t len = strlen(name);
	char *real = NULL;
	struct stat st;

	if (len == 0 || len > 1024) {
		*why = "is not a valid name (1 to 1024 characters)";
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f || name[i] == ',') {
			*why = "is not a valid name (no control characters or ',')";
			return NULL;
		}
	}
	if (name[0] == '/') {
		real = realpath(name, NULL);
	} else {
		for (size_t i = 0; !real && c->template_dir_list[i]; i++) {
			char *joined;

			if (asprintf(&joined, "%s/%s", c->template_dir_list[i], name) < 0)
				break;
			real = realpath(joined, NULL);
			free(joined);
		}
	}
	if (!real) {
		*why = "not found in the template directories";
		return NULL;
	}
	for (size_t i = 0; c->template_dir_list[i]; i++) {
		if (!inside(c->template_dir_list[i], real))
			continue;
		if (stat(real, &st) < 0 || !S_ISREG(st.st_mode))
			*why = "is not a regular file";
		else if (strchr(real, ','))
			*why = "resolves to a path with ','";
		else
			return real;
		free(real);
		return NULL;
	}
	*why = "is outside the template directories";
	free(real);
	return NULL;
}

char *desktop_resolve_template(const struct conf *c, const char *name, char *err, size_t errlen)
{
	const char *why = NULL;
	char *real = desktop_find_template(c, name, &why);

	if (!real)
		snprintf(err, errlen, "template file '%.200s' %s", name, why);
	return real;
}

static const struct json_field create_fields[] = {
    {"id", JSON_FIELD_STRING, false},
    {"engine", JSON_FIELD_STRING, false},
    {"kernel", JSON_FIELD_STRING, false},
    {"initrd", JSON_FIELD_STRING, false},
    {"disk", JSON_FIELD_STRING, true},
    {"cmdline", JSON_FIELD_STRING, false},
    {"memory_mib", JSON_FIELD_INT, false},
    {"vcpus", JSON_FIELD_INT, false},
    JSON_FIELDS_END,
};

static int new_id(char id[DESKTOP_ID_MAX + 1])
{
	unsigned char rnd[6];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -EIO;
	snprintf(id, DESKTOP_ID_MAX + 1, "d-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
		 rnd[3], rnd[4], rnd[5]);
	return 0;
}

static bool cmdline_valid(const char *s)
{
	size_t n = strlen(s);

	if (n > DESKTOP_CMDLINE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

static int engine_from_name(const char *name)
{
	for (int i = 0; i < 2; i++)
		if (!strcmp(name, engine_names[i]))
			return i;
	return -1;
}

int desktop_check_request(const struct conf *c, const json_t *body, char *err, size_t errlen)
{
	const char *id = json_get_string(body, "id"), *engine = json_get_string(body, "engine");
	const char *cmdline = json_get_string(body, "cmdline");
	long long memory = json_get_int(body, "memory_mib", 512);
	long long vcpus = json_get_int(body, "vcpus", 1);
	int e = c->default_engine;

	err[0] = '\0';
	if (json_check_fields(body, create_fields, err, errlen) < 0)
		return -EINVAL;
	if (id && !desktop_id_valid(id)) {
		snprintf(err, errlen,
			 "id must be 1 to %d characters of A-Z a-z 0-9 _ -, starting with "
			 "a letter "
			 "or digit",
			 DESKTOP_ID_MAX);
		return -EINVAL;
	}
	if (engine && (e = engine_from_name(engine)) < 0) {
		snprintf(err, errlen, "engine must be \"qemu\" or \"vdi-hv\"");
		return -EINVAL;
	}
	if (memory < 64 || memory > c->max_memory_mib || memory % 2) {
		snprintf(err, errlen, "memory_mib must be an even number from 64 to %d",
			 c->max_memory_mib);
		return -EINVAL;
	}
	if (vcpus < 1 || vcpus > c->max_vcpus) {
		snprintf(err, errlen, "vcpus must be from 1 to %d", c->max_vcpus);
		return -EINVAL;
	}
	if (cmdline && !cmdline_valid(cmdline)) {
		snprintf(err, errlen, "cmdline must be printable ASCII, at most %d characters",
			 DESKTOP_CMDLINE_MAX);
		return -EINVAL;
	}
	if (e == DESKTOP_ENGINE_VDIHV && !json_get_string(body, "kernel")) {
		snprintf(err, errlen, "engine vdi-hv needs a kernel (it has no firmware)");
		return -EINVAL;
	}
	if (!json_get_string(body, "kernel") && (json_get_string(body, "initrd") || cmdline)) {
		snprintf(err, errlen, "initrd and cmdline need a kernel");
		return -EINVAL;
	}
	return e;
}

struct desktop *desktop_from_request(const struct conf *c, const json_t *body, char *err,
				     size_t errlen)
{
	const char *id = json_get_string(body, "id"), *cmdline = json_get_string(body, "cmdline");
	struct desktop *d;
	int e = desktop_check_request(c, body, err, errlen);

	if (e < 0)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->d_watch_fd = -1;
	d->d_engine = (enum desktop_engine)e;
	d->d_memory_mib = (int)json_get_int(body, "memory_mib", 512);
	d->d_vcpus = (int)json_get_int(body, "vcpus", 1);
	d->d_created = (long long)time(NULL);
	if (id)
		snprintf(d->d_id, sizeof(d->d_id), "%s", id);
	else if (new_id(d->d_id) < 0)
		goto out_free;
	d->d_base = desktop_resolve_template(c, json_get_string(body, "disk"), err, errlen);
	if (!d->d_base)
		goto out_free;
	if (json_get_string(body, "kernel")) {
		d->d_kernel =
		    desktop_resolve_template(c, json_get_string(body, "kernel"), err, errlen);
		if (!d->d_kernel)
			goto out_free;
	}
	if (json_get_string(body, "initrd")) {
		d->d_initrd =
		    desktop_resolve_template(c, json_get_string(body, "initrd"), err, errlen);
		if (!d->d_initrd)
			goto out_free;
	}
	if (cmdline && !(d->d_cmdline = strdup(cmdline)))
		goto out_free;
	return d;

out_free:
	if (!err[0])
		snprintf(err, errlen, "out of memory");
	desktop_free(d);
	return NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct desktop *desktop_from_saved(const json_t *saved, char *err, size_t errlen)
{
	static const struct json_field fields[] = {
	    {"id", JSON_FIELD_STRING, true},	  {"engine", JSON_FIELD_STRING, true},
	    {"kernel", JSON_FIELD_STRING, false}, {"initrd", JSON_FIELD_STRING, false},
	    {"disk", JSON_FIELD_STRING, true},	  {"cmdline", JSON_FIELD_STRING, false},
	    {"memory_mib", JSON_FIELD_INT, true}, {"vcpus", JSON_FIELD_INT, true},
	    {"created", JSON_FIELD_INT, true},	  {"state", JSON_FIELD_STRING, true},
	    {"failure", JSON_FIELD_ANY, false},	  JSON_FIELDS_END,
	};
	const char *id = json_get_string(saved, "id"), *state = json_get_string(saved, "state");
	struct desktop *d;
	int e;

	if (json_check_fields(saved, fields, err, errlen) < 0)
		return NULL;
	e = engine_from_name(json_get_string(saved, "engine"));
	if (!desktop_id_valid(id) || e < 0) {
		snprintf(err, errlen, "bad id or engine");
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->d_watch_fd = -1;
	snprintf(d->d_id, sizeof(d->d_id), "%s", id);
	d->d_engine = (enum desktop_engine)e;
	d->d_kernel = dup_or_null(json_get_string(saved, "kernel"));
	d->d_initrd = dup_or_null(json_get_string(saved, "initrd"));
	d->d_base = dup_or_null(json_get_string(saved, "disk"));
	d->d_cmdline = dup_or_null(json_get_string(saved, "cmdline"));
	d->d_memory_mib = (int)json_get_int(saved, "memory_mib", 512);
	d->d_vcpus = (int)json_get_int(saved, "vcpus", 1);
	d->d_created = json_get_int(saved, "created", 0);
	d->d_state = !strcmp(state, "failed")	 ? DESKTOP_FAILED
		     : !strcmp(state, "running") ? DESKTOP_RUNNING
						 : DESKTOP_STOPPED;
	if (json_is_object(json_object_get(saved, "failure")))
		d->d_failure = json_deep_copy(json_object_get(saved, "failure"));
	if (!d->d_base) {
		snprintf(err, errlen, "out of memory");
		desktop_free(d);
		return NULL;
	}
	return d;
}

static void set_opt_string(json_t *o, const char *key, const char *value)
{
	if (value)
		json_object_set_new(o, key, json_string(value));
}

json_t *desktop_to_json(const struct desktop *d, bool for_store)
{
	json_t *o =
	    json_pack("{s:s, s:s, s:s, s:i, s:i, s:I}", "id", d->d_id, "engine",
		      desktop_engine_name(d->d_engine), "disk", d->d_base, "memory_mib",
		      d->d_memory_mib, "vcpus", d->d_vcpus, "created", (json_int_t)d->d_created);
	enum desktop_state st = d->d_state;

	if (!o)
		return NULL;
	set_opt_string(o, "kernel", d->d_kernel);
	set_opt_string(o, "initrd", d->d_initrd);
	set_opt_string(o, "cmdline", d->d_cmdline);
	if (for_store) {
		/* What a restarted hostd should expect: a VMM it must find, or none. */
		if (st == DESKTOP_STARTING || st == DESKTOP_STOPPING)
			st = DESKTOP_RUNNING;
	} else if (st == DESKTOP_STARTING || st == DESKTOP_RUNNING || st == DESKTOP_STOPPING) {
		json_object_set_new(o, "pid", json_integer(d->d_vmm_pid));
		json_object_set_new(o, "started", json_integer(d->d_started));
		json_object_set_new(o, "vnc", json_boolean(d->d_vnc));
		if (d->d_vmm_uid)
			json_object_set_new(o, "uid", json_integer((json_int_t)d->d_vmm_uid));
	}
	json_object_set_new(o, "state", json_string(desktop_state_name(st)));
	if (!for_store)
		json_object_set_new(
		    o, "life",
		    json_string(desktop_life_name(desktop_life_of_vmm(desktop_state_name(st)))));
	if (d->d_failure)
		json_object_set(o, "failure", d->d_failure);
	return o;
}

void desktop_free(struct desktop *d)
{
	if (!d)
		return;
	free(d->d_kernel);
	free(d->d_initrd);
	free(d->d_base);
	free(d->d_cmdline);
	json_decref(d->d_failure);
	free(d);
}

int desktop_path(const struct conf *c, const struct desktop *d, enum desktop_file f, char *buf,
		 size_t len)
{
	const char *id = d->d_id;
	int n = -1;

	switch (f) {
	case DESKTOP_FILE_JSON:
		n = snprintf(buf, len, "%s/desktops/%s.json", c->state_dir, id);
		break;
	case DESKTOP_FILE_DISK:
		n = snprintf(buf, len, "%s/disks/%s.%s", c->state_dir, id,
			     d->d_engine == DESKTOP_ENGINE_QEMU ? "qcow2" : "ovl");
		break;
	case DESKTOP_FILE_SERIAL:
		n = snprintf(buf, len, "%s/logs/%s.serial", c->state_dir, id);
		break;
	case DESKTOP_FILE_VMM_LOG:
		n = snprintf(buf, len, "%s/logs/%s.vmm", c->state_dir, id);
		break;
	case DESKTOP_FILE_RUN_DIR: n = snprintf(buf, len, "%s/%s", c->run_dir, id); break;
	case DESKTOP_FILE_PID: n = snprintf(buf, len, "%s/%s/vmm.pid", c->run_dir, id); break;
	case DESKTOP_FILE_EXIT: n = snprintf(buf, len, "%s/%s/exit", c->run_dir, id); break;
	case DESKTOP_FILE_CONTROL:
		n = snprintf(buf, len, "%s/%s/control.sock", c->run_dir, id);
		break;
	case DESKTOP_FILE_VNC: n = snprintf(buf, len, "%s/%s/vnc.sock", c->run_dir, id); break;
	}
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int desktop_vm_paths(const struct conf *c, const struct desktop *d, struct vm_paths *p)
{
	if (desktop_path(c, d, DESKTOP_FILE_DISK, p->vp_disk, sizeof(p->vp_disk)) < 0 ||
	    desktop_path(c, d, DESKTOP_FILE_SERIAL, p->vp_serial, sizeof(p->vp_serial)) < 0 ||
	    desktop_path(c, d, DESKTOP_FILE_CONTROL, p->vp_control, sizeof(p->vp_control)) < 0 ||
	    desktop_path(c, d, DESKTOP_FILE_VNC, p->vp_vnc, sizeof(p->vp_vnc)) < 0)
		return -ENAMETOOLONG;
	return 0;
}

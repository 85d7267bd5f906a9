/* vdi-hostd's metrics and readiness (see metrics.h): counters other files bump and the
 * scrape, written from the desktop list and capacity report host.h makes (metrics.c
 * does not call host.c, which calls it). Not HTTP. */
#include "hostd/metrics.h"

#include <stdio.h>
#include <string.h>

#include "hostd/engine.h"
#include "lib/metrics.h"

#define NENGINES 2 /* enum desktop_engine */

static struct {
	struct metrics_counter starts[NENGINES], failures[NENGINES];
	struct metrics_counter relay_sessions, relay_from_client, relay_to_client;
	struct metrics_gauge relay_open;
} m;

void hostd_metrics_vmm_start(enum desktop_engine e)
{
	if ((unsigned)e < NENGINES)
		metrics_counter_add(&m.starts[e], 1);
}

void hostd_metrics_vmm_failure(enum desktop_engine e)
{
	if ((unsigned)e < NENGINES)
		metrics_counter_add(&m.failures[e], 1);
}

void hostd_metrics_relay_open(void)
{
	metrics_counter_add(&m.relay_sessions, 1);
	metrics_gauge_add(&m.relay_open, 1);
}

void hostd_metrics_relay_close(uint64_t from_client, uint64_t to_client)
{
	metrics_gauge_add(&m.relay_open, -1);
	metrics_counter_add(&m.relay_from_client, from_client);
	metrics_counter_add(&m.relay_to_client, to_client);
}

/* Why engine e cannot run desktops here (its start-up probe), or NULL. */
static const char *unavailable(enum desktop_engine e)
{
	const struct engine *en = e == DESKTOP_ENGINE_QEMU ? &engine_qemu : &engine_vdihv;

	return en->en_unavailable ? en->en_unavailable() : NULL;
}

bool hostd_engine_available(const struct conf *c, enum desktop_engine e)
{
	(void)c;
	return !unavailable(e);
}

bool hostd_ready(const struct conf *c, char *why, size_t len)
{
	const char *qemu = unavailable(DESKTOP_ENGINE_QEMU);
	const char *vdihv = unavailable(DESKTOP_ENGINE_VDIHV);

	(void)c;
	if (!qemu || !vdihv)
		return true;
	snprintf(why, len, "no engine can run desktops: qemu: %s; vdi-hv: %s", qemu, vdihv);
	return false;
}

static const enum desktop_state states[] = {DESKTOP_STOPPED, DESKTOP_STARTING, DESKTOP_RUNNING,
					    DESKTOP_STOPPING, DESKTOP_FAILED};
#define NSTATES (sizeof(states) / sizeof(states[0]))

static void per_engine(struct metrics_text *t, const char *name, struct metrics_counter *c)
{
	for (int e = 0; e < NENGINES; e++)
		metrics_sample(t, name, (double)metrics_counter_get(&c[e]), "engine",
			       desktop_engine_name((enum desktop_engine)e), NULL);
}

static void events(struct metrics_text *t)
{
	metrics_family(t, "vdi_hostd_vmm_starts_total", "counter",
		       "VMMs started for desktops, by engine.");
	per_engine(t, "vdi_hostd_vmm_starts_total", m.starts);
	metrics_family(t, "vdi_hostd_vmm_failures_total", "counter",
		       "VMMs that could not be started or ended without being asked to (the "
		       "desktop failed), by engine.");
	per_engine(t, "vdi_hostd_vmm_failures_total", m.failures);
	metrics_family(t, "vdi_hostd_relay_sessions_total", "counter",
		       "Display relay sessions admitted (ticket redeemed).");
	metrics_sample(t, "vdi_hostd_relay_sessions_total",
		       (double)metrics_counter_get(&m.relay_sessions), NULL);
	metrics_family(t, "vdi_hostd_relay_sessions_open", "gauge", "Display relay sessions now.");
	metrics_sample(t, "vdi_hostd_relay_sessions_open", (double)metrics_gauge_get(&m.relay_open),
		       NULL);
	metrics_family(t, "vdi_hostd_relay_bytes_total", "counter",
		       "Bytes through the display relay, counted when a session ends.");
	metrics_sample(t, "vdi_hostd_relay_bytes_total",
		       (double)metrics_counter_get(&m.relay_from_client), "direction",
		       "from_client", NULL);
	metrics_sample(t, "vdi_hostd_relay_bytes_total",
		       (double)metrics_counter_get(&m.relay_to_client), "direction", "to_client",
		       NULL);
}

static void desktops(struct metrics_text *t, const json_t *list)
{
	json_t *d;
	int count[NENGINES][NSTATES] = {{0}};
	long long vcpus = 0;
	size_t i;

	json_array_foreach (json_object_get(list, "desktops"), i, d) {
		const char *st = json_string_value(json_object_get(d, "state"));
		const char *en = json_string_value(json_object_get(d, "engine"));
		int e = en && !strcmp(en, desktop_engine_name(DESKTOP_ENGINE_QEMU))
			    ? DESKTOP_ENGINE_QEMU
			    : DESKTOP_ENGINE_VDIHV;

		for (size_t s = 0; st && s < NSTATES; s++)
			if (!strcmp(st, desktop_state_name(states[s]))) {
				count[e][s]++;
				if (states[s] == DESKTOP_STARTING || states[s] == DESKTOP_RUNNING ||
				    states[s] == DESKTOP_STOPPING)
					vcpus += json_integer_value(json_object_get(d, "vcpus"));
			}
	}
	metrics_family(t, "vdi_hostd_desktops", "gauge",
		       "Desktops defined on this host by state (stopped, starting, running, "
		       "stopping, failed) and engine (qemu, vdi-hv).");
	for (int e = 0; e < NENGINES; e++)
		for (size_t s = 0; s < NSTATES; s++)
			metrics_sample(t, "vdi_hostd_desktops", count[e][s], "state",
				       desktop_state_name(states[s]), "engine",
				       desktop_engine_name((enum desktop_engine)e), NULL);
	metrics_family(t, "vdi_hostd_vcpus_committed", "gauge",
		       "vCPUs of the desktops with a VMM (starting, running, stopping).");
	metrics_sample(t, "vdi_hostd_vcpus_committed", (double)vcpus, NULL);
}

static void capacity(struct metrics_text *t, const json_t *cap)
{
	static const struct {
		const char *name, *help, *key;
		double scale;
	} figures[] = {
	    {"vdi_hostd_cpus", "CPUs online.", "cpus", 1},
	    {"vdi_hostd_memory_total_bytes", "Memory of the host (-1: unknown).",
	     "memory_total_mib", 1048576},
	    {"vdi_hostd_memory_available_bytes", "Memory available (-1: unknown).",
	     "memory_available_mib", 1048576},
	    {"vdi_hostd_memory_committed_bytes", "Memory of the desktops with a VMM.",
	     "memory_committed_mib", 1048576},
	    {"vdi_hostd_max_desktops",
	     "Desktops this host takes at most ([desktops] "
	     "max_desktops).",
	     "max_desktops", 1},
	};

	for (size_t f = 0; cap && f < sizeof(figures) / sizeof(figures[0]); f++) {
		json_t *v = json_object_get(cap, figures[f].key);
		double x = json_is_integer(v) ? (double)json_integer_value(v) : -1;

		metrics_family(t, figures[f].name, "gauge", figures[f].help);
		metrics_sample(t, figures[f].name, x < 0 ? -1 : x * figures[f].scale, NULL);
	}
}

char *hostd_metrics_text(const struct conf *c, const json_t *list, const json_t *cap)
{
	struct metrics_text t;

	metrics_text_init(&t);
	metrics_family(&t, "vdi_hostd_engine_available", "gauge",
		       "Whether an engine can run desktops on this host (1) or not (0).");
	for (int e = 0; e < NENGINES; e++)
		metrics_sample(&t, "vdi_hostd_engine_available",
			       hostd_engine_available(c, (enum desktop_engine)e), "engine",
			       desktop_engine_name((enum desktop_engine)e), NULL);
	events(&t);
	desktops(&t, list);
	capacity(&t, cap);
	return metrics_text_take(&t);
}

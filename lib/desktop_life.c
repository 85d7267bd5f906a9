#include "lib/desktop_life.h"

#include <stddef.h>
#include <string.h>

static const char *const names[] = {
    [LIFE_PLACING] = "placing", [LIFE_BOOTING] = "booting",   [LIFE_READY] = "ready",
    [LIFE_IN_USE] = "in_use",	[LIFE_STOPPING] = "stopping", [LIFE_STOPPED] = "stopped",
    [LIFE_FAILED] = "failed",
};

const char *desktop_life_name(enum desktop_life life)
{
	return (unsigned)life < sizeof(names) / sizeof(names[0]) ? names[life] : "placing";
}

bool desktop_life_parse(const char *name, enum desktop_life *life)
{
	for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(names[i], name)) {
			*life = (enum desktop_life)i;
			return true;
		}
	return false;
}

enum desktop_life desktop_life_of_vmm(const char *vmm_state)
{
	static const struct {
		const char *vmm;
		enum desktop_life life;
	} map[] = {
	    {"starting", LIFE_BOOTING}, {"running", LIFE_READY}, {"stopping", LIFE_STOPPING},
	    {"stopped", LIFE_STOPPED},	{"failed", LIFE_FAILED},
	};

	for (size_t i = 0; vmm_state && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(map[i].vmm, vmm_state))
			return map[i].life;
	return LIFE_PLACING;
}

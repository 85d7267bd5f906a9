/* INI configuration driven by one table of options (name, type, bounds, default):
 * the same table parses, validates, fills defaults and serves `-n` check mode.
 * Errors read "file:line: message". Not for command-line options. */
#ifndef VDI_CONFIG_H
#define VDI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum config_type {
	CONFIG_STRING,	 /* char *, owned by the target; co_max bounds the length if > 0 */
	CONFIG_INT,	 /* int within [co_min, co_max] */
	CONFIG_BOOL,	 /* bool: yes/no, true/false, on/off, 1/0 */
	CONFIG_DURATION, /* int seconds: "90", "90s", "15m", "2h", "1d"; bounds in seconds */
	CONFIG_ENUM,	 /* int index into co_choices */
};

struct config_option {
	const char *co_section;
	const char *co_name;
	enum config_type co_type;
	size_t co_offset;	       /* offsetof() the value in the caller's struct */
	const char *co_default;	       /* text parsed like a file value; NULL: none */
	long long co_min, co_max;      /* bounds for INT and DURATION, max length for STRING */
	const char *const *co_choices; /* ENUM: NULL-terminated */
	bool co_required;
	bool co_secret; /* never printed by config_print() */
	const char *co_help;
};

/* A table ends with an entry whose co_name is NULL. */
#define CONFIG_END                                                                                 \
	{                                                                                          \
		.co_name = NULL                                                                    \
	}

/* Fills target with every option's default, then reads path over it. Returns 0, or a
 * negative errno with "file:line: message" (or "file: message") in err. Strings in
 * target are allocated; release them with config_free() whatever the outcome. */
int config_load(const char *path, const struct config_option *opts, void *target, char *err,
		size_t errlen);
/* The same from a string, "name" standing for the file in messages. */
int config_load_string(const char *name, const char *text, const struct config_option *opts,
		       void *target, char *err, size_t errlen);
void config_free(const struct config_option *opts, void *target);
/* Writes the effective configuration in INI form (for `-n -v` and docs). */
void config_print(FILE *out, const struct config_option *opts, const void *target);

#endif

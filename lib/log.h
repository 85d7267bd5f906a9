/* Logging shared by the daemons: one line per event, to stderr in the foreground
 * or to syslog when detached. Not for user-facing command output. */
#ifndef VDI_LOG_H
#define VDI_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Sets the program name prefixed to each line, the most verbose level printed and
 * whether lines go to syslog instead of stderr. Safe to call again. */
void log_init(const char *progname, enum log_level level, bool use_syslog);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_warn appends ": strerror(errno)"; log_warnx does not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Start-up only: log with ": strerror(errno)" appended and exit(1). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Where lines go when not on syslog; tests point it at a pipe or file. -1 restores stderr. */
void log_set_fd(int fd);

#endif

/* Logging: formats a whole line first and writes it with one write(2), so lines from
 * several threads never interleave. Knows nothing of what is being logged. */
#include "lib/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *log_progname = "vdi";
static enum log_level log_level = LOG_LEVEL_INFO;
static bool log_syslog;
static int log_fd = STDERR_FILENO;

void log_init(const char *progname, enum log_level level, bool use_syslog)
{
	log_progname = progname;
	log_level = level;
	if (use_syslog && !log_syslog)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!use_syslog && log_syslog)
		closelog();
	log_syslog = use_syslog;
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

void log_set_fd(int fd)
{
	log_fd = fd < 0 ? STDERR_FILENO : fd;
}

static void vlog(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	static const int priorities[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char line[2048];
	size_t n = 0;
	int r;

	if (level > log_level)
		return;
	if (!log_syslog) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s: ", ts.tv_nsec / 1000000,
			     log_progname, names[level]);
		if (r > 0)
			n += (size_t)r;
	}
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r > 0)
		n += (size_t)r;
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	if (errnum) {
		r = snprintf(line + n, sizeof(line) - n, ": %s", strerror(errnum));
		if (r > 0)
			n += (size_t)r;
		if (n >= sizeof(line) - 1)
			n = sizeof(line) - 2;
	}
	/* One event, one line: control characters from outside input are replaced. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
			line[i] = '?';
	if (log_syslog) {
		syslog(priorities[level], "%.*s", (int)n, line);
		return;
	}
	line[n++] = '\n';
	for (size_t off = 0; off < n;) {
		ssize_t w = write(log_fd, line + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}

#define LOG_FN(name, level, with_errno)                                                            \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		int saved = errno;                                                                 \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		vlog(level, with_errno ? saved : 0, fmt, ap);                                      \
		va_end(ap);                                                                        \
		errno = saved;                                                                     \
	}

LOG_FN(log_err, LOG_LEVEL_ERR, 0)
LOG_FN(log_warn, LOG_LEVEL_WARN, 1)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)

void fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERR, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

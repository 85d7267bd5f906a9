/* The first line a broker sends on a relay connection, after TLS and before the VNC
 * bytes: "VDI-TICKET <ticket>\n" (or "\r\n"). Only the parsing, for the relay and its
 * fuzz target; redeeming the ticket is hostd/tickets.h's. */
#ifndef VDI_HOSTD_TICKETLINE_H
#define VDI_HOSTD_TICKETLINE_H

#include <stddef.h>
#include <sys/types.h>

#include "hostd/tickets.h"

#define TICKET_LINE_PREFIX "VDI-TICKET "
/* The longest line the relay reads: prefix, the longest ticket, "\r\n". */
#define TICKET_LINE_MAX (sizeof(TICKET_LINE_PREFIX) - 1 + TICKET_MAX_LEN + 2)

/* The ticket line at the start of the len bytes at buf (not NUL-terminated; bytes after
 * it are the client's first VNC bytes). Returns the line's length with its newline, the
 * ticket copied to ticket (room for ticket_size bytes with the NUL); 0 while no newline
 * has come in fewer than TICKET_LINE_MAX bytes (read more); -EINVAL for anything else:
 * another prefix, an empty ticket or one that does not fit, a NUL or a lone '\r' in the
 * line, no newline within TICKET_LINE_MAX bytes. What the ticket is made of is checked
 * when it is redeemed (tickets_valid()). */
ssize_t ticket_line_parse(const char *buf, size_t len, char *ticket, size_t ticket_size);

#endif

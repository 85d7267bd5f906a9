/* The open-file limit of a server: every connection holds a few descriptors (the client's
 * socket, a socketpair to the HTTP layer, libmicrohttpd's), so the default soft limit of
 * 1024 would end a busy broker with EMFILE long before its connection limits. */
#ifndef VDI_FDLIMIT_H
#define VDI_FDLIMIT_H

/* Raises the soft RLIMIT_NOFILE to the hard one. Returns the limit now in force. */
long fd_limit_raise(void);

#endif

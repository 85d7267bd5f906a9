/* 16550A UART as COM1 (ports 0x3F8-0x3FF, IRQ 4): the guest's console. Output goes to
 * a console log (hv/conslog.h: a descriptor, or a file with a size cap); input comes
 * from the main loop (stdin or the control socket). */
#ifndef VDI_HV_DEV_SERIAL_H
#define VDI_HV_DEV_SERIAL_H

#include <stddef.h>

struct conslog;
struct vm;

/* Registers COM1; guest output is written to out (NULL: discarded), which must outlive
 * the UART. Returns NULL with a log line on failure. Free with serial_free(), which
 * writes what is still buffered. */
struct serial *serial_create(struct vm *vm, struct conslog *out);
void serial_free(struct serial *uart);
/* Guest output is buffered: this descriptor becomes readable when there is some, and
 * serial_flush() (from the main loop) writes it to out. */
int serial_output_fd(const struct serial *uart);
void serial_flush(struct serial *uart);
/* Queues bytes for the guest to read. Returns how many were accepted: input beyond the
 * receive buffer (4 KiB) is refused rather than overwriting unread bytes. Thread-safe. */
size_t serial_feed(struct serial *uart, const void *buf, size_t len);

#endif

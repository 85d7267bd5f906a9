/* A counting gate with a bounded queue: at most `slots` callers inside at once, at
 * most `queue` more waiting (each for a bounded time), the rest turned away at once.
 * auth/ puts it around the expensive part of a login (scrypt or the LDAP round trips)
 * so a burst of logins costs bounded memory and CPU instead of one scrypt (32 MiB) per
 * connection. Thread-safe; a mutex and a condition variable on CLOCK_MONOTONIC. */
#ifndef VDI_AUTH_GATE_H
#define VDI_AUTH_GATE_H

/* Returns a new gate (slots >= 1, queue >= 0) or NULL with errno set. */
struct gate *gate_new(int slots, int queue);
/* Frees a gate nobody is inside of or waiting at. */
void gate_free(struct gate *g);

/* Enters the gate: at once when a slot is free and nobody waits before us, otherwise
 * waits for a slot at most timeout_ms milliseconds. Returns 0 (call gate_leave()
 * later), -EBUSY when the queue is full (nothing waited), -ETIMEDOUT when no slot came
 * in time. */
int gate_enter(struct gate *g, int timeout_ms);
void gate_leave(struct gate *g);

/* How many callers are inside and how many wait, at this moment (for logs, tests). */
void gate_counts(struct gate *g, int *inside, int *waiting);

#endif

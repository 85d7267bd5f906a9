/* Small helpers of the broker's modules (util.c): JSON record access, random ids, ticket
 * hashing. No broker state; any broker file may use them. */
#ifndef VDI_BROKER_UTIL_H
#define VDI_BROKER_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The string / integer member key of a record (NULL / 0 when absent). */
const char *jstr(const json_t *o, const char *key);
int64_t jint(const json_t *o, const char *key);
/* 2 * bytes lowercase hex characters and a NUL into out. Returns 0 or -EIO. */
int random_hex(char *out, size_t bytes);
/* The hex SHA-256 of a ticket (what the store keeps). Returns 0 or -EIO. */
int ticket_hash(const char *ticket, char out[65]);
bool ticket_well_formed(const char *ticket);

#endif

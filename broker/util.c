/* Small helpers of the broker's modules: JSON record access, random ids, ticket
 * hashing. No broker state. */
#include "broker/util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"

const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

int64_t jint(const json_t *o, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(o, key));
}

int random_hex(char *out, size_t bytes)
{
	unsigned char buf[32];

	if (bytes > sizeof(buf) || RAND_bytes(buf, (int)bytes) != 1)
		return -EIO;
	for (size_t i = 0; i < bytes; i++)
		sprintf(out + 2 * i, "%02x", buf[i]);
	return 0;
}

int ticket_hash(const char *ticket, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;

	if (!EVP_Digest(ticket, strlen(ticket), md, &len, EVP_sha256(), NULL) || len != 32)
		return -EIO;
	for (unsigned i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	return 0;
}

bool ticket_well_formed(const char *t)
{
	return t && strlen(t) == BROKER_TICKET_LEN &&
	       strspn(t, "0123456789abcdef") == BROKER_TICKET_LEN;
}

/* Little-endian loads and stores of 1 to 8 bytes: device registers, config spaces and
 * structures in guest memory are little-endian whatever width the guest accesses. */
#ifndef VDI_HV_LE_H
#define VDI_HV_LE_H

#include <stdint.h>

static inline uint64_t le_get(const uint8_t *p, unsigned len)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < len; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static inline void le_put(uint8_t *p, unsigned len, uint64_t v)
{
	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

#endif

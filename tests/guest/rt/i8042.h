/* The i8042 keyboard controller as the test guests drive it (keyboard.c, mouse.c,
 * desktop.c): polled commands and replies while they bring the devices up, then an
 * interrupt handler's drain of the output buffer into rings the main loop reads. Not a
 * keyboard or mouse driver: the guests send the device commands and decode the bytes. */
#ifndef I8042_H
#define I8042_H

#include "rt.h"

/* The command byte (controller RAM 0), as i8042_write_ctr() sets it. */
#define I8042_CTR_KBD_INT 0x01
#define I8042_CTR_AUX_INT 0x02
#define I8042_CTR_SYS	  0x04
#define I8042_CTR_KBD_DIS 0x10
#define I8042_CTR_AUX_DIS 0x20
#define I8042_CTR_XLATE	  0x40

/* Names the guest in i8042_want()'s verdict and sets how many status reads a wait or a
 * polled read makes before it gives up (slow KVM: ~1 ms each). Touches no port. */
void i8042_init(const char *guest, unsigned poll_limit);

/* A command to the controller (port 0x64), once its input buffer is free. */
void i8042_command(uint8_t cmd);
/* A byte to the keyboard, or the argument of the last command (port 0x60). */
void i8042_write(uint8_t b);
/* A byte to the mouse: command 0xD4, then b. */
void i8042_write_aux(uint8_t b);
/* The command byte: command 0x60, then ctr. */
void i8042_write_ctr(uint8_t ctr);

/* Reads away what is waiting in the output buffer (32 bytes at the most). */
void i8042_flush(void);
/* Polled read of the next byte from either port; -1 when none comes. */
int i8042_read(void);
/* Polled read of the next byte from the keyboard (aux false) or the mouse; bytes from the
 * other device are dropped. -1 when none comes. */
int i8042_read_port(bool aux);
/* Polled read that must give `expected`, or the guest fails naming `what`. */
void i8042_want(const char *what, uint8_t expected);

/* Bytes from the interrupt handler to the main loop. */
struct i8042_ring {
	volatile uint8_t bytes[256];
	volatile unsigned head, tail;
};

/* For the interrupt handler: moves the waiting bytes (64 at the most) into kbd or aux by
 * the port they came from. A NULL ring drops that port's bytes, as does a full one. */
void i8042_drain(struct i8042_ring *kbd, struct i8042_ring *aux);
bool i8042_ring_empty(const struct i8042_ring *r);
/* The oldest byte in the ring, or -1 when it is empty. */
int i8042_ring_get(struct i8042_ring *r);

#endif

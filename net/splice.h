/* The one copy loop: two streams (net/stream.h) joined both ways with bounded buffers in
 * the calling thread, poll() between rounds. What differs between its users is said
 * here, not coded again: a filter hook that sees the bytes read from a side (WebSocket
 * framing, RFB's view-only filter) and may answer on the other way, per side whether its
 * end is passed on as a half-close, whether a failed write to it only drops what is for
 * it, whether what is for it is delivered before the end ("drain", within drain_ms), and
 * whether it is read in large batches; idle and age deadlines; a stop descriptor; and a
 * tick for the owner's own reasons to end. The gateway, the display relay and the TLS
 * front run on it. */
#ifndef VDI_NET_SPLICE_H
#define VDI_NET_SPLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/stream.h"

/* splice_side.sd_flags. HALF_CLOSE: the side's end half-closes the other side once what
 * is for that side is written, and the splice goes on. WRITE_DROPS: after a failed write
 * to the side, what is for it is dropped and the splice goes on. DRAIN: at the end, what
 * is for the side is written first. BATCH: the side is read only when the other way is
 * empty, as much as fits (fewer, larger messages). */
#define SPLICE_HALF_CLOSE  0x1u
#define SPLICE_WRITE_DROPS 0x2u
#define SPLICE_DRAIN	   0x4u
#define SPLICE_BATCH	   0x8u

/* Why a splice ended; an owner's own reasons are SPLICE_OWNER + its code. */
enum splice_end {
	SPLICE_RUNNING,
	SPLICE_EOF,    /* a side ended (sp_end_side) */
	SPLICE_ERROR,  /* a write to a side failed (sp_end_side), or poll() */
	SPLICE_IDLE,   /* nothing moved for sp_idle_ms */
	SPLICE_AGE,    /* sp_age_ms since the start */
	SPLICE_STOP,   /* sp_stop_fd became readable: no drain, even one under way */
	SPLICE_FILTER, /* the filter refused what a side sent (sp_end_side) */
	SPLICE_OWNER
};

struct splice_side {
	struct stream *sd_stream;
	unsigned sd_flags;
	uint8_t *sd_out; /* what goes to this side */
	size_t sd_out_size;
	uint8_t *sd_in; /* non-NULL: what this side sent goes through the filter, kept here
			 * until the filter takes it */
	size_t sd_in_size;
	/* the loop's */
	size_t sd_out_off, sd_out_len, sd_in_len;
	bool sd_eof;	/* nothing more is read from it */
	bool sd_shut;	/* nothing more is written to it */
	bool sd_paused; /* not read for now (the owner's) */
	uint64_t sd_read, sd_written;
};

struct splice {
	struct splice_side sp_side[2];
	/* Takes bytes that side from sent (from its sd_in, n > 0; they may be changed in
	 * place) and puts what goes on with splice_put(). Returns how many it took (the rest
	 * stays for the next call), or -1 to end with SPLICE_FILTER. */
	ssize_t (*sp_filter)(struct splice *sp, int from, uint8_t *in, size_t n);
	/* Called every round (at least every sp_tick_ms): returns SPLICE_RUNNING or a reason
	 * to end. */
	int (*sp_tick)(struct splice *sp, int64_t now_ms);
	/* Called once when the end is decided, before the drain (say, a close frame). */
	void (*sp_ending)(struct splice *sp);
	void *sp_arg;
	int sp_stop_fd;		       /* -1: none */
	int sp_tick_ms;		       /* the longest poll() wait, -1: none */
	int64_t sp_idle_ms, sp_age_ms; /* 0: none */
	int64_t sp_drain_ms;	       /* 0: as long as it takes */
	int sp_end, sp_end_side;       /* the outcome */
};

/* Queues n bytes toward side to: all of them, or false (nothing queued) when they do not
 * fit. Bytes for a side that takes no more are dropped (true). */
bool splice_put(struct splice *sp, int to, const void *p, size_t n);
/* Room left toward side to. */
size_t splice_room(struct splice *sp, int to);
/* Ends the splice for why (enum splice_end or SPLICE_OWNER + code); the first reason
 * wins. side: the side it concerns, or -1. */
void splice_end(struct splice *sp, int why, int side);
/* Runs until the end: returns sp_end. The streams stay open: the caller closes them. */
int splice_run(struct splice *sp);

#endif

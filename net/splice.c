/* The copy loop (see splice.h). A round reads each side as far as there is room (into
 * the other side's buffer, or into its own for the filter) and writes each side as far
 * as it takes; rounds repeat without poll() while bytes move (a screen update moves
 * without a poll per TLS record), up to SPLICE_BURST. */
#include "net/splice.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

#include "lib/clock.h"

#define SPLICE_BURST 16

void splice_end(struct splice *sp, int why, int side)
{
	if (sp->sp_end == SPLICE_RUNNING) {
		sp->sp_end = why;
		sp->sp_end_side = side;
	}
}

/* Whether what is for side i still goes out now. */
static bool writing_to(const struct splice *sp, int i)
{
	const struct splice_side *s = &sp->sp_side[i];

	if (s->sd_shut)
		return false;
	if (sp->sp_end == SPLICE_RUNNING)
		return true;
	if (sp->sp_end == SPLICE_STOP || !(s->sd_flags & SPLICE_DRAIN))
		return false;
	return !((sp->sp_end == SPLICE_EOF || sp->sp_end == SPLICE_ERROR) && sp->sp_end_side == i);
}

static bool drained(const struct splice *sp)
{
	for (int i = 0; i < 2; i++)
		if (writing_to(sp, i) &&
		    (sp->sp_side[i].sd_out_len || stream_wants_write(sp->sp_side[i].sd_stream)))
			return false;
	return true;
}

/* Moves what waits toward side to to the front of its buffer. */
static void compact(struct splice_side *s)
{
	if (s->sd_out_off && s->sd_out_len)
		memmove(s->sd_out, s->sd_out + s->sd_out_off, s->sd_out_len);
	s->sd_out_off = 0;
}

size_t splice_room(struct splice *sp, int to)
{
	const struct splice_side *s = &sp->sp_side[to];

	return s->sd_out_size - s->sd_out_len;
}

bool splice_put(struct splice *sp, int to, const void *p, size_t n)
{
	struct splice_side *s = &sp->sp_side[to];

	if (s->sd_shut)
		return true;
	if (n > splice_room(sp, to))
		return false;
	if (s->sd_out_off + s->sd_out_len + n > s->sd_out_size)
		compact(s);
	memcpy(s->sd_out + s->sd_out_off + s->sd_out_len, p, n);
	s->sd_out_len += n;
	return true;
}

static void side_ended(struct splice *sp, int i)
{
	struct splice_side *s = &sp->sp_side[i];

	s->sd_eof = true;
	if (!(s->sd_flags & SPLICE_HALF_CLOSE))
		splice_end(sp, SPLICE_EOF, i);
}

static bool run_filter(struct splice *sp, int i)
{
	struct splice_side *s = &sp->sp_side[i];
	ssize_t took;

	if (!s->sd_in_len || sp->sp_end != SPLICE_RUNNING)
		return false;
	took = sp->sp_filter(sp, i, s->sd_in, s->sd_in_len);
	if (took < 0) {
		splice_end(sp, SPLICE_FILTER, i);
		return false;
	}
	memmove(s->sd_in, s->sd_in + took, s->sd_in_len - (size_t)took);
	s->sd_in_len -= (size_t)took;
	return took > 0;
}

/* Whether side i may be read now, and where to and how much. */
static size_t read_room(struct splice *sp, int i, uint8_t **to)
{
	struct splice_side *s = &sp->sp_side[i], *o = &sp->sp_side[1 - i];

	if (s->sd_eof || s->sd_paused || sp->sp_end != SPLICE_RUNNING)
		return 0;
	if ((s->sd_flags & SPLICE_BATCH) && (o->sd_out_len || s->sd_in_len))
		return 0;
	if (s->sd_in) {
		*to = s->sd_in + s->sd_in_len;
		return s->sd_in_size - s->sd_in_len;
	}
	if (o->sd_out_off + o->sd_out_len == o->sd_out_size)
		compact(o);
	*to = o->sd_out + o->sd_out_off + o->sd_out_len;
	return o->sd_out_size - o->sd_out_off - o->sd_out_len;
}

static bool read_side(struct splice *sp, int i)
{
	struct splice_side *s = &sp->sp_side[i], *o = &sp->sp_side[1 - i];
	bool moved = s->sd_in && run_filter(sp, i);
	uint8_t *to;
	size_t room;

	while ((room = read_room(sp, i, &to)) > 0) {
		ssize_t r = stream_read(s->sd_stream, to, room);

		if (r == -EAGAIN)
			break;
		if (r <= 0) {
			side_ended(sp, i);
			break;
		}
		moved = true;
		s->sd_read += (uint64_t)r;
		if (s->sd_in)
			s->sd_in_len += (size_t)r;
		else if (!o->sd_shut) /* else nobody takes it */
			o->sd_out_len += (size_t)r;
	}
	if (s->sd_in && run_filter(sp, i))
		moved = true;
	return moved;
}

static bool write_side(struct splice *sp, int i)
{
	struct splice_side *s = &sp->sp_side[i], *o = &sp->sp_side[1 - i];
	bool moved = false;

	while (s->sd_out_len && writing_to(sp, i)) {
		ssize_t r = stream_write(s->sd_stream, s->sd_out + s->sd_out_off, s->sd_out_len);

		if (r == -EAGAIN)
			break;
		if (r < 0) {
			if (!(s->sd_flags & SPLICE_WRITE_DROPS)) {
				splice_end(sp, SPLICE_ERROR, i);
				return moved;
			}
			s->sd_shut = true;
			s->sd_out_off = s->sd_out_len = 0;
			return moved;
		}
		moved = true;
		s->sd_written += (uint64_t)r;
		s->sd_out_off += (size_t)r;
		s->sd_out_len -= (size_t)r;
		if (!s->sd_out_len)
			s->sd_out_off = 0;
	}
	/* the other side's end, passed on once what it sent is out */
	if (o->sd_eof && (o->sd_flags & SPLICE_HALF_CLOSE) && !s->sd_shut && !s->sd_out_len &&
	    !o->sd_in_len && sp->sp_end == SPLICE_RUNNING) {
		stream_shutdown(s->sd_stream);
		s->sd_shut = true;
	}
	return moved;
}

static bool one_round(struct splice *sp)
{
	bool moved = false;

	for (int i = 0; i < 2; i++) {
		moved |= read_side(sp, i);
		moved |= write_side(sp, 1 - i);
	}
	return moved;
}

static int64_t shorter(int64_t wait, int64_t left)
{
	if (left < 0)
		left = 0;
	return wait < 0 || left < wait ? left : wait;
}

/* Waits for the streams (and the stop descriptor) until the next deadline. */
static void wait_io(struct splice *sp, int64_t now, int64_t start, int64_t last_io,
		    int64_t drain_until)
{
	struct pollfd pfd[3] = {{.fd = -1}, {.fd = -1}, {.fd = sp->sp_stop_fd, .events = POLLIN}};
	int64_t wait = sp->sp_tick_ms;

	for (int i = 0; i < 2; i++) {
		struct splice_side *s = &sp->sp_side[i];
		uint8_t *to;
		bool reading = read_room(sp, i, &to) > 0;

		pfd[i].fd = stream_fd(s->sd_stream);
		pfd[i].events =
		    stream_events(s->sd_stream, reading, s->sd_out_len && writing_to(sp, i));
		if (reading && stream_pending(s->sd_stream))
			wait = 0;
	}
	if (sp->sp_idle_ms && sp->sp_end == SPLICE_RUNNING)
		wait = shorter(wait, last_io + sp->sp_idle_ms - now);
	if (sp->sp_age_ms && sp->sp_end == SPLICE_RUNNING)
		wait = shorter(wait, start + sp->sp_age_ms - now);
	if (drain_until)
		wait = shorter(wait, drain_until - now);
	if (poll(pfd, 3, (int)wait) < 0) {
		if (errno != EINTR)
			splice_end(sp, SPLICE_ERROR, -1);
		return;
	}
	if (pfd[2].revents) { /* the owner stops: whatever ended before, nothing waits now */
		sp->sp_end = SPLICE_STOP;
		sp->sp_end_side = -1;
	}
	/* a hang-up with nothing left to read is that side's end */
	for (int i = 0; i < 2; i++)
		if ((pfd[i].revents & (POLLHUP | POLLERR)) && !(pfd[i].revents & POLLIN) &&
		    !sp->sp_side[i].sd_eof && !stream_pending(sp->sp_side[i].sd_stream))
			side_ended(sp, i);
}

int splice_run(struct splice *sp)
{
	int64_t start = monotonic_ms(), last_io = start, drain_until = 0, now;
	bool ending = false;

	for (;;) {
		bool moved = false;

		for (int i = 0; i < SPLICE_BURST && one_round(sp); i++)
			moved = true;
		now = monotonic_ms();
		if (moved)
			last_io = now;
		if (sp->sp_end == SPLICE_RUNNING && sp->sp_tick)
			splice_end(sp, sp->sp_tick(sp, now), -1);
		if (sp->sp_idle_ms && now - last_io >= sp->sp_idle_ms)
			splice_end(sp, SPLICE_IDLE, -1);
		if (sp->sp_age_ms && now - start >= sp->sp_age_ms)
			splice_end(sp, SPLICE_AGE, -1);
		if (sp->sp_end != SPLICE_RUNNING) {
			if (!ending) {
				ending = true;
				if (sp->sp_ending)
					sp->sp_ending(sp);
				if (sp->sp_drain_ms)
					drain_until = now + sp->sp_drain_ms;
				continue; /* what the hook queued goes out first */
			}
			if (drained(sp) || (drain_until && now >= drain_until))
				return sp->sp_end;
		}
		wait_io(sp, now, start, last_io, drain_until);
	}
}

/* RFB client-stream filter: a header is collected byte by byte until the
 * message's length is known, then its body passes or is skipped in bulk, so
 * nothing the client says sizes a buffer. Message lengths from RFC 6143
 * section 7.5 and QEMU's extensions. In keys mode a key message is collected
 * whole and replaced by the KeyEvents display/rfbkeys.c gives for it. */
#include "display/rfbfilter.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "lib/be.h"

enum { RF_VERSION, RF_SECURITY, RF_AUTH, RF_INIT, RF_MSG };

/* The server's handshake: version, then (3.3) one 32-bit security type or (3.7/3.8)
 * a count and that many types; DONE once known, FAILED when it refused. */
enum { SV_VERSION, SV_SECURITY, SV_TYPES, SV_DONE, SV_FAILED };

#define SEC_NONE 1
#define SEC_VNC	 2

enum { NEED_MORE = 0, DONE = 1, BROKEN = -1 };

void rfb_filter_init_mode(struct rfb_filter *f, enum rfb_filter_mode mode)
{
	memset(f, 0, sizeof(*f));
	f->rf_mode = mode;
	rfb_keys_init(&f->rf_keys);
	f->rf_state = RF_VERSION;
	f->rf_sstate = SV_VERSION;
}

void rfb_filter_init(struct rfb_filter *f)
{
	rfb_filter_init_mode(f, RFB_FILTER_VIEW_ONLY);
}

/* Appends KeyEvents to what the current message becomes. */
static void emit_keys(struct rfb_filter *f, const struct rfb_key_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t *m = f->rf_emit + f->rf_elen;

		m[0] = 4;
		m[1] = ev[i].ke_down;
		m[2] = m[3] = 0;
		be32_put(m + 4, ev[i].ke_keysym);
		f->rf_elen += 8;
	}
}

/* Keys mode: a whole KeyEvent (8 bytes) in the header, replaced by what rfbkeys says. */
static int key_event(struct rfb_filter *f)
{
	struct rfb_key_event ev[RFB_KEYS_OUT_MAX];
	size_t n = rfb_keys_event(&f->rf_keys, be32_get(f->rf_hdr + 4), f->rf_hdr[1] != 0, ev);

	f->rf_elen = 0;
	emit_keys(f, ev, n);
	f->rf_forward = 0; /* the header itself does not pass */
	f->rf_remaining = 0;
	return DONE;
}

/* Keys mode: a whole QEMU extended key event (12 bytes: type, subtype, u16 down, u32
 * keysym, u32 scan code), passed on between the Shift changes rfbkeys asks for. */
static int extended_key_event(struct rfb_filter *f)
{
	struct rfb_key_event ev[RFB_KEYS_OUT_MAX];
	const uint8_t *h = f->rf_hdr;
	size_t before, n = rfb_keys_extended(&f->rf_keys, be32_get(h + 4), be32_get(h + 8),
					     (h[2] | h[3]) != 0, ev, &before);

	f->rf_elen = 0;
	emit_keys(f, ev, before);
	memcpy(f->rf_emit + f->rf_elen, h, 12);
	f->rf_elen += 12;
	emit_keys(f, ev + before, n - before);
	f->rf_forward = 0;
	f->rf_remaining = 0;
	return DONE;
}

/* "RFB xxx.yyy\n" as major * 1000 + minor, or -1. */
static int parse_version(const uint8_t *v)
{
	int major = 0, minor = 0;

	if (memcmp(v, "RFB ", 4) || v[7] != '.' || v[11] != '\n')
		return -1;
	for (int i = 4; i < 11; i++) {
		if (i == 7)
			continue;
		if (v[i] < '0' || v[i] > '9')
			return -1;
		if (i < 7)
			major = major * 10 + (v[i] - '0');
		else
			minor = minor * 10 + (v[i] - '0');
	}
	return major * 1000 + minor;
}

/* Whether the session speaks 3.7 or later (a list of security types the client picks
 * from) rather than 3.3 (the server's one choice): the lower of both versions, as a
 * server answers an older client in the client's version and a 3.3-only server
 * speaks 3.3 whatever the client said. Both versions must be known. */
static bool modern(const struct rfb_filter *f)
{
	int v = f->rf_client_version < f->rf_server_version ? f->rf_client_version
							    : f->rf_server_version;

	return v >= 3007;
}

/* The header so far decides: pass (forward = 1) or drop, with body bytes to
 * follow. */
static int decide(struct rfb_filter *f, int forward, uint64_t body)
{
	f->rf_forward = forward;
	f->rf_remaining = body;
	if (!forward)
		f->rf_dropped++;
	return DONE;
}

/* A QEMU audio message (255, subtype 1, u16 operation): enable and disable have no
 * body, set-format 6 bytes; it passes in both modes (audio is not input). QEMU knows
 * no other subtype but 0 (extended key event): anything else breaks the session. */
static int qemu_audio(struct rfb_filter *f)
{
	const uint8_t *h = f->rf_hdr;

	if (h[1] != 1)
		return BROKEN;
	if (f->rf_hlen < 4)
		return NEED_MORE;
	if (h[3] == 0 || h[3] == 1)
		return decide(f, 1, 0);
	if (h[3] == 2)
		return decide(f, 1, 6);
	return BROKEN;
}

/* Keys mode: every message passes; QEMU's list (ui/vnc.c) with the lengths of RFC 6143
 * section 7.5. */
static int message_keys(struct rfb_filter *f)
{
	const uint8_t *h = f->rf_hdr;
	int32_t cut;

	switch (h[0]) {
	case 0: return decide(f, 1, 19); /* SetPixelFormat */
	case 2:				 /* SetEncodings: u16 count of s32 */
		if (f->rf_hlen < 4)
			return NEED_MORE;
		return decide(f, 1, 4ull * (uint64_t)(h[2] << 8 | h[3]));
	case 3: return decide(f, 1, 9); /* FramebufferUpdateRequest */
	case 4:				/* KeyEvent */
		if (f->rf_hlen < 8)
			return NEED_MORE;
		return key_event(f);
	case 5: return decide(f, 1, 5); /* PointerEvent */
	case 6: /* ClientCutText: s32 length, negative for the extended clipboard */
		if (f->rf_hlen < 8)
			return NEED_MORE;
		cut = (int32_t)be32_get(h + 4);
		return decide(f, 1, cut < 0 ? (uint64_t)(-(int64_t)cut) : (uint64_t)cut);
	case 150: return decide(f, 1, 9); /* EnableContinuousUpdates */
	case 250: return decide(f, 1, 3); /* xvp: shutdown, reboot, reset */
	case 251:			  /* SetDesktopSize: u8 count of 16-byte screens */
		if (f->rf_hlen < 8)
			return NEED_MORE;
		return decide(f, 1, 16ull * h[6]);
	case 255: /* QEMU client message */
		if (f->rf_hlen < 2)
			return NEED_MORE;
		if (h[1] == 0) { /* extended key event */
			if (f->rf_hlen < 12)
				return NEED_MORE;
			return extended_key_event(f);
		}
		return qemu_audio(f);
	default: return BROKEN;
	}
}

static int message(struct rfb_filter *f)
{
	const uint8_t *h = f->rf_hdr;

	if (f->rf_mode == RFB_FILTER_KEYS)
		return message_keys(f);
	switch (h[0]) {
	case 0: return decide(f, 1, 19); /* SetPixelFormat */
	case 2:				 /* SetEncodings: u16 count of s32 */
		if (f->rf_hlen < 4)
			return NEED_MORE;
		return decide(f, 1, 4ull * (uint64_t)(h[2] << 8 | h[3]));
	case 3: return decide(f, 1, 9); /* FramebufferUpdateRequest */
	case 4: return decide(f, 0, 7); /* KeyEvent */
	case 5: return decide(f, 0, 5); /* PointerEvent */
	case 6:				/* ClientCutText: u32 length */
		if (f->rf_hlen < 8)
			return NEED_MORE;
		return decide(f, 0, be32_get(h + 4));
	case 150: return decide(f, 1, 9); /* EnableContinuousUpdates */
	case 250: return decide(f, 0, 3); /* xvp: shutdown, reboot, reset */
	case 251:			  /* SetDesktopSize: a viewer does not resize */
		if (f->rf_hlen < 8)
			return NEED_MORE;
		return decide(f, 0, 16ull * h[6]);
	case 255: /* QEMU client message */
		if (f->rf_hlen < 2)
			return NEED_MORE;
		if (h[1] == 0)
			return decide(f, 0, 10); /* extended key event */
		return qemu_audio(f);
	default: return BROKEN;
	}
}

/* The client's security-phase byte, once the server's side is known: in 3.7/3.8 its
 * pick from the offered types; in 3.3 already what the server's type says comes next
 * (the first of 16 response bytes, or ClientInit). */
static int security(struct rfb_filter *f)
{
	uint8_t t = f->rf_hdr[0];

	if (f->rf_sstate != SV_DONE)
		return BROKEN; /* types not seen yet (a client answering blind), or refused */
	if (!modern(f)) {
		f->rf_state = f->rf_chosen == SEC_VNC ? RF_AUTH : RF_INIT;
		return NEED_MORE; /* header() goes on with this byte in its new state */
	}
	if ((t != SEC_NONE && t != SEC_VNC) || !(f->rf_offered & (1u << t)))
		return BROKEN;
	f->rf_state = t == SEC_VNC ? RF_AUTH : RF_INIT;
	return decide(f, 1, 0);
}

static int header(struct rfb_filter *f)
{
	int r;

	switch (f->rf_state) {
	case RF_VERSION:
		if (f->rf_hlen < 12)
			return NEED_MORE;
		r = parse_version(f->rf_hdr);
		if (r < 3000 || r >= 4000)
			return BROKEN;
		f->rf_client_version = r;
		f->rf_state = RF_SECURITY;
		return decide(f, 1, 0);
	case RF_SECURITY:
		r = security(f);
		if (r == NEED_MORE && f->rf_state != RF_SECURITY)
			return header(f);
		return r;
	case RF_AUTH:
		if (f->rf_hlen < 16)
			return NEED_MORE;
		f->rf_state = RF_INIT;
		return decide(f, 1, 0);
	case RF_INIT: f->rf_state = RF_MSG; return decide(f, 1, 0);
	default: return message(f);
	}
}

/* One byte of the server's handshake. 0 or -EPROTO. */
static int server_byte(struct rfb_filter *f, uint8_t b)
{
	int v;

	switch (f->rf_sstate) {
	case SV_VERSION:
		f->rf_shdr[f->rf_shlen++] = b;
		if (f->rf_shlen < 12)
			return 0;
		v = parse_version(f->rf_shdr);
		if (v < 3003)
			return -EPROTO;
		f->rf_server_version = v;
		f->rf_sstate = SV_SECURITY;
		f->rf_shlen = 0;
		return 0;
	case SV_SECURITY:
		/* sent only in answer to the client's version, which passed here first */
		if (!f->rf_client_version)
			return -EPROTO;
		if (modern(f)) {
			f->rf_stypes_left = b;
			f->rf_sstate = b ? SV_TYPES : SV_FAILED; /* 0: a reason follows */
			return 0;
		}
		f->rf_chosen = f->rf_chosen << 8 | b;
		if (++f->rf_shlen < 4)
			return 0;
		if (f->rf_chosen == 0) {
			f->rf_sstate = SV_FAILED; /* a reason follows, then the end */
			return 0;
		}
		if (f->rf_chosen != SEC_NONE && f->rf_chosen != SEC_VNC)
			return -EPROTO; /* a type whose client bytes it cannot follow */
		f->rf_sstate = SV_DONE;
		return 0;
	case SV_TYPES:
		if (b < 32)
			f->rf_offered |= 1u << b;
		if (--f->rf_stypes_left == 0)
			f->rf_sstate = SV_DONE;
		return 0;
	default: return 0; /* past the security types: not looked at */
	}
}

int rfb_filter_server(struct rfb_filter *f, const uint8_t *in, size_t len)
{
	for (size_t i = 0;
	     i < len && f->rf_sstate != SV_DONE && f->rf_sstate != SV_FAILED && !f->rf_passthrough;
	     i++) {
		if (server_byte(f, in[i]) < 0) {
			if (f->rf_mode != RFB_FILTER_KEYS)
				return -EPROTO;
			f->rf_passthrough = true; /* the client's bytes pass unchanged */
		}
	}
	return 0;
}

/* Keys mode, the stream lost: what was held back and everything after passes. */
static size_t pass_through(struct rfb_filter *f, const uint8_t *in, size_t len, uint8_t *out)
{
	size_t o = f->rf_hlen;

	f->rf_passthrough = true;
	memcpy(out, f->rf_hdr, f->rf_hlen);
	f->rf_hlen = 0;
	memcpy(out + o, in, len);
	return o + len;
}

ssize_t rfb_filter_client(struct rfb_filter *f, const uint8_t *in, size_t len, uint8_t *out)
{
	size_t i = 0, o = 0;

	if (f->rf_passthrough)
		return (ssize_t)pass_through(f, in, len, out);
	while (i < len) {
		int r;

		if (f->rf_remaining) {
			size_t n = len - i < f->rf_remaining ? len - i : (size_t)f->rf_remaining;

			if (f->rf_forward) {
				memcpy(out + o, in + i, n);
				o += n;
			}
			i += n;
			f->rf_remaining -= n;
			continue;
		}
		f->rf_hdr[f->rf_hlen++] = in[i++];
		r = header(f);
		if (r == BROKEN && f->rf_mode == RFB_FILTER_KEYS)
			return (ssize_t)(o + pass_through(f, in + i, len - i, out + o));
		if (r == BROKEN)
			return -EPROTO;
		if (r == DONE) {
			/* a key message's replacement (keys mode), or the header itself */
			memcpy(out + o, f->rf_emit, f->rf_elen);
			o += f->rf_elen;
			f->rf_elen = 0;
			if (f->rf_forward) {
				memcpy(out + o, f->rf_hdr, f->rf_hlen);
				o += f->rf_hlen;
			}
			f->rf_hlen = 0;
		} else if (f->rf_hlen == sizeof(f->rf_hdr)) {
			if (f->rf_mode == RFB_FILTER_KEYS)
				return (ssize_t)(o + pass_through(f, in + i, len - i, out + o));
			return -EPROTO;
		}
	}
	return (ssize_t)o;
}

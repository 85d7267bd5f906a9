/* A scriptable VNC viewer for the display tests and benchmark, on libvncclient: connects
 * (unix socket or TCP) with a password, sends the keys and pointer events its command line
 * lists, waits for framebuffer updates, and reports what it saw as key=value lines:
 * geometry, bytes and updates received (counted by a relay thread between it and the
 * server), keystroke-to-update latencies; it can save the screen as a PNG. Two helpers
 * for vncsnapshot ride along: writing a vncpasswd file and decoding its JPEG to PNG. Not
 * a viewer for people. Exit status: 0 ok, 1 failure, 2 usage, 3 authentication refused. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h> /* before jpeglib.h */
#include <jpeglib.h>
#include <png.h>
#include <poll.h>
#include <pthread.h>
#include <rfb/keysym.h>
#include <rfb/rfbclient.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define EXIT_AUTH 3

/* libvncclient exports it without declaring it. */
void rfbClientEncryptBytes(unsigned char *bytes, char *passwd);

static const char usage_text[] =
    "usage: vnc_client [options] unix:PATH|HOST:PORT [actions...]\n"
    "       vnc_client --write-vncpasswd FILE     (password from $VNC_PASSWORD)\n"
    "       vnc_client --jpeg-to-png IN.jpg OUT.png\n"
    "options: --password-env NAME (default VNC_PASSWORD; unset: no password)\n"
    "         --timeout SEC (each wait, default 30)  --encodings \"tight zrle raw\"\n"
    "         --ignore X,Y,W,H (changes there do not count as a change: a clock)\n"
    "actions, in order:\n"
    "  --type TEXT          key presses and releases typing TEXT on a US layout\n"
    "  --key KEYSYM         press and release a keysym (hex, e.g. 0xff0d)\n"
    "  --scancode SYM:CODE  press and release PC scan code CODE (QEMU extended key event,\n"
    "                       0xc8 for E0 48) with keysym SYM\n"
    "  --pointer X,Y,MASK   a pointer event\n"
    "  --wait-update        wait for the next framebuffer update\n"
    "  --wait-change        wait until an update changes the screen\n"
    "  --idle SEC           stay SEC seconds; print bytes and updates received meanwhile\n"
    "  --latency N          N times: press and release 'x', time to the changing update\n"
    "  --save FILE.png      write the screen as the viewer has it\n"
    "  --sleep SEC          pause (handling updates meanwhile)\n";

static int timeout_s = 30;
/* A screen area whose changes --wait-change and --latency do not count (a clock). */
static int ignore_x, ignore_y, ignore_w, ignore_h;
static bool auth_failed;

/* ---- logging: libvncclient's lines go to stderr, authentication failures noted ---- */

static void client_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void client_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (strstr(line, "uthentication fail") || strstr(line, "password check failed") ||
	    strstr(line, "VNC authentication failed"))
		auth_failed = true;
	fprintf(stderr, "vnc_client: %s%s", line, strchr(line, '\n') ? "" : "\n");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- relay: counts the bytes the server sends ---- */

struct relay {
	int r_listen, r_server;
	char r_path[108];
	atomic_ullong r_bytes;
	atomic_bool r_closing; /* the viewer is done: discard what the server sends */
	pthread_t r_thread;
};

static int connect_server(const char *addr)
{
	int fd;

	if (!strncmp(addr, "unix:", 5)) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};

		if (strlen(addr + 5) >= sizeof(sun.sun_path))
			return -1;
		strcpy(sun.sun_path, addr + 5);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			return fd;
	} else {
		char host[256];
		const char *colon = strrchr(addr, ':');
		struct sockaddr_in sin = {.sin_family = AF_INET};

		if (!colon || (size_t)(colon - addr) >= sizeof(host))
			return -1;
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = '\0';
		sin.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
			return -1;
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			return fd;
	}
	if (fd >= 0)
		close(fd);
	return -1;
}

static bool pump(int from, int to, atomic_ullong *count)
{
	char buf[65536];
	ssize_t n = read(from, buf, sizeof(buf));

	if (n <= 0)
		return false;
	if (count)
		atomic_fetch_add(count, (unsigned long long)n);
	if (to < 0)
		return true;
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));

		if (w <= 0)
			return false;
		off += w;
	}
	return true;
}

static void *relay_thread(void *arg)
{
	struct relay *r = arg;
	int viewer = accept(r->r_listen, NULL, NULL);
	struct pollfd pfds[2];

	if (viewer < 0)
		return NULL;
	pfds[0] = (struct pollfd){.fd = viewer, .events = POLLIN};
	pfds[1] = (struct pollfd){.fd = r->r_server, .events = POLLIN};
	while (poll(pfds, 2, -1) > 0) {
		if (pfds[0].revents && !pump(viewer, r->r_server, NULL)) {
			/* The viewer is done sending: so are we, and the server closes once it
			 * has read everything. */
			shutdown(r->r_server, SHUT_WR);
			pfds[0].fd = -1;
		}
		if (pfds[1].revents &&
		    !pump(r->r_server, atomic_load(&r->r_closing) ? -1 : viewer, &r->r_bytes))
			break;
	}
	shutdown(viewer, SHUT_RDWR);
	close(viewer);
	return NULL;
}

static int relay_start(struct relay *r, const char *addr)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	r->r_server = connect_server(addr);
	if (r->r_server < 0) {
		fprintf(stderr, "vnc_client: cannot connect to %s: %s\n", addr, strerror(errno));
		return -1;
	}
	snprintf(r->r_path, sizeof(r->r_path), "/tmp/vnc_client.%ld.sock", (long)getpid());
	strcpy(sun.sun_path, r->r_path);
	unlink(r->r_path);
	r->r_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->r_listen < 0 || bind(r->r_listen, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(r->r_listen, 1) < 0 || pthread_create(&r->r_thread, NULL, relay_thread, r)) {
		fprintf(stderr, "vnc_client: relay: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- the session ---- */

static const char *password;
static unsigned updates;
static unsigned long long pixels_received;

static char *get_password(rfbClient *client)
{
	(void)client;
	return strdup(password ? password : "");
}

static void got_update(rfbClient *client, int x, int y, int w, int h)
{
	(void)client;
	pixels_received += (unsigned long long)w * (unsigned long long)h;
	if (getenv("VNC_CLIENT_DEBUG"))
		fprintf(stderr, "vnc_client: rect %dx%d at %d,%d\n", w, h, x, y);
}

static void finished_update(rfbClient *client)
{
	(void)client;
	updates++;
}

/* Whether the screen differs from before outside the ignored area. */
static bool screen_changed(rfbClient *cl, const uint8_t *before)
{
	const uint32_t *now = (const uint32_t *)cl->frameBuffer, *old = (const uint32_t *)before;

	for (int y = 0; y < cl->height; y++)
		for (int x = 0; x < cl->width; x++) {
			size_t i = (size_t)y * (size_t)cl->width + (size_t)x;

			if (now[i] != old[i] && !(x >= ignore_x && x < ignore_x + ignore_w &&
						  y >= ignore_y && y < ignore_y + ignore_h))
				return true;
		}
	return false;
}

/* Handles server messages until an update arrives (and, with want_change, until the
 * screen differs from before), or timeout. Returns 0 or -1. */
static int wait_update(rfbClient *cl, bool want_change, double timeout)
{
	size_t size = (size_t)cl->width * (size_t)cl->height * 4;
	uint8_t *before = want_change ? malloc(size) : NULL;
	unsigned start = updates;
	double deadline = now_s() + timeout;
	int r = -1;

	if (want_change && !before)
		return -1;
	if (before)
		memcpy(before, cl->frameBuffer, size);
	while (now_s() < deadline) {
		int n = WaitForMessage(cl, 100000);

		if (n < 0)
			break;
		if (n > 0 && !HandleRFBServerMessage(cl))
			break;
		if (updates != start && (!want_change || screen_changed(cl, before))) {
			r = 0;
			break;
		}
	}
	free(before);
	return r;
}

static void send_key(rfbClient *cl, uint32_t keysym)
{
	SendKeyEvent(cl, keysym, TRUE);
	SendKeyEvent(cl, keysym, FALSE);
}

/* A key by its PC scan code (QEMU extended key event), once the server said it takes
 * them (it answers the -258 pseudo-encoding libvncclient asks for). spec is
 * "KEYSYM:SCANCODE" in hex. Returns 0, -1 when the server never offered it. */
static int send_scancode(rfbClient *cl, const char *spec)
{
	unsigned long keysym, code;
	char *end;

	keysym = strtoul(spec, &end, 0);
	if (*end != ':')
		return -2;
	code = strtoul(end + 1, &end, 0);
	if (*end)
		return -2;
	for (double until = now_s() + 5; !SupportsClient2Server(cl, rfbQemuEvent);) {
		/* the answer may sit in libvncclient's buffer already, unseen by select() */
		int n = cl->buffered ? 1 : WaitForMessage(cl, 50000);

		if (now_s() > until || n < 0 || (n > 0 && !HandleRFBServerMessage(cl)))
			return -1;
	}
	SendExtendedKeyEvent(cl, (uint32_t)keysym, (uint32_t)code, TRUE);
	SendExtendedKeyEvent(cl, (uint32_t)keysym, (uint32_t)code, FALSE);
	return 0;
}

static int type_text(rfbClient *cl, const char *text)
{
	static const char shifted[] = "~!@#$%^&*()_+{}|:\"<>?";

	for (const char *p = text; *p; p++) {
		unsigned char c = (unsigned char)*p;
		bool shift = (c >= 'A' && c <= 'Z') || (c && strchr(shifted, c));
		uint32_t keysym = c == '\n' ? XK_Return : c == '\t' ? XK_Tab : c;

		if (c < 0x20 && c != '\n' && c != '\t')
			return -1;
		if (shift)
			SendKeyEvent(cl, XK_Shift_L, TRUE);
		send_key(cl, keysym);
		if (shift)
			SendKeyEvent(cl, XK_Shift_L, FALSE);
	}
	return 0;
}

static int save_png(rfbClient *cl, const char *path)
{
	FILE *f = fopen(path, "wb");
	png_structp png;
	png_infop info;
	uint8_t *row;

	if (!f)
		return -1;
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	info = png ? png_create_info_struct(png) : NULL;
	row = malloc((size_t)cl->width * 3);
	if (!info || !row || setjmp(png_jmpbuf(png))) {
		fclose(f);
		free(row);
		return -1;
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, (png_uint_32)cl->width, (png_uint_32)cl->height, 8,
		     PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
		     PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < cl->height; y++) {
		const uint32_t *src = (const uint32_t *)cl->frameBuffer + (size_t)y * cl->width;

		for (int x = 0; x < cl->width; x++) {
			uint32_t px = src[x];

			row[3 * x] = (uint8_t)(px >> cl->format.redShift);
			row[3 * x + 1] = (uint8_t)(px >> cl->format.greenShift);
			row[3 * x + 2] = (uint8_t)(px >> cl->format.blueShift);
		}
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(row);
	return fclose(f) == 0 ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int measure_latency(rfbClient *cl, struct relay *r, int n)
{
	double *lat = calloc((size_t)n, sizeof(double));
	unsigned long long bytes0 = atomic_load(&r->r_bytes);
	unsigned updates0 = updates;
	int ok = 0;

	if (!lat)
		return -1;
	for (int i = 0; i < n; i++) {
		double t0;

		/* Let the previous redraw settle: drain updates for a moment. */
		while (wait_update(cl, false, 0.3) == 0)
			;
		t0 = now_s();
		send_key(cl, 'x');
		if (wait_update(cl, true, timeout_s) < 0) {
			fprintf(stderr, "vnc_client: no screen change after key %d\n", i);
			break;
		}
		lat[ok++] = (now_s() - t0) * 1000.0;
	}
	while (wait_update(cl, false, 0.3) == 0)
		;
	if (ok) {
		qsort(lat, (size_t)ok, sizeof(double), cmp_double);
		printf("latency_samples=%d\nlatency_median_ms=%.1f\nlatency_p99_ms=%.1f\n", ok,
		       lat[ok / 2], lat[(ok * 99 + 99) / 100 - 1]);
		printf("latency_bytes=%llu\nlatency_updates=%u\n",
		       atomic_load(&r->r_bytes) - bytes0, updates - updates0);
	}
	free(lat);
	return ok == n ? 0 : -1;
}

/* ---- the vncsnapshot helpers ---- */

static int write_vncpasswd(const char *path)
{
	static const char fixed_key[9] = {23, 82, 107, 6, 35, 78, 88, 7, 0};
	unsigned char buf[16] = {0};
	const char *pw = getenv("VNC_PASSWORD");
	char key[9];
	FILE *f;

	if (!pw)
		return -1;
	memcpy(buf, pw, strnlen(pw, 8));
	memcpy(key, fixed_key, sizeof(key));
	rfbClientEncryptBytes(buf, key);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, 8, f) != 8) {
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f);
}

static int jpeg_to_png(const char *in, const char *out)
{
	struct jpeg_decompress_struct jd;
	struct jpeg_error_mgr jerr;
	FILE *f = fopen(in, "rb"), *o;
	png_structp png;
	png_infop info;
	JSAMPROW row;

	if (!f)
		return -1;
	jd.err = jpeg_std_error(&jerr);
	jpeg_create_decompress(&jd);
	jpeg_stdio_src(&jd, f);
	jpeg_read_header(&jd, TRUE);
	jd.out_color_space = JCS_RGB;
	jpeg_start_decompress(&jd);
	row = malloc((size_t)jd.output_width * 3);
	o = fopen(out, "wb");
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	info = png ? png_create_info_struct(png) : NULL;
	if (!row || !o || !info || setjmp(png_jmpbuf(png)))
		return -1;
	png_init_io(png, o);
	png_set_IHDR(png, info, jd.output_width, jd.output_height, 8, PNG_COLOR_TYPE_RGB,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	while (jd.output_scanline < jd.output_height) {
		jpeg_read_scanlines(&jd, &row, 1);
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	jpeg_finish_decompress(&jd);
	jpeg_destroy_decompress(&jd);
	free(row);
	fclose(f);
	return fclose(o) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct relay relay = {.r_listen = -1, .r_server = -1};
	const char *encodings = NULL, *password_env = "VNC_PASSWORD";
	rfbClient *cl;
	int i, status = 0;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "--write-vncpasswd"))
		return write_vncpasswd(argv[2]) == 0 ? 0 : 1;
	if (argc == 4 && !strcmp(argv[1], "--jpeg-to-png"))
		return jpeg_to_png(argv[2], argv[3]) == 0 ? 0 : 1;
	for (i = 1; i < argc && !strncmp(argv[i], "--", 2); i += 2) {
		if (i + 1 >= argc)
			goto usage;
		if (!strcmp(argv[i], "--password-env"))
			password_env = argv[i + 1];
		else if (!strcmp(argv[i], "--timeout"))
			timeout_s = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--encodings"))
			encodings = argv[i + 1];
		else if (!strcmp(argv[i], "--ignore")) {
			if (sscanf(argv[i + 1], "%d,%d,%d,%d", &ignore_x, &ignore_y, &ignore_w,
				   &ignore_h) != 4)
				goto usage;
		} else
			goto usage;
	}
	if (i >= argc)
		goto usage;
	password = getenv(password_env);
	if (relay_start(&relay, argv[i]) < 0)
		return 1;

	rfbClientLog = client_log;
	rfbClientErr = client_log;
	cl = rfbGetClient(8, 3, 4);
	cl->GetPassword = get_password;
	cl->GotFrameBufferUpdate = got_update;
	cl->FinishedFrameBufferUpdate = finished_update;
	cl->canHandleNewFBSize = FALSE;
	cl->appData.shareDesktop = TRUE;
	if (encodings)
		cl->appData.encodingsString = encodings;
	cl->serverHost = strdup(relay.r_path);
	cl->serverPort = 0;
	if (!rfbInitClient(cl, NULL, NULL)) { /* frees cl */
		printf("auth=%s\n", auth_failed ? "refused" : "error");
		unlink(relay.r_path);
		return auth_failed ? EXIT_AUTH : 1;
	}
	unlink(relay.r_path);
	printf("connected width=%d height=%d\n", cl->width, cl->height);
	/* The first updates: until the whole screen came (an update may carry only the
	 * cursor shape). */
	for (double deadline = now_s() + timeout_s;
	     pixels_received < (unsigned long long)cl->width * (unsigned long long)cl->height;) {
		if (now_s() >= deadline || wait_update(cl, false, deadline - now_s()) < 0) {
			fprintf(stderr, "vnc_client: the first full screen never came\n");
			status = 1;
			goto out;
		}
	}
	for (i++; i < argc && status == 0; i++) {
		const char *a = argv[i], *arg = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--wait-update") || !strcmp(a, "--wait-change")) {
			if (wait_update(cl, a[7] == 'c', timeout_s) < 0) {
				fprintf(stderr, "vnc_client: %s timed out\n", a);
				status = 1;
			}
			continue;
		}
		if (!arg) {
			fprintf(stderr, "vnc_client: %s needs an argument\n", a);
			status = 2;
			break;
		}
		i++;
		if (!strcmp(a, "--type")) {
			if (type_text(cl, arg) < 0)
				status = 2;
		} else if (!strcmp(a, "--key")) {
			send_key(cl, (uint32_t)strtoul(arg, NULL, 0));
		} else if (!strcmp(a, "--scancode")) {
			int r = send_scancode(cl, arg);

			if (r == -1)
				fprintf(stderr, "vnc_client: the server takes no QEMU extended key "
						"events\n");
			if (r < 0)
				status = r == -1 ? 1 : 2;
		} else if (!strcmp(a, "--pointer")) {
			int x, y, mask;

			if (sscanf(arg, "%d,%d,%d", &x, &y, &mask) != 3)
				status = 2;
			else
				SendPointerEvent(cl, x, y, mask);
		} else if (!strcmp(a, "--idle")) {
			unsigned long long b0 = atomic_load(&relay.r_bytes);
			unsigned u0 = updates;
			double end = now_s() + atof(arg);

			while (now_s() < end) {
				int n = WaitForMessage(cl, 100000);

				if (n < 0 || (n > 0 && !HandleRFBServerMessage(cl))) {
					status = 1;
					break;
				}
			}
			printf("idle_bytes=%llu\nidle_updates=%u\n",
			       atomic_load(&relay.r_bytes) - b0, updates - u0);
		} else if (!strcmp(a, "--latency")) {
			if (measure_latency(cl, &relay, atoi(arg)) < 0)
				status = 1;
		} else if (!strcmp(a, "--save")) {
			if (save_png(cl, arg) < 0) {
				fprintf(stderr, "vnc_client: cannot write %s\n", arg);
				status = 1;
			}
		} else if (!strcmp(a, "--sleep")) {
			/* Handling what the server sends meanwhile: the screen stays current. */
			for (double end = now_s() + atof(arg); now_s() < end;) {
				int n = WaitForMessage(cl, 50000);

				if (n < 0 || (n > 0 && !HandleRFBServerMessage(cl))) {
					status = 1;
					break;
				}
			}
		} else {
			fprintf(stderr, "vnc_client: unknown action %s\n", a);
			status = 2;
		}
	}
out:
	/* Leave the way viewers do: the server reads every message sent before our end of
	 * the stream, then closes; only then are we gone. */
	atomic_store(&relay.r_closing, true);
	shutdown(cl->sock, SHUT_WR);
	for (double end = now_s() + 5; pthread_tryjoin_np(relay.r_thread, NULL) != 0;) {
		if (now_s() > end) {
			fprintf(stderr, "vnc_client: the server did not close\n");
			break;
		}
		usleep(10000);
	}
	printf("bytes=%llu updates=%u\n", atomic_load(&relay.r_bytes), updates);
	rfbClientCleanup(cl);
	return status;

usage:
	fputs(usage_text, stderr);
	return 2;
}

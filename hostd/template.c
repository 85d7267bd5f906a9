/* Template checks: what vdi-hv's loader (hv/loader.c) and QEMU's x86 loader accept
 * as a kernel, what the engines' overlays take as a base disk, read from the files
 * before any desktop uses them, so a wrong template is refused with its file named
 * instead of failing at every start. Where the files may be is desktop.c's rule. */
#include "hostd/template.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/json.h"

/* vdi-hv's loader: the lowest guest address a segment may load at. */
#define KERNEL_LOAD_MIN 0x100000ULL
/* The ELF note carrying the 32-bit PVH entry point (Xen's numbering). */
#define PVH_NOTE_TYPE 18
/* Linux boot protocol: the setup header's fields (Documentation/arch/x86/boot.rst). */
#define BZ_SETUP_SECTS	0x1F1
#define BZ_HEADER	0x202
#define BZ_VERSION	0x206
#define BZ_LOADFLAGS	0x211
#define BZ_XLOADFLAGS	0x236
#define BZ_HEADER_END	0x26C /* the end of the setup header vdi-hv reads */
#define BZ_LOADED_HIGH	0x01
#define BZ_XLF_KERNEL64 0x01
/* Multiboot 1: its magic in the first 8 KiB, 4-byte aligned. */
#define MULTIBOOT_MAGIC	 0x1BADB002u
#define MULTIBOOT_SEARCH 8192
/* vdi-hv's overlay disks hold a base of at most this size. */
#define DISK_MAX_BYTES (16ULL << 40)
/* Kernels larger than this are not mapped (no desktop kernel comes close). */
#define KERNEL_MAX_BYTES (512ULL << 20)

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16;
}

static const char *bzimage_format(const unsigned char *data, size_t len, enum desktop_engine e,
				  char *why, size_t whylen)
{
	uint16_t version = le16(data + BZ_VERSION);
	unsigned setup_sects = data[BZ_SETUP_SECTS] ? data[BZ_SETUP_SECTS] : 4;

	if (e == DESKTOP_ENGINE_QEMU) {
		if (version < 0x200) {
			snprintf(why, whylen,
				 "is a bzImage of boot protocol %x.%02x, older than 2.00",
				 version >> 8, version & 0xFF);
			return NULL;
		}
		return "bzImage";
	}
	if (len < BZ_HEADER_END) {
		snprintf(why, whylen, "is a truncated bzImage (%zu bytes)", len);
		return NULL;
	}
	if (version < 0x206) {
		snprintf(why, whylen,
			 "is a bzImage of boot protocol %x.%02x, older than 2.06 (vdi-hv needs "
			 "2.06 or newer)",
			 version >> 8, version & 0xFF);
		return NULL;
	}
	if (!(data[BZ_LOADFLAGS] & BZ_LOADED_HIGH)) {
		snprintf(why, whylen, "is a zImage that loads low, not a bzImage");
		return NULL;
	}
	if (version < 0x20C || !(le16(data + BZ_XLOADFLAGS) & BZ_XLF_KERNEL64)) {
		snprintf(why, whylen,
			 "is a bzImage without a 64-bit entry point (vdi-hv needs one)");
		return NULL;
	}
	if ((setup_sects + 1ULL) * 512 >= len) {
		snprintf(why, whylen, "is a truncated bzImage (its setup exceeds the file)");
		return NULL;
	}
	return "bzImage";
}

static bool has_multiboot(const unsigned char *data, size_t len)
{
	for (size_t off = 0; off + 12 <= len && off < MULTIBOOT_SEARCH; off += 4)
		if (le32(data + off) == MULTIBOOT_MAGIC &&
		    (uint32_t)(le32(data + off) + le32(data + off + 4) + le32(data + off + 8)) == 0)
			return true;
	return false;
}

/* Whether a PT_NOTE segment of the ELF64 file holds the PVH entry note. The
 * program headers are known to lie inside the file. */
static bool has_pvh_note(const unsigned char *data, size_t len, const Elf64_Ehdr *eh)
{
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		uint64_t off, end;

		memcpy(&ph, data + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_NOTE)
			continue;
		if (__builtin_add_overflow(ph.p_offset, ph.p_filesz, &end) || end > len)
			continue;
		for (off = ph.p_offset; off + sizeof(Elf64_Nhdr) <= end;) {
			Elf64_Nhdr nh;
			uint64_t name, desc, next;

			memcpy(&nh, data + off, sizeof(nh));
			name = off + sizeof(nh);
			desc = name + ((nh.n_namesz + 3ULL) & ~3ULL);
			next = desc + ((nh.n_descsz + 3ULL) & ~3ULL);
			if (next > end || next <= off)
				break;
			if (nh.n_type == PVH_NOTE_TYPE && nh.n_namesz == 4 &&
			    !memcmp(data + name, "Xen", 4) && nh.n_descsz >= 4)
				return true;
			off = next;
		}
	}
	return false;
}

static const char *elf_format(const unsigned char *data, size_t len, enum desktop_engine e,
			      long long memory_mib, char *why, size_t whylen)
{
	uint64_t phend, ram = (uint64_t)memory_mib << 20, loaded = 0;
	Elf64_Ehdr eh;
	bool pvh;

	if (len < sizeof(eh)) {
		snprintf(why, whylen, "is a truncated ELF file (%zu bytes)", len);
		return NULL;
	}
	if (data[EI_CLASS] != ELFCLASS64) {
		snprintf(why, whylen, "is a 32-bit ELF file, not an ELF64 kernel");
		return NULL;
	}
	memcpy(&eh, data, sizeof(eh));
	if (eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64) {
		snprintf(why, whylen, "is not a little-endian x86-64 ELF executable");
		return NULL;
	}
	if (__builtin_add_overflow(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), &phend) ||
	    phend > len) {
		snprintf(why, whylen, "is a damaged ELF file (program headers outside the file)");
		return NULL;
	}
	pvh = has_pvh_note(data, len, &eh);
	if (e == DESKTOP_ENGINE_QEMU) {
		if (!pvh) {
			snprintf(why, whylen,
				 "is an ELF kernel without a PVH entry note (QEMU loads such ELF "
				 "kernels only with one; use a bzImage)");
			return NULL;
		}
		return "ELF64 (PVH entry)";
	}
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		uint64_t file_end, mem_end;
		Elf64_Phdr ph;

		memcpy(&ph, data + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD)
			continue;
		if (ph.p_filesz > ph.p_memsz ||
		    __builtin_add_overflow(ph.p_offset, ph.p_filesz, &file_end) || file_end > len) {
			snprintf(why, whylen, "is a damaged ELF file (segment %u outside the file)",
				 i);
			return NULL;
		}
		if (ph.p_paddr < KERNEL_LOAD_MIN ||
		    __builtin_add_overflow(ph.p_paddr, ph.p_memsz, &mem_end) || mem_end > ram) {
			snprintf(why, whylen,
				 "has segment %u at %#llx (%llu bytes), outside the guest's RAM "
				 "from 1 MiB to %lld MiB",
				 i, (unsigned long long)ph.p_paddr, (unsigned long long)ph.p_memsz,
				 memory_mib);
			return NULL;
		}
		loaded++;
	}
	if (!loaded) {
		snprintf(why, whylen, "is an ELF file without a loadable segment");
		return NULL;
	}
	return pvh ? "ELF64 (PVH entry)" : "ELF64 (64-bit entry)";
}

const char *template_kernel_format(const unsigned char *data, size_t len, enum desktop_engine e,
				   long long memory_mib, char *why, size_t whylen)
{
	const char *engine = desktop_engine_name(e);

	if (len >= SELFMAG && !memcmp(data, ELFMAG, SELFMAG)) {
		if (e == DESKTOP_ENGINE_QEMU && len > EI_CLASS && data[EI_CLASS] != ELFCLASS64 &&
		    has_multiboot(data, len))
			return "multiboot";
		return elf_format(data, len, e, memory_mib, why, whylen);
	}
	if (len >= BZ_VERSION + 2 && !memcmp(data + BZ_HEADER, "HdrS", 4))
		return bzimage_format(data, len, e, why, whylen);
	if (e == DESKTOP_ENGINE_QEMU && has_multiboot(data, len))
		return "multiboot";
	snprintf(why, whylen,
		 "is not a kernel %s can load (neither a bzImage, with \"HdrS\" at 0x202, nor "
		 "an ELF64 executable)",
		 engine);
	return NULL;
}

const char *template_disk_format(const unsigned char *head, size_t n, unsigned long long size,
				 enum desktop_engine e, char *why, size_t whylen)
{
	if (size == 0) {
		snprintf(why, whylen, "is empty (a base disk image holds the desktop's disk)");
		return NULL;
	}
	if (n >= 4 && !memcmp(head, "QFI\xfb", 4)) {
		snprintf(why, whylen,
			 "is a qcow2 image; the base must be a raw image (qemu-img convert -O "
			 "raw)");
		return NULL;
	}
	if (n >= 8 && !memcmp(head, "VDIOVRL1", 8)) {
		snprintf(why, whylen, "is a vdi-hv overlay, not a raw base image");
		return NULL;
	}
	if (e == DESKTOP_ENGINE_VDIHV && size > DISK_MAX_BYTES) {
		snprintf(why, whylen, "is larger than vdi-hv's 16 TiB");
		return NULL;
	}
	if (size % 512) {
		snprintf(why, whylen, "is %llu bytes, not a whole number of 512-byte sectors",
			 size);
		return NULL;
	}
	return "raw";
}

/* Opens a resolved template file for reading. Returns the fd, or -1 with why set. */
static int open_file(const char *path, struct stat *st, char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		snprintf(why, whylen, "cannot be read: %s", strerror(errno));
		return -1;
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		snprintf(why, whylen, "is not a regular file");
		close(fd);
		return -1;
	}
	return fd;
}

static const char *check_kernel(int fd, const struct stat *st, enum desktop_engine e,
				long long memory_mib, char *why, size_t whylen)
{
	const char *format;
	void *map;

	if (st->st_size == 0) {
		snprintf(why, whylen, "is empty, not a kernel");
		return NULL;
	}
	if ((unsigned long long)st->st_size > KERNEL_MAX_BYTES) {
		snprintf(why, whylen, "is larger than 512 MiB, not a kernel");
		return NULL;
	}
	map = mmap(NULL, (size_t)st->st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		snprintf(why, whylen, "cannot be read: %s", strerror(errno));
		return NULL;
	}
	format = template_kernel_format(map, (size_t)st->st_size, e, memory_mib, why, whylen);
	munmap(map, (size_t)st->st_size);
	return format;
}

static const char *check_disk(int fd, const struct stat *st, enum desktop_engine e, char *why,
			      size_t whylen)
{
	unsigned char head[512];
	ssize_t n = pread(fd, head, sizeof(head), 0);

	if (n < 0) {
		snprintf(why, whylen, "cannot be read: %s", strerror(errno));
		return NULL;
	}
	return template_disk_format(head, (size_t)n, (unsigned long long)st->st_size, e, why,
				    whylen);
}

static const char *check_initrd(int fd, char *why, size_t whylen)
{
	unsigned char byte;

	if (pread(fd, &byte, 1, 0) < 0) {
		snprintf(why, whylen, "cannot be read: %s", strerror(errno));
		return NULL;
	}
	return "data";
}

/* The template's file fields, in the order they are reported. */
static const char *const file_fields[] = {"kernel", "initrd", "disk"};

/* Checks the file path (resolved already) for field. Returns its format or NULL with
 * why set; *size gets its size. */
static const char *check_file(const char *field, const char *path, enum desktop_engine e,
			      long long memory_mib, long long *size, char *why, size_t whylen)
{
	const char *format = NULL;
	struct stat st;
	int fd = open_file(path, &st, why, whylen);

	if (fd < 0)
		return NULL;
	*size = (long long)st.st_size;
	if (!strcmp(field, "kernel"))
		format = check_kernel(fd, &st, e, memory_mib, why, whylen);
	else if (!strcmp(field, "disk"))
		format = check_disk(fd, &st, e, why, whylen);
	else
		format = check_initrd(fd, why, whylen);
	close(fd);
	return format;
}

static void add_problem(json_t *problems, const char *field, const char *file, const char *why,
			char *err, size_t errlen)
{
	if (!json_array_size(problems))
		snprintf(err, errlen, "%s '%.200s' %s", field, file, why);
	json_array_append_new(
	    problems, json_pack("{s:s, s:s, s:s}", "field", field, "file", file, "error", why));
}

static json_t *dirs_json(const struct conf *c)
{
	json_t *dirs = json_array();

	for (size_t i = 0; dirs && c->template_dir_list[i]; i++)
		json_array_append_new(dirs, json_string(c->template_dir_list[i]));
	return dirs;
}

int template_check(const struct conf *c, const json_t *body, json_t **report, char *err,
		   size_t errlen)
{
	long long memory = json_get_int(body, "memory_mib", 512);
	json_t *files = json_object(), *problems = json_array(), *out;
	int e = desktop_check_request(c, body, err, errlen);

	if (report)
		*report = NULL;
	if (e < 0) {
		json_decref(files);
		json_decref(problems);
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(file_fields) / sizeof(file_fields[0]); i++) {
		const char *field = file_fields[i], *name = json_get_string(body, field);
		const char *why = NULL, *format;
		char reason[300];
		long long size = 0;
		char *path;

		if (!name)
			continue;
		path = desktop_find_template(c, name, &why);
		if (!path) {
			add_problem(problems, field, name, why, err, errlen);
			continue;
		}
		format = check_file(field, path, (enum desktop_engine)e, memory, &size, reason,
				    sizeof(reason));
		if (!format)
			add_problem(problems, field, name, reason, err, errlen);
		else
			json_object_set_new(files, field,
					    json_pack("{s:s, s:s, s:I, s:s}", "file", name, "path",
						      path, "size", (json_int_t)size, "format",
						      format));
		free(path);
	}
	out = json_pack("{s:s, s:o, s:o, s:o}", "engine",
			desktop_engine_name((enum desktop_engine)e), "template_dirs", dirs_json(c),
			"files", files, "problems", json_incref(problems));
	e = json_array_size(problems) ? -ENOEXEC : 0;
	json_decref(problems);
	if (report)
		*report = out;
	else
		json_decref(out);
	if (!out && !e) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return e;
}

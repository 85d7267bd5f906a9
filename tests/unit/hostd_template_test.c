/* Unit tests for hostd's template checks: kernels by format and engine (bzImage
 * headers, ELF64 with and without a PVH note, segments outside RAM, random bytes,
 * multiboot for QEMU), base disks (raw, qcow2, overlays, empty, odd sizes), and
 * template_check() on real files: every problem listed with its file, settings
 * refused as bad requests. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hostd/conf.h"
#include "hostd/template.h"
#include "lib/log.h"

#define QEMU  DESKTOP_ENGINE_QEMU
#define VDIHV DESKTOP_ENGINE_VDIHV

static char top[] = "/tmp/hostd-template-test-XXXXXX";
static char tpl[200];
static struct conf conf;
static char why[300];

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

/* A bzImage header of boot protocol version with the given flags in a file of len. */
static unsigned char *bzimage(size_t len, uint16_t version, uint8_t loadflags, uint16_t xload)
{
	unsigned char *k = calloc(1, len);

	assert_non_null(k);
	k[0x1F1] = 4; /* setup sectors */
	memcpy(k + 0x202, "HdrS", 4);
	put16(k + 0x206, version);
	k[0x211] = loadflags;
	put16(k + 0x236, xload);
	return k;
}

/* An ELF64 x86-64 executable with one PT_LOAD segment at paddr (memsz bytes) and, with
 * pvh, a PT_NOTE holding the PVH entry note. *len gets its size. */
static unsigned char *elf64(uint64_t paddr, uint64_t memsz, bool pvh, size_t *len)
{
	size_t n = 4096;
	unsigned char *k = calloc(1, n);
	Elf64_Ehdr eh = {0};
	Elf64_Phdr ph[2] = {0};
	Elf64_Nhdr nh = {.n_namesz = 4, .n_descsz = 4, .n_type = 18};
	uint32_t entry = 0x100000;

	assert_non_null(k);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = pvh ? 2 : 1;
	eh.e_entry = paddr;
	ph[0] = (Elf64_Phdr){.p_type = PT_LOAD,
			     .p_offset = 1024,
			     .p_paddr = paddr,
			     .p_filesz = 512,
			     .p_memsz = memsz};
	ph[1] = (Elf64_Phdr){.p_type = PT_NOTE, .p_offset = 2048, .p_filesz = 24};
	memcpy(k, &eh, sizeof(eh));
	memcpy(k + sizeof(eh), ph, sizeof(ph));
	memcpy(k + 2048, &nh, sizeof(nh));
	memcpy(k + 2048 + sizeof(nh), "Xen", 4);
	memcpy(k + 2048 + sizeof(nh) + 4, &entry, 4);
	*len = n;
	return k;
}

static void test_bzimage(void **state)
{
	unsigned char *k = bzimage(8192, 0x20F, 0x01, 0x01);

	(void)state;
	assert_string_equal(template_kernel_format(k, 8192, VDIHV, 512, why, sizeof(why)),
			    "bzImage");
	assert_string_equal(template_kernel_format(k, 8192, QEMU, 512, why, sizeof(why)),
			    "bzImage");
	/* no 64-bit entry: QEMU boots it, vdi-hv cannot */
	put16(k + 0x236, 0);
	assert_null(template_kernel_format(k, 8192, VDIHV, 512, why, sizeof(why)));
	assert_non_null(strstr(why, "64-bit entry"));
	assert_non_null(template_kernel_format(k, 8192, QEMU, 512, why, sizeof(why)));
	free(k);
	/* too old a protocol for vdi-hv */
	k = bzimage(8192, 0x204, 0x01, 0x01);
	assert_null(template_kernel_format(k, 8192, VDIHV, 512, why, sizeof(why)));
	assert_non_null(strstr(why, "older than 2.06"));
	free(k);
	/* a zImage */
	k = bzimage(8192, 0x20F, 0x00, 0x01);
	assert_null(template_kernel_format(k, 8192, VDIHV, 512, why, sizeof(why)));
	assert_non_null(strstr(why, "zImage"));
	free(k);
	/* the setup runs past the end of the file */
	k = bzimage(0x280, 0x20F, 0x01, 0x01);
	assert_null(template_kernel_format(k, 0x280, VDIHV, 512, why, sizeof(why)));
	assert_non_null(strstr(why, "truncated"));
	free(k);
}

static void test_elf(void **state)
{
	size_t n;
	unsigned char *k = elf64(0x100000, 4096, true, &n);

	(void)state;
	assert_string_equal(template_kernel_format(k, n, VDIHV, 512, why, sizeof(why)),
			    "ELF64 (PVH entry)");
	assert_string_equal(template_kernel_format(k, n, QEMU, 512, why, sizeof(why)),
			    "ELF64 (PVH entry)");
	free(k);
	/* without the note: vdi-hv enters at e_entry in 64-bit mode; QEMU refuses it */
	k = elf64(0x100000, 4096, false, &n);
	assert_string_equal(template_kernel_format(k, n, VDIHV, 512, why, sizeof(why)),
			    "ELF64 (64-bit entry)");
	assert_null(template_kernel_format(k, n, QEMU, 512, why, sizeof(why)));
	assert_non_null(strstr(why, "PVH"));
	free(k);
	/* a segment below 1 MiB, or beyond the guest's memory */
	k = elf64(0x1000, 4096, true, &n);
	assert_null(template_kernel_format(k, n, VDIHV, 512, why, sizeof(why)));
	assert_non_null(strstr(why, "outside the guest's RAM"));
	free(k);
	k = elf64(0x100000, 600ULL << 20, true, &n);
	assert_null(template_kernel_format(k, n, VDIHV, 512, why, sizeof(why)));
	assert_non_null(template_kernel_format(k, n, VDIHV, 1024, why, sizeof(why)));
	/* cut short: the program headers are outside the file */
	assert_null(template_kernel_format(k, 80, VDIHV, 1024, why, sizeof(why)));
	/* a 32-bit ELF */
	k[EI_CLASS] = ELFCLASS32;
	assert_null(template_kernel_format(k, n, VDIHV, 1024, why, sizeof(why)));
	assert_non_null(strstr(why, "32-bit"));
	free(k);
}

static void test_not_a_kernel(void **state)
{
	unsigned char junk[4096];
	uint32_t mb[3] = {0x1BADB002u, 0, 0};

	(void)state;
	srand(7);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)rand();
	memset(junk + 0x202, 'x', 4); /* no HdrS by chance */
	junk[0] = 0;		      /* no ELF magic by chance */
	assert_null(template_kernel_format(junk, sizeof(junk), VDIHV, 512, why, sizeof(why)));
	assert_non_null(strstr(why, "is not a kernel vdi-hv can load"));
	assert_null(template_kernel_format(junk, sizeof(junk), QEMU, 512, why, sizeof(why)));
	assert_null(template_kernel_format(junk, 3, QEMU, 512, why, sizeof(why)));
	/* QEMU boots a multiboot kernel, vdi-hv does not */
	mb[2] = (uint32_t)(0u - mb[0] - mb[1]);
	memcpy(junk + 64, mb, sizeof(mb));
	assert_string_equal(template_kernel_format(junk, sizeof(junk), QEMU, 512, why, sizeof(why)),
			    "multiboot");
	assert_null(template_kernel_format(junk, sizeof(junk), VDIHV, 512, why, sizeof(why)));
}

static void test_disks(void **state)
{
	unsigned char head[512] = {0};

	(void)state;
	assert_string_equal(template_disk_format(head, 512, 1 << 20, VDIHV, why, sizeof(why)),
			    "raw");
	assert_string_equal(template_disk_format(head, 512, 1 << 20, QEMU, why, sizeof(why)),
			    "raw");
	assert_null(template_disk_format(head, 0, 0, QEMU, why, sizeof(why)));
	assert_non_null(strstr(why, "empty"));
	assert_null(template_disk_format(head, 512, 1000, VDIHV, why, sizeof(why)));
	assert_non_null(strstr(why, "512-byte sectors"));
	assert_null(template_disk_format(head, 512, 17ULL << 40, VDIHV, why, sizeof(why)));
	memcpy(head, "QFI\xfb", 4);
	assert_null(template_disk_format(head, 512, 1 << 20, QEMU, why, sizeof(why)));
	assert_non_null(strstr(why, "qcow2"));
	memcpy(head, "VDIOVRL1", 8);
	assert_null(template_disk_format(head, 512, 1 << 20, VDIHV, why, sizeof(why)));
	assert_non_null(strstr(why, "overlay"));
}

static void write_bytes(const char *name, const void *data, size_t len)
{
	char path[300];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tpl, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static json_t *problem(const json_t *report, size_t i)
{
	return json_array_get(json_object_get(report, "problems"), i);
}

static void test_check(void **state)
{
	static const unsigned char zeros[65536];
	unsigned char *k = bzimage(8192, 0x20F, 0x01, 0x01);
	json_t *body, *report = NULL;
	char err[512];

	(void)state;
	write_bytes("vmlinuz", k, 8192);
	write_bytes("base.img", zeros, sizeof(zeros));
	write_bytes("junk", "not a kernel at all", 19);
	free(k);

	body = json_pack("{s:s, s:s, s:s}", "engine", "vdi-hv", "kernel", "vmlinuz", "disk",
			 "base.img");
	assert_int_equal(template_check(&conf, body, &report, err, sizeof(err)), 0);
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(json_object_get(report, "files"), "kernel"), "format")),
	    "bzImage");
	assert_int_equal(json_array_size(json_object_get(report, "problems")), 0);
	json_decref(report);
	json_decref(body);

	/* every wrong file listed, the first in err */
	body = json_pack("{s:s, s:s, s:s, s:s}", "engine", "vdi-hv", "kernel", "junk", "initrd",
			 "../../../etc/passwd", "disk", "missing.img");
	assert_int_equal(template_check(&conf, body, &report, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "kernel 'junk' is not a kernel vdi-hv can load"));
	assert_string_equal(json_string_value(json_object_get(problem(report, 0), "file")), "junk");
	assert_string_equal(json_string_value(json_object_get(problem(report, 1), "field")),
			    "initrd");
	assert_non_null(strstr(json_string_value(json_object_get(problem(report, 1), "error")),
			       "outside the template directories"));
	assert_string_equal(json_string_value(json_object_get(problem(report, 2), "error")),
			    "not found in the template directories");
	json_decref(report);
	json_decref(body);

	/* settings beyond this host's limits are a bad request */
	body = json_pack("{s:s, s:s, s:i}", "kernel", "vmlinuz", "disk", "base.img", "vcpus", 1000);
	assert_int_equal(template_check(&conf, body, &report, err, sizeof(err)), -EINVAL);
	assert_null(report);
	assert_non_null(strstr(err, "vcpus"));
	json_decref(body);
}

static int setup(void **state)
{
	char text[600], err[512];

	(void)state;
	log_set_fd(open("/dev/null", O_WRONLY));
	if (!mkdtemp(top))
		return -1;
	snprintf(tpl, sizeof(tpl), "%s/templates", top);
	mkdir(tpl, 0700);
	snprintf(text, sizeof(text),
		 "[hostd]\nhost_id = h1\nstate_dir = %s/state\nrun_dir = %s/run\n"
		 "template_dirs = %s\n",
		 top, top, tpl);
	return conf_load_string("test.conf", text, &conf, err, sizeof(err)) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	conf_free(&conf);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bzimage),	 cmocka_unit_test(test_elf),
	    cmocka_unit_test(test_not_a_kernel), cmocka_unit_test(test_disks),
	    cmocka_unit_test(test_check),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

/* Kernel loader. Guest memory layout it uses (all in low RAM):
 *   0x00500  GDT and 0x9000-0xEFFF page tables (written by vm_set_entry for long mode)
 *   0x06000  PVH hvm_start_info, module list at 0x06040, memory map at 0x06100
 *   0x07000  boot_params ("zero page")
 *   0x20000  kernel command line
 *   0x9FC00  start of the reserved area below 1 MiB (EBDA, BIOS; the MP table at 0xF0000)
 *   0x100000 the kernel; the initrd goes as high in low RAM as the kernel allows.
 * Every size and offset read from the kernel file is checked against the file and RAM. */
#include "hv/loader.h"

#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/screen_info.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define START_INFO_GPA 0x6000ULL
#define MODLIST_GPA    0x6040ULL
#define MEMMAP_GPA     0x6100ULL
#define ZERO_PAGE_GPA  0x7000ULL
#define CMDLINE_GPA    0x20000ULL
#define CMDLINE_MAX    0x10000ULL
#define EBDA_START     0x9FC00ULL
#define KERNEL_GPA     0x100000ULL

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC		 0x336ec578
#define E820_RAM		 1
#define E820_RESERVED		 2

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};
struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};
struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

struct file_map {
	const uint8_t *fm_data;
	size_t fm_size;
};

struct e820_range {
	uint64_t addr, size;
	uint32_t type;
};

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

static int map_file(const char *path, struct file_map *fm, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		close(fd);
		return fail(err, errlen, -EINVAL, "%s: not a regular, non-empty file", path);
	}
	fm->fm_size = (size_t)st.st_size;
	fm->fm_data = mmap(NULL, fm->fm_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (fm->fm_data == MAP_FAILED)
		return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
	return 0;
}

static void unmap_file(struct file_map *fm)
{
	if (fm->fm_data)
		munmap((void *)fm->fm_data, fm->fm_size);
}

/* The memory map every boot path reports. Returns the number of ranges. */
static size_t memory_map(struct vm *vm, struct e820_range *map)
{
	uint64_t ram = vm_ram_size(vm);
	uint64_t low = ram < VM_LOW_RAM_END ? ram : VM_LOW_RAM_END;
	size_t n = 0;

	map[n++] = (struct e820_range){0, EBDA_START, E820_RAM};
	map[n++] = (struct e820_range){EBDA_START, KERNEL_GPA - EBDA_START, E820_RESERVED};
	map[n++] = (struct e820_range){KERNEL_GPA, low - KERNEL_GPA, E820_RAM};
	if (ram > low)
		map[n++] = (struct e820_range){VM_HIGH_RAM_START, ram - low, E820_RAM};
	return n;
}

static int copy_to_guest(struct vm *vm, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = vm_guest_ptr(vm, gpa, len);

	if (!dst)
		return -ERANGE;
	memcpy(dst, src, len);
	return 0;
}

static int put_cmdline(struct vm *vm, const char *cmdline, uint64_t max, char *err, size_t errlen)
{
	size_t len = cmdline ? strlen(cmdline) : 0;

	if (len + 1 > max)
		return fail(err, errlen, -E2BIG, "command line too long (%zu bytes, limit %llu)",
			    len, (unsigned long long)(max - 1));
	return copy_to_guest(vm, CMDLINE_GPA, cmdline ? cmdline : "", len + 1);
}

/* Loads the initrd as high as possible below limit; returns its address in *gpa. */
static int put_initrd(struct vm *vm, const char *path, uint64_t limit, uint64_t kernel_end,
		      uint64_t *gpa, uint64_t *size, char *err, size_t errlen)
{
	struct file_map fm = {0};
	uint64_t ram = vm_ram_size(vm);
	uint64_t top = ram < VM_LOW_RAM_END ? ram : VM_LOW_RAM_END;
	uint64_t addr;
	int r;

	*gpa = *size = 0;
	if (!path)
		return 0;
	r = map_file(path, &fm, err, errlen);
	if (r < 0)
		return r;
	if (limit && limit + 1 < top)
		top = limit + 1;
	if (fm.fm_size > top || ((top - fm.fm_size) & ~0xFFFULL) < kernel_end) {
		unmap_file(&fm);
		return fail(err, errlen, -E2BIG, "%s: initrd (%zu bytes) does not fit in guest RAM",
			    path, fm.fm_size);
	}
	addr = (top - fm.fm_size) & ~0xFFFULL;
	r = copy_to_guest(vm, addr, fm.fm_data, fm.fm_size);
	*gpa = addr;
	*size = fm.fm_size;
	unmap_file(&fm);
	return r;
}

static void fill_screen_info(struct screen_info *si, const struct boot_display *d)
{
	memset(si, 0, sizeof(*si));
	if (!d)
		return;
	si->orig_video_isVGA = VIDEO_TYPE_VLFB;
	si->lfb_width = (uint16_t)d->bd_width;
	si->lfb_height = (uint16_t)d->bd_height;
	si->lfb_depth = 32;
	si->lfb_base = (uint32_t)d->bd_base;
	si->ext_lfb_base = (uint32_t)(d->bd_base >> 32);
	if (d->bd_base >> 32)
		si->capabilities |= VIDEO_CAPABILITY_64BIT_BASE;
	si->lfb_size = (uint32_t)((d->bd_size + 0xFFFF) >> 16); /* in 64 KiB units for VLFB */
	si->lfb_linelength = (uint16_t)d->bd_stride;
	si->red_size = 8;
	si->red_pos = 16;
	si->green_size = 8;
	si->green_pos = 8;
	si->blue_size = 8;
	si->blue_pos = 0;
	si->rsvd_size = 8;
	si->rsvd_pos = 24;
	si->pages = 1;
}

static void fill_e820(struct vm *vm, struct boot_params *bp)
{
	struct e820_range map[8];
	size_t n = memory_map(vm, map);

	for (size_t i = 0; i < n; i++)
		bp->e820_table[i] = (struct boot_e820_entry){map[i].addr, map[i].size, map[i].type};
	bp->e820_entries = (uint8_t)n;
}

static int load_bzimage(struct vm *vm, const struct boot_spec *spec, const struct file_map *fm,
			struct vm_entry *entry, char *err, size_t errlen)
{
	struct boot_params *bp = vm_guest_ptr(vm, ZERO_PAGE_GPA, sizeof(*bp));
	const struct setup_header *file_hdr;
	struct setup_header *hdr;
	uint64_t setup_size, kernel_size, initrd_gpa, initrd_size, cmdline_max = 256;
	size_t hdr_end;
	unsigned setup_sects;
	int r;

	if (fm->fm_size < 0x1F1 + sizeof(struct setup_header) || !bp)
		return fail(err, errlen, -EINVAL, "%s: truncated bzImage", spec->bs_kernel);
	file_hdr = (const struct setup_header *)(fm->fm_data + 0x1F1);
	if (file_hdr->version < 0x206)
		return fail(err, errlen, -EINVAL, "%s: boot protocol %x.%02x is older than 2.06",
			    spec->bs_kernel, file_hdr->version >> 8, file_hdr->version & 0xFF);
	if (!(file_hdr->loadflags & LOADED_HIGH))
		return fail(err, errlen, -EINVAL, "%s: not a bzImage (zImage loads low)",
			    spec->bs_kernel);
	if (!(file_hdr->xloadflags & XLF_KERNEL_64))
		return fail(err, errlen, -EINVAL, "%s: kernel has no 64-bit entry point",
			    spec->bs_kernel);
	setup_sects = file_hdr->setup_sects ? file_hdr->setup_sects : 4;
	setup_size = (setup_sects + 1ULL) * 512;
	if (setup_size >= fm->fm_size)
		return fail(err, errlen, -EINVAL, "%s: setup (%llu bytes) exceeds the file",
			    spec->bs_kernel, (unsigned long long)setup_size);
	kernel_size = fm->fm_size - setup_size;
	r = copy_to_guest(vm, KERNEL_GPA, fm->fm_data + setup_size, kernel_size);
	if (r < 0)
		return fail(err, errlen, r, "%s: kernel (%llu bytes) does not fit in guest RAM",
			    spec->bs_kernel, (unsigned long long)kernel_size);

	memset(bp, 0, sizeof(*bp));
	/* The header runs from 0x1F1 to 0x202 + the byte at 0x201 (its declared length). */
	hdr_end = 0x202 + fm->fm_data[0x201];
	if (hdr_end > fm->fm_size || hdr_end > 0x1F1 + sizeof(struct setup_header))
		hdr_end = 0x1F1 + sizeof(struct setup_header);
	memcpy(&bp->hdr, fm->fm_data + 0x1F1, hdr_end - 0x1F1);
	hdr = &bp->hdr;
	hdr->type_of_loader = 0xFF;
	hdr->loadflags |= CAN_USE_HEAP;
	hdr->heap_end_ptr = 0xFE00;
	hdr->vid_mode = 0xFFFF;
	hdr->code32_start = KERNEL_GPA;
	if (hdr->cmdline_size)
		cmdline_max = (uint64_t)hdr->cmdline_size + 1;
	if (cmdline_max > CMDLINE_MAX)
		cmdline_max = CMDLINE_MAX;
	r = put_cmdline(vm, spec->bs_cmdline, cmdline_max, err, errlen);
	if (r < 0)
		return r;
	hdr->cmd_line_ptr = (uint32_t)CMDLINE_GPA;
	r = put_initrd(vm, spec->bs_initrd, hdr->initrd_addr_max, KERNEL_GPA + kernel_size,
		       &initrd_gpa, &initrd_size, err, errlen);
	if (r < 0)
		return r;
	hdr->ramdisk_image = (uint32_t)initrd_gpa;
	hdr->ramdisk_size = (uint32_t)initrd_size;
	fill_screen_info(&bp->screen_info, spec->bs_display);
	fill_e820(vm, bp);

	entry->ve_mode = VM_ENTRY_LONG64;
	entry->ve_rip = KERNEL_GPA + 0x200; /* 64-bit entry: load address + 0x200 */
	entry->ve_boot_info = ZERO_PAGE_GPA;
	return 0;
}

/* Looks for the PVH entry note in the ELF's PT_NOTE segments. */
static bool find_pvh_entry(const struct file_map *fm, const Elf64_Ehdr *eh, uint64_t *entry)
{
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const void *)(fm->fm_data + eh->e_phoff + i * sizeof(*ph));
		uint64_t off, end;

		if (ph->p_type != PT_NOTE)
			continue;
		if (__builtin_add_overflow(ph->p_offset, ph->p_filesz, &end) || end > fm->fm_size)
			continue;
		for (off = ph->p_offset; off + sizeof(Elf64_Nhdr) <= end;) {
			const Elf64_Nhdr *nh = (const void *)(fm->fm_data + off);
			uint64_t name = off + sizeof(*nh);
			uint64_t desc = name + ((nh->n_namesz + 3ULL) & ~3ULL);
			uint64_t next = desc + ((nh->n_descsz + 3ULL) & ~3ULL);

			if (next > end || next <= off)
				break;
			if (nh->n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh->n_namesz == 4 &&
			    !memcmp(fm->fm_data + name, "Xen", 4) && nh->n_descsz >= 4) {
				uint32_t v;

				memcpy(&v, fm->fm_data + desc, 4);
				*entry = v;
				return true;
			}
			off = next;
		}
	}
	return false;
}

static int write_pvh_start_info(struct vm *vm, uint64_t initrd_gpa, uint64_t initrd_size)
{
	struct hvm_start_info si = {
	    .magic = HVM_START_MAGIC,
	    .version = 1,
	    .cmdline_paddr = CMDLINE_GPA,
	    .memmap_paddr = MEMMAP_GPA,
	};
	struct e820_range map[8];
	size_t n = memory_map(vm, map);
	int r = 0;

	if (initrd_size) {
		struct hvm_modlist_entry mod = {.paddr = initrd_gpa, .size = initrd_size};

		si.nr_modules = 1;
		si.modlist_paddr = MODLIST_GPA;
		r = copy_to_guest(vm, MODLIST_GPA, &mod, sizeof(mod));
	}
	for (size_t i = 0; i < n && !r; i++) {
		struct hvm_memmap_entry e = {map[i].addr, map[i].size, map[i].type, 0};

		r = copy_to_guest(vm, MEMMAP_GPA + i * sizeof(e), &e, sizeof(e));
	}
	si.memmap_entries = (uint32_t)n;
	return r ? r : copy_to_guest(vm, START_INFO_GPA, &si, sizeof(si));
}

static int load_elf(struct vm *vm, const struct boot_spec *spec, const struct file_map *fm,
		    struct vm_entry *entry, char *err, size_t errlen)
{
	const Elf64_Ehdr *eh = (const void *)fm->fm_data;
	uint64_t pvh_entry, kernel_end = 0, initrd_gpa, initrd_size, phend;
	int r;

	if (fm->fm_size < sizeof(*eh) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64 ||
	    eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum > 64)
		return fail(err, errlen, -EINVAL, "%s: not a little-endian x86-64 ELF executable",
			    spec->bs_kernel);
	if (__builtin_add_overflow(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr),
				   &phend) ||
	    phend > fm->fm_size)
		return fail(err, errlen, -EINVAL, "%s: program headers outside the file",
			    spec->bs_kernel);
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const void *)(fm->fm_data + eh->e_phoff + i * sizeof(*ph));
		uint64_t file_end;
		uint8_t *dst;

		if (ph->p_type != PT_LOAD)
			continue;
		if (ph->p_filesz > ph->p_memsz ||
		    __builtin_add_overflow(ph->p_offset, ph->p_filesz, &file_end) ||
		    file_end > fm->fm_size)
			return fail(err, errlen, -EINVAL, "%s: segment %u lies outside the file",
				    spec->bs_kernel, i);
		dst = vm_guest_ptr(vm, ph->p_paddr, ph->p_memsz);
		if (!dst || ph->p_paddr < KERNEL_GPA)
			return fail(err, errlen, -ERANGE,
				    "%s: segment %u (%#llx, %llu bytes) is outside usable RAM",
				    spec->bs_kernel, i, (unsigned long long)ph->p_paddr,
				    (unsigned long long)ph->p_memsz);
		memcpy(dst, fm->fm_data + ph->p_offset, ph->p_filesz);
		memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
		if (ph->p_paddr + ph->p_memsz > kernel_end)
			kernel_end = ph->p_paddr + ph->p_memsz;
	}
	if (!kernel_end)
		return fail(err, errlen, -EINVAL, "%s: no loadable segment", spec->bs_kernel);
	r = put_cmdline(vm, spec->bs_cmdline, CMDLINE_MAX, err, errlen);
	if (r < 0)
		return r;
	r = put_initrd(vm, spec->bs_initrd, 0, kernel_end, &initrd_gpa, &initrd_size, err, errlen);
	if (r < 0)
		return r;

	if (find_pvh_entry(fm, eh, &pvh_entry)) {
		r = write_pvh_start_info(vm, initrd_gpa, initrd_size);
		entry->ve_mode = VM_ENTRY_PVH32;
		entry->ve_rip = pvh_entry;
		entry->ve_boot_info = START_INFO_GPA;
	} else {
		struct boot_params *bp = vm_guest_ptr(vm, ZERO_PAGE_GPA, sizeof(*bp));

		memset(bp, 0, sizeof(*bp));
		bp->hdr.boot_flag = 0xAA55;
		bp->hdr.header = 0x53726448; /* "HdrS" */
		bp->hdr.version = 0x20F;
		bp->hdr.type_of_loader = 0xFF;
		bp->hdr.cmd_line_ptr = (uint32_t)CMDLINE_GPA;
		bp->hdr.ramdisk_image = (uint32_t)initrd_gpa;
		bp->hdr.ramdisk_size = (uint32_t)initrd_size;
		fill_screen_info(&bp->screen_info, spec->bs_display);
		fill_e820(vm, bp);
		entry->ve_mode = VM_ENTRY_LONG64;
		entry->ve_rip = eh->e_entry;
		entry->ve_boot_info = ZERO_PAGE_GPA;
	}
	if (r < 0)
		return fail(err, errlen, r, "cannot write boot information");
	return 0;
}

int loader_load(struct vm *vm, const struct boot_spec *spec, struct vm_entry *entry, char *err,
		size_t errlen)
{
	struct file_map fm = {0};
	int r;

	r = map_file(spec->bs_kernel, &fm, err, errlen);
	if (r < 0)
		return r;
	if (fm.fm_size >= 4 && !memcmp(fm.fm_data, ELFMAG, SELFMAG))
		r = load_elf(vm, spec, &fm, entry, err, errlen);
	else if (fm.fm_size >= 0x206 && !memcmp(fm.fm_data + 0x202, "HdrS", 4))
		r = load_bzimage(vm, spec, &fm, entry, err, errlen);
	else
		r = fail(err, errlen, -EINVAL, "%s: not a bzImage or ELF64 kernel",
			 spec->bs_kernel);
	unmap_file(&fm);
	return r;
}

/* Entry of the freestanding test guests: a PVH entry (32-bit protected mode, paging
 * off, %ebx = start_info) that builds identity page tables for the first 4 GiB and
 * enters long mode, and a 64-bit entry for loaders that start the guest in long mode
 * (%rsi = boot_params). Both end in rt_start() on the guest's own stack. */

#define XEN_ELFNOTE_PHYS32_ENTRY 18

	.section .note.pvh, "a"
	.balign 4
	.long 4			/* name size: "Xen\0" */
	.long 4			/* descriptor size */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long pvh_start

	.section .text.entry, "ax"
	.code32
	.globl pvh_start
pvh_start:
	cli
	cld
	mov	%ebx, boot_info_ptr
	movl	$1, boot_info_is_pvh
	/* PML4[0] -> PDPT; PDPT[0..3] -> four page directories of 2 MiB pages. */
	mov	$pdpt, %eax
	or	$3, %eax
	mov	%eax, pml4
	xor	%ecx, %ecx
1:	mov	%ecx, %eax
	shl	$12, %eax
	add	$pd, %eax
	or	$3, %eax
	mov	%eax, pdpt(,%ecx,8)
	inc	%ecx
	cmp	$4, %ecx
	jne	1b
	xor	%ecx, %ecx
2:	mov	%ecx, %eax
	shl	$21, %eax
	or	$0x83, %eax		/* present, writable, 2 MiB */
	mov	%eax, pd(,%ecx,8)
	mov	%ecx, %eax
	shr	$11, %eax		/* high dword: bits 32+ of (ecx << 21) */
	mov	%eax, pd+4(,%ecx,8)
	inc	%ecx
	cmp	$2048, %ecx
	jne	2b
	mov	%cr4, %eax
	or	$0x20, %eax		/* PAE */
	mov	%eax, %cr4
	mov	$pml4, %eax
	mov	%eax, %cr3
	mov	$0xC0000080, %ecx	/* EFER.LME */
	rdmsr
	or	$0x100, %eax
	wrmsr
	lgdt	gdt_desc
	mov	%cr0, %eax
	or	$0x80000001, %eax	/* PG | PE */
	mov	%eax, %cr0
	ljmp	$0x08, $long_entry

	.code64
	.globl start64
start64:
	cli
	cld
	lea	stack_top(%rip), %rsp	/* the boot protocol gives no stack */
	mov	%rsi, boot_info_ptr
	movl	$0, boot_info_is_pvh
	lgdt	gdt_desc
	pushq	$0x08
	lea	long_entry(%rip), %rax
	pushq	%rax
	lretq
long_entry:
	mov	$0x10, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	%eax, %fs
	mov	%eax, %gs
	lea	stack_top(%rip), %rsp
	xor	%ebp, %ebp
	call	rt_start
3:	hlt
	jmp	3b

	.section .data
	.balign 16
	.globl gdt
gdt:
	.quad 0
	.quad 0x00AF9A000000FFFF	/* 0x08: 64-bit code */
	.quad 0x00CF92000000FFFF	/* 0x10: data */
	.quad 0x00CF9A000000FFFF	/* 0x18: 32-bit code */
gdt_end:
	.globl gdt_desc
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt
	.globl boot_info_ptr, boot_info_is_pvh
boot_info_ptr:	.quad 0
boot_info_is_pvh: .long 0

	.section .bss
	.balign 4096
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4096 * 4
	.skip 32768
stack_top:

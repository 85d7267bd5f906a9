/* Interrupt entry stubs for the test guests: one per vector, each pushing a uniform
 * frame (error code or 0, vector) and calling rt_interrupt(vector, error, rip). */
	.code64
	.text
.macro stub vec
	.balign 16
isr_\vec:
	.if (\vec == 8) || ((\vec >= 10) && (\vec <= 14)) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
	.else
	pushq	$0
	.endif
	pushq	$\vec
	jmp	isr_common
.endm

.altmacro
.set v, 0
.rept 256
	stub %v
	.set v, v + 1
.endr

isr_common:
	push	%rax
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	mov	72(%rsp), %rdi		/* vector */
	mov	80(%rsp), %rsi		/* error code */
	mov	88(%rsp), %rdx		/* interrupted rip */
	call	rt_interrupt
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rax
	add	$16, %rsp
	iretq

	.section .rodata
	.balign 8
	.globl isr_table
isr_table:
.macro entry vec
	.quad isr_\vec
.endm
.set v, 0
.rept 256
	entry %v
	.set v, v + 1
.endr

/*
 * Context switch for AArch64, AAPCS64 (the procedure call standard of the
 * Arm 64-bit architecture), ELF (GNU as).
 *
 * A suspended context is just a stack pointer. The switch stores the
 * callee-saved state on the suspended side's own stack, so a conservative
 * scan of [saved sp, stack top) sees every register that may hold a pointer.
 * The contract is that of switch_x86_64_sysv.S: the same three functions,
 * the same arguments, the same FP control carried per context.
 *
 * Saved context, from the saved stack pointer upwards (176 bytes, so sp
 * stays 16-byte aligned, as AAPCS64 requires at every access through it):
 *
 *   offset  content
 *   0x00    FPCR (rounding mode, flush-to-zero, default NaN) | pad
 *   0x10    d8   d9        low 64 bits of v8-v15: all AAPCS64 preserves
 *   0x20    d10  d11
 *   0x30    d12  d13
 *   0x40    d14  d15
 *   0x50    x19  x20
 *   0x60    x21  x22
 *   0x70    x23  x24
 *   0x80    x25  x26
 *   0x90    x27  x28
 *   0xa0    x29 (fp)  x30 (lr: the resume pc)
 *
 * x18, the platform register, is neither saved nor touched. FPSR (the
 * sticky exception flags) is status, not control, and is not carried: the
 * x86-64 file carries SSE's flags only because MXCSR holds them beside its
 * controls, and it leaves the x87 status word alone. The file has
 * no BTI landing pads: ref__switch and ref__call_on_stack are called
 * directly and ref__trampoline is entered by ret, which BTI does not check.
 */

/* Stores the context of the table on the stack; CFI tracks it so that an
 * unwinder can walk through a frame in the middle of a switch. */
        .macro  SAVE_CONTEXT
        sub     sp, sp, #0xb0           /* room for the context */
        .cfi_adjust_cfa_offset 0xb0
        stp     d8, d9, [sp, #0x10]     /* callee-saved FP/SIMD registers */
        stp     d10, d11, [sp, #0x20]
        stp     d12, d13, [sp, #0x30]
        stp     d14, d15, [sp, #0x40]
        stp     x19, x20, [sp, #0x50]   /* callee-saved general registers */
        .cfi_rel_offset x19, 0x50
        .cfi_rel_offset x20, 0x58
        stp     x21, x22, [sp, #0x60]
        stp     x23, x24, [sp, #0x70]
        stp     x25, x26, [sp, #0x80]
        stp     x27, x28, [sp, #0x90]
        stp     x29, x30, [sp, #0xa0]   /* frame pointer, and the pc to resume at */
        .cfi_rel_offset x29, 0xa0
        .cfi_rel_offset x30, 0xa8
        mrs     x9, fpcr                /* FP control (x9: caller-saved scratch) */
        str     x9, [sp, #0x00]
        .endm

/* Loads the context at sp and pops it; the caller then returns to x30. */
        .macro  RESTORE_CONTEXT
        ldr     x9, [sp, #0x00]         /* FP control */
        msr     fpcr, x9
        ldp     d8, d9, [sp, #0x10]     /* callee-saved FP/SIMD registers */
        ldp     d10, d11, [sp, #0x20]
        ldp     d12, d13, [sp, #0x30]
        ldp     d14, d15, [sp, #0x40]
        ldp     x19, x20, [sp, #0x50]   /* callee-saved general registers */
        ldp     x21, x22, [sp, #0x60]
        ldp     x23, x24, [sp, #0x70]
        ldp     x25, x26, [sp, #0x80]
        ldp     x27, x28, [sp, #0x90]
        ldp     x29, x30, [sp, #0xa0]   /* frame pointer and resume pc */
        add     sp, sp, #0xb0           /* pop the context */
        .cfi_adjust_cfa_offset -0xb0
        .endm

        .text

/* void ref__switch(void **save_sp, void *new_sp)
 * Saves the current context into *save_sp and resumes the one at new_sp.
 * After the stack pointer moves, the CFI describes the resumed context,
 * whose layout is the same. */
        .globl  ref__switch
        .type   ref__switch, %function
        .p2align 4
ref__switch:
        .cfi_startproc
        SAVE_CONTEXT                    /* x0 = save_sp, x1 = new_sp */
        mov     x9, sp                  /* sp cannot be the source of a store */
        str     x9, [x0]                /* publish the saved stack pointer */
        mov     sp, x1                  /* adopt the other context's stack */
        RESTORE_CONTEXT                 /* and its registers */
        ret                             /* resume at its saved pc (x30) */
        .cfi_endproc
        .size   ref__switch, .-ref__switch

/* Entry of a new goroutine: ref__switch "returns" here on a stack prepared by
 * ref__context_init, with the argument for the entry function in x19 and the
 * entry function in x20. fp (x29) is 0, ending frame-pointer unwinds here. */
        .globl  ref__trampoline
        .type   ref__trampoline, %function
        .p2align 4
ref__trampoline:
        .cfi_startproc
        .cfi_undefined x30              /* no caller: unwinders stop here */
        mov     x0, x19                 /* first argument */
        blr     x20                     /* entry(arg); never returns */
        brk     #0x3e8                  /* trap if it does */
        .cfi_endproc
        .size   ref__trampoline, .-ref__trampoline

/* void ref__call_on_stack(void **save_sp, void *new_sp, void (*fn)(void *), void *arg)
 * Saves the current context into *save_sp exactly as ref__switch does, runs
 * fn(arg) on the stack at new_sp (16-byte aligned), then resumes the saved
 * context. Used to run the collector on the scheduler's stack while the
 * calling goroutine's registers sit on its own stack, visible to the scan. */
        .globl  ref__call_on_stack
        .type   ref__call_on_stack, %function
        .p2align 4
ref__call_on_stack:
        .cfi_startproc
        SAVE_CONTEXT                    /* same layout as ref__switch */
        mov     x9, sp                  /* sp cannot be the source of a store */
        str     x9, [x0]                /* publish the saved stack pointer */
        mov     x19, sp                 /* keep it across the call (x19 is saved above) */
        .cfi_def_cfa_register x19
        mov     sp, x1                  /* run on the other stack */
        mov     x0, x3                  /* fn(arg) */
        blr     x2
        mov     sp, x19                 /* back on our own stack */
        .cfi_def_cfa_register sp
        RESTORE_CONTEXT                 /* x19 and the rest as they were */
        ret                             /* to our caller (x30 restored) */
        .cfi_endproc
        .size   ref__call_on_stack, .-ref__call_on_stack

        .section .note.GNU-stack,"",%progbits

/*
 * Context switch for x86-64, System V ABI, ELF (GNU as, AT&T syntax).
 *
 * A suspended context is just a stack pointer. The switch pushes the
 * callee-saved state on the suspended side's own stack, so a conservative
 * scan of [saved sp, stack top) sees every register that may hold a pointer.
 *
 * Saved context, from the saved stack pointer upwards:
 *
 *   offset  content
 *   0x00    MXCSR (4 bytes) | x87 control word (2 bytes) | pad
 *   0x08    r15
 *   0x10    r14
 *   0x18    r13
 *   0x20    r12
 *   0x28    rbx
 *   0x30    rbp
 *   0x38    return address (resume pc)
 */

        .text

/* void ref__switch(void **save_sp, void *new_sp)
 * Saves the current context into *save_sp and resumes the one at new_sp. */
        .globl  ref__switch
        .type   ref__switch, @function
        .p2align 4
ref__switch:
        .cfi_startproc
        pushq   %rbp                    /* callee-saved registers, in the table's order */
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp                /* room for the FP control words */
        stmxcsr (%rsp)                  /* SSE control/status (rounding, exceptions masks) */
        fnstcw  4(%rsp)                 /* x87 control word */
        movq    %rsp, (%rdi)            /* publish the saved stack pointer */
        movq    %rsi, %rsp              /* adopt the other context's stack */
        ldmxcsr (%rsp)                  /* restore its FP control words */
        fldcw   4(%rsp)
        addq    $8, %rsp
        popq    %r15                    /* and its callee-saved registers */
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret                             /* resume at its saved pc */
        .cfi_endproc
        .size   ref__switch, .-ref__switch

/* Entry of a new goroutine: ref__switch "returns" here on a stack prepared by
 * ref__context_init, with the argument for the entry function in r12 and the
 * entry function in r13. rbp is 0, ending frame-pointer unwinds here. */
        .globl  ref__trampoline
        .type   ref__trampoline, @function
        .p2align 4
ref__trampoline:
        .cfi_startproc
        .cfi_undefined rip              /* no caller: unwinders stop here */
        movq    %r12, %rdi              /* first argument */
        callq   *%r13                   /* entry(arg); never returns */
        ud2                             /* trap if it does */
        .cfi_endproc
        .size   ref__trampoline, .-ref__trampoline

/* void ref__call_on_stack(void **save_sp, void *new_sp, void (*fn)(void *), void *arg)
 * Saves the current context into *save_sp exactly as ref__switch does, runs
 * fn(arg) on the stack at new_sp (16-byte aligned), then resumes the saved
 * context. Used to run the collector on the scheduler's stack while the
 * calling goroutine's registers sit on its own stack, visible to the scan. */
        .globl  ref__call_on_stack
        .type   ref__call_on_stack, @function
        .p2align 4
ref__call_on_stack:
        .cfi_startproc
        pushq   %rbp                    /* same layout as ref__switch */
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset rbp, 0
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %rsp, (%rdi)            /* publish the saved stack pointer */
        movq    %rsp, %rbx              /* keep it across the call (callee-saved) */
        .cfi_def_cfa_register rbx
        movq    %rsi, %rsp              /* run on the other stack */
        movq    %rcx, %rdi              /* fn(arg) */
        callq   *%rdx
        movq    %rbx, %rsp              /* back on our own stack */
        .cfi_def_cfa_register rsp
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        .cfi_adjust_cfa_offset -8
        popq    %r15
        .cfi_adjust_cfa_offset -8
        popq    %r14
        .cfi_adjust_cfa_offset -8
        popq    %r13
        .cfi_adjust_cfa_offset -8
        popq    %r12
        .cfi_adjust_cfa_offset -8
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        ret
        .cfi_endproc
        .size   ref__call_on_stack, .-ref__call_on_stack

        .section .note.GNU-stack,"",@progbits

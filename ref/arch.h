/*
 * arch.h: what differs between the instruction sets ref runs on (x86-64
 * SysV and AArch64 AAPCS64, Linux both), in one place. Each has its own
 * context switch, switch_<arch>_<abi>.S, whose opening table is the full
 * layout of a saved context; this header names only the slots that
 * ref__context_init fills for a new goroutine.
 *
 * Assumptions held for both (none is read at run time):
 *   - cache lines are 64 bytes: true of every x86-64 part and of the arm64
 *     server cores (Neoverse, Ampere); Apple's cores have 128, where the
 *     prefetch loops then fetch each line twice and paddings share a line;
 *   - user addresses fit in REF_USER_VA_BITS (a node packing in workbuf.c
 *     relies on it and checks it on every push).
 * The OS page size is not assumed: arm64 kernels use 4K, 16K or 64K pages,
 * so code that maps, protects or releases memory asks ref__os_page_size().
 */
#ifndef REF_ARCH_H
#define REF_ARCH_H

#include <stdint.h>

#define REF_CACHE_LINE 64

#if defined(__x86_64__)

#define REF_ARCH_NAME "x86_64"
/* 47 bits: Linux's user half with 4-level paging. */
#define REF_USER_VA_BITS 47
/* switch_x86_64_sysv.S: 8 words, FP control words at the bottom, the resume
 * pc on top; the trampoline calls r13(r12). */
#define REF__CTX_WORDS 8
#define REF__CTX_FPCTL 0 /* MXCSR | x87 control word << 32 */
#define REF__CTX_ENTRY 3 /* r13 */
#define REF__CTX_ARG 4   /* r12 */
#define REF__CTX_PC 7    /* return address of ref__switch */
#define REF__CTX_FPCTL_DEFAULT (UINT64_C(0x1F80) | UINT64_C(0x037F) << 32)
/* Spin-wait hint: pause lets the sibling hyperthread run and spares the
 * memory-order flush on leaving the loop. */
#define ref_cpu_relax() __builtin_ia32_pause()

#elif defined(__aarch64__)

#define REF_ARCH_NAME "aarch64"
/* 48 bits: Linux arm64 maps user memory there or lower (39 or 42 bits on
 * some kernels) and above 2^48 only for a mmap hint that asks for it. */
#define REF_USER_VA_BITS 48
/* switch_aarch64_aapcs.S: 22 words, FPCR at the bottom, fp and lr (the
 * resume pc) on top; the trampoline calls x20(x19). */
#define REF__CTX_WORDS 22
#define REF__CTX_FPCTL 0  /* FPCR */
#define REF__CTX_ARG 10   /* x19 */
#define REF__CTX_ENTRY 11 /* x20 */
#define REF__CTX_PC 21    /* x30, the link register */
#define REF__CTX_FPCTL_DEFAULT UINT64_C(0) /* round to nearest, no flush-to-zero */
/* Spin-wait hint: yield is a no-op on most arm64 cores, so a loop of them
 * hammers the line it polls; isb waits for the pipeline to drain, a delay of
 * the order of x86's pause. */
#define ref_cpu_relax() __asm__ __volatile__("isb" ::: "memory")

#else
#error "ref: no port to this architecture (x86-64 SysV and AArch64 only)"
#endif

#endif /* REF_ARCH_H */

/*
 * preempt.c: asynchronous preemption (preempt=async), Go 1.14's answer to a
 * loop that reaches no safepoint. A stop-the-world that finds a mutator
 * still running sends its thread SIGURG (sched.c, ref__stop_the_world).
 * The handler runs on the thread's signal stack and stops the goroutine
 * right where it was interrupted, but only where that is safe:
 *
 *   - a goroutine runs on the thread (not its scheduler stack, not a
 *     systemstack call: the interrupted stack pointer is in its stack);
 *   - it is outside the runtime (its REF_RUNTIME_CALL count is 0): inside,
 *     it may hold a lock the collector needs or half-update a list;
 *   - the interrupted pc is in the program's own code, not a shared
 *     library's (libc's malloc may hold a lock the collector's thread needs);
 *   - its stack has room below the interrupted frame for the registers.
 *
 * Otherwise the handler returns, and the goroutine stops at its next
 * safepoint as with cooperative preemption (the requester signals again
 * while it waits).
 *
 * To stop, the handler copies the interrupted registers (general and
 * vector) onto the goroutine's stack just below the interrupted stack
 * pointer (and the x86-64 red zone), publishes that as the goroutine's sp,
 * and waits in the handler for the restart like any stopped M (sched.c's
 * ref__async_stop). The collector then reads the goroutine's stack from
 * there: in scan=conservative as any stack; in scan=frames the frames
 * above its youngest record, that record's own frame included, are one
 * conservative range (ref.h), as Go scans an async-preempted frame and its
 * parent conservatively. The registers are restored by the kernel when the
 * handler returns; the copy is only for the scan.
 */
#include "g.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>

/* The program's code, from the linker: the interrupted pc must be in it. */
extern const char __executable_start[] __attribute__((weak));
extern const char __etext[] __attribute__((weak));

#if defined(__x86_64__)
#define RED_ZONE 128 /* SysV: a leaf function may use 128 bytes below sp */
#define NGPR NGREG
#define NVEC 16
#elif defined(__aarch64__)
#define RED_ZONE 0
#define NGPR 34 /* x0..x30, sp, pc, pstate */
#define NVEC 32
#endif

/* What the handler copies onto the goroutine's stack. */
typedef struct regcopy {
  uint64_t gpr[NGPR];
  uint64_t vec[NVEC][2];
} regcopy;

/* Room a stop needs below the interrupted frame: the copy, and what a
 * stack scan's conservative reads past it may touch (none), with margin. */
#define ASYNC_ROOM ((uintptr_t)sizeof(regcopy) + RED_ZONE + 256)

static struct {
  bool installed;
  struct sigaction old;
  _Atomic uint64_t xsent; /* signals sent since ref_init */
} pre;

bool ref__debug_async_ignore_runtime;

static uintptr_t ctx_sp(const ucontext_t *uc) {
#if defined(__x86_64__)
  return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#else
  return (uintptr_t)uc->uc_mcontext.sp;
#endif
}

static uintptr_t ctx_pc(const ucontext_t *uc) {
#if defined(__x86_64__)
  return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#else
  return (uintptr_t)uc->uc_mcontext.pc;
#endif
}

/* Copies the interrupted registers into *rc. */
static void ctx_copy(const ucontext_t *uc, regcopy *rc) {
  memset(rc, 0, sizeof *rc);
#if defined(__x86_64__)
  for (int i = 0; i < NGREG; i++) rc->gpr[i] = (uint64_t)uc->uc_mcontext.gregs[i];
  if (uc->uc_mcontext.fpregs) memcpy(rc->vec, uc->uc_mcontext.fpregs->_xmm, sizeof rc->vec);
#else
  for (int i = 0; i < 31; i++) rc->gpr[i] = uc->uc_mcontext.regs[i];
  rc->gpr[31] = uc->uc_mcontext.sp;
  rc->gpr[32] = uc->uc_mcontext.pc;
  rc->gpr[33] = uc->uc_mcontext.pstate;
  /* The vector registers are the first record of __reserved (FPSIMD). */
  const struct fpsimd_context *fp = (const struct fpsimd_context *)uc->uc_mcontext.__reserved;
  if (fp->head.magic == FPSIMD_MAGIC) memcpy(rc->vec, fp->vregs, sizeof rc->vec);
#endif
}

static bool pc_in_program(uintptr_t pc) {
  if (!__executable_start || !__etext) return true; /* no bounds from the linker */
  return pc >= (uintptr_t)__executable_start && pc < (uintptr_t)__etext;
}

/* The stack is written below the interrupted sp, where ASan may still have
 * a returned frame's red zones marked. */
REF_NO_SANITIZE_ADDRESS
static void async_handler(int sig, siginfo_t *si, void *ctx) {
  (void)sig, (void)si;
  int saved_errno = errno;
  const ucontext_t *uc = ctx;
  ref__m *m = ref__m_get();
  ref_g *g = m ? m->curg : NULL;
  uintptr_t sp = ctx_sp(uc);
  bool ok = g && __atomic_load_n(&ref__stop_requested, __ATOMIC_RELAXED) &&
            (g->in_runtime == 0 || ref__debug_async_ignore_runtime) && sp < g->stack.hi &&
            sp >= g->stack.lo + ASYNC_ROOM && pc_in_program(ctx_pc(uc));
  if (ok) {
    uintptr_t lo = ref_align_down(sp - RED_ZONE - sizeof(regcopy), 16);
    ctx_copy(uc, (regcopy *)lo);
    ref__async_stop(m, g, lo); /* counted there: ref_gc_stats.async_preempts */
  }
  errno = saved_errno;
}

void ref__preempt_m(const ref__m *m) {
  atomic_fetch_add_explicit(&pre.xsent, 1, memory_order_relaxed);
  pthread_kill(m->thread, SIGURG);
}

uint64_t ref__preempt_signals(void) { return atomic_load(&pre.xsent); }

int ref__preempt_init(const ref_config *cfg) {
  atomic_store(&pre.xsent, 0);
  if (cfg->preempt != REF_PREEMPT_ASYNC) return 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = async_handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGURG, &sa, &pre.old) != 0)
    return ref__seterr("installing the SIGURG preemption handler: %s", strerror(errno));
  pre.installed = true;
  return 0;
}

void ref__preempt_shutdown(void) {
  if (!pre.installed) return;
  sigaction(SIGURG, &pre.old, NULL);
  pre.installed = false;
}

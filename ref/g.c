/*
 * g.c: goroutine structures, their mmap'd stacks with guard pages, the
 * initial context of a new goroutine, frame-record linking, and the guard
 * page fault handler.
 *
 * Stacks are reserved in chunks of STACKS_PER_CHUNK, each stack preceded by
 * a PROT_NONE guard page; pages are touched lazily, so a parked goroutine
 * costs only the pages its frames reached. Dead goroutines keep their stack
 * and are reused through a free list (Go's gfree).
 */
#include "g.h"
#include "os.h"

#include <errno.h>
#include <signal.h>
#include <string.h>


#define STACKS_PER_CHUNK 32
#define G_BLOCK_BYTES ((size_t)2 << 20) /* one transparent huge page of Gs */
#define GS_PER_BLOCK ((int)(G_BLOCK_BYTES / sizeof(ref_g)))

ref__allgs ref__allg;

typedef struct chunk {
  struct chunk *next;
  void *base;
  size_t len;
} chunk;

static struct {
  size_t stack_size;   /* usable bytes */
  size_t guard;        /* guard bytes below each stack */
  size_t page;
  chunk *stack_chunks; /* every stack chunk, for shutdown */
  uintptr_t spare_lo;  /* next unused stack slot in the newest chunk */
  int spare_left;
  chunk *g_blocks;     /* G structs, GS_PER_BLOCK per block */
  ref_g *g_next;
  int g_left;
  ref_g *gfree;        /* dead Gs with their stacks */
  size_t nstacks;
  long max_map_count;
  uint64_t next_id;
  struct sigaction old_segv;
  void *altstack;
  pthread_mutex_t lock;  /* g_alloc and g_release: the free list, chunks, allg */
} gs;

/* ---------------------------------------------------------------------------
 * Stacks
 * ------------------------------------------------------------------------- */

/* ASan: a goroutine that exits never unwinds its frames, so their redzones
 * stay poisoned in the shadow; so does memory of an earlier runtime mapped
 * at the same address. A stack about to be (re)used starts clean. */
static void stack_unpoison(uintptr_t lo, size_t len) { ref__os_unpoison((void *)lo, len); }

static long read_max_map_count(void) {
  FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
  long v = 65530;
  if (f) {
    if (fscanf(f, "%ld", &v) != 1) v = 65530;
    fclose(f);
  }
  return v;
}

/* Reserves a chunk of stacks; each slot is guard + stack. */
static int stack_chunk_new(void) {
  size_t slot = gs.guard + gs.stack_size;
  size_t len = slot * STACKS_PER_CHUNK;
  /* Each stack costs two mappings (guard + stack); keep headroom for the heap. */
  long need = (long)(gs.nstacks + STACKS_PER_CHUNK) * 2 + 4096;
  if (need > gs.max_map_count)
    return ref__seterr("%zu goroutine stacks need %ld mappings but vm.max_map_count is %ld; "
                       "raise it (sysctl -w vm.max_map_count=%ld)",
                       gs.nstacks + STACKS_PER_CHUNK, need, gs.max_map_count, need * 2);
  void *p = ref__os_map(len, true, false);
  if (!p) return ref__seterr("mmap of %zu bytes of stacks: %s", len, strerror(errno));
  for (int i = 0; i < STACKS_PER_CHUNK; i++) {
    if (ref__os_guard((char *)p + i * slot, gs.guard) != 0) {
      ref__os_unmap(p, len);
      return ref__seterr("mprotect of a stack guard page: %s", strerror(errno));
    }
  }
  chunk *c = malloc(sizeof *c);
  if (!c) {
    ref__os_unmap(p, len);
    return ref__seterr("out of memory for stack chunk bookkeeping");
  }
  *c = (chunk){gs.stack_chunks, p, len};
  gs.stack_chunks = c;
  gs.spare_lo = (uintptr_t)p;
  gs.spare_left = STACKS_PER_CHUNK;
  return 0;
}

static int stack_alloc(ref__stack *st) {
  if (gs.spare_left == 0 && stack_chunk_new() != 0) return -1;
  uintptr_t slot = gs.spare_lo;
  gs.spare_lo += gs.guard + gs.stack_size;
  gs.spare_left--;
  gs.nstacks++;
  st->lo = slot + gs.guard;
  st->hi = st->lo + gs.stack_size;
  return 0;
}

/* ---------------------------------------------------------------------------
 * G structures
 * ------------------------------------------------------------------------- */

/* G structs come in blocks of one huge page: the collector walks them all
 * every cycle, and with 4 KiB pages each block of 32 Gs would cost a TLB
 * miss. */
static ref_g *g_struct_new(void) {
  if (gs.g_left == 0) {
    chunk *c = malloc(sizeof *c);
    void *block = ref__os_map(G_BLOCK_BYTES, true, true);
    if (!c || !block) {
      free(c);
      ref__os_unmap(block, G_BLOCK_BYTES);
      return NULL;
    }
    *c = (chunk){gs.g_blocks, block, G_BLOCK_BYTES};
    gs.g_blocks = c;
    gs.g_next = block;
    gs.g_left = GS_PER_BLOCK;
  }
  gs.g_left--;
  return gs.g_next++;
}

/* Arrays allg outgrew while pinned (g.h), freed at the unpin; it doubles,
 * so a cycle retires at most a few. Under gs.lock. */
static struct {
  bool pinned;
  int n;
  ref_g **old[64];
} retired;

static bool allg_grow(void) {
  if (!retired.pinned || ref__allg.cap == 0) return REF_GROW(ref__allg.g, ref__allg.cap, 1024);
  if (retired.n == (int)(sizeof retired.old / sizeof *retired.old) ||
      ref__allg.cap > SIZE_MAX / 2 / sizeof(ref_g *))
    return false;
  ref_g **a = malloc(2 * ref__allg.cap * sizeof *a);
  if (!a) return false;
  memcpy(a, ref__allg.g, ref__allg.len * sizeof *a);
  retired.old[retired.n++] = ref__allg.g;
  ref__allg.g = a;
  ref__allg.cap *= 2;
  return true;
}

void ref__allg_pin(void) {
  pthread_mutex_lock(&gs.lock);
  retired.pinned = true;
  pthread_mutex_unlock(&gs.lock);
}

static void retired_free(void) {
  for (int i = 0; i < retired.n; i++) free(retired.old[i]);
  retired.n = 0;
}

void ref__allg_unpin(void) {
  pthread_mutex_lock(&gs.lock);
  retired.pinned = false;
  retired_free();
  pthread_mutex_unlock(&gs.lock);
}

static int allg_add(ref_g *g) {
  if (ref__allg.len == ref__allg.cap && !allg_grow())
    return ref__seterr("out of memory growing the goroutine table past %zu", ref__allg.cap);
  g->allg_index = (uint32_t)ref__allg.len;
  ref__allg.g[ref__allg.len++] = g;
  return 0;
}

static ref_g *g_alloc_locked(void) {
  ref_g *g = gs.gfree;
  if (g) {
    gs.gfree = g->schedlink;
    g->schedlink = NULL;
  } else {
    /* Every G is a TSan fiber, and fibers count against its thread limit. */
    if (REF_TSAN && ref__allg.len >= 8000) {
      ref__seterr("TSan builds support at most 8000 goroutines");
      return NULL;
    }
    g = g_struct_new();
    if (!g) {
      ref__seterr("out of memory for a goroutine");
      return NULL;
    }
    if (stack_alloc(&g->stack) != 0) {
      gs.g_next--, gs.g_left++; /* give the struct back */
      return NULL;
    }
    if (allg_add(g) != 0) return NULL;
  }
  g->id = ++gs.next_id;
  return g;
}

ref_g *ref__g_alloc(void) {
  pthread_mutex_lock(&gs.lock);
  ref_g *g = g_alloc_locked();
  pthread_mutex_unlock(&gs.lock);
  if (g) {
    g->frames = NULL;
    g->started = false;
    g->scan_clean = 0;
    g->param = NULL;
  }
  return g;
}

/* Called once g's stack is no longer in use (after its last switch). */
void ref__g_release(ref_g *g) {
  ref_assert_internal(g->status == REF_G_DEAD);
  ref__reuse_forget(g);
  g->fn = NULL;
  g->arg = NULL;
  g->frames = NULL;
  pthread_mutex_lock(&gs.lock);
  g->schedlink = gs.gfree;
  gs.gfree = g;
  pthread_mutex_unlock(&gs.lock);
}

/* Builds the context ref__switch resumes for a new G: it "returns" into
 * ref__trampoline, which calls entry(g) with sp 16-byte aligned. The layout
 * is the saved-context table in this ABI's switch_*.S; arch.h names the
 * slots set here. Every other register starts 0, the frame pointer among
 * them, which ends frame-pointer unwinds. */
void ref__context_init(ref_g *g, void (*entry)(ref_g *)) {
  stack_unpoison(g->stack.lo, g->stack.hi - g->stack.lo);
  uintptr_t top = ref_align_down(g->stack.hi, 16) - 16;
  uint64_t *sp = (uint64_t *)top - REF__CTX_WORDS;
  memset(sp, 0, REF__CTX_WORDS * sizeof *sp + 16); /* and a zero frame above */
  sp[REF__CTX_FPCTL] = REF__CTX_FPCTL_DEFAULT;
  sp[REF__CTX_ENTRY] = (uint64_t)(uintptr_t)entry;
  sp[REF__CTX_ARG] = (uint64_t)(uintptr_t)g;
  sp[REF__CTX_PC] = (uint64_t)(uintptr_t)ref__trampoline;
  g->sp = sp;
}

uint64_t ref_goid(const ref_g *g) { return g ? g->id : 0; }

/* ---------------------------------------------------------------------------
 * Frame records
 * ------------------------------------------------------------------------- */

/* Not inlined: its own frame address lies just below the caller's stack
 * pointer, which makes it a lower bound of the caller's native frame. */
ref_noinline void ref__frame_push(ref_frame *rec, const ref_funcinfo *fn, uint32_t nslots) {
  ref__m *m = ref__m_get();
  ref_assert(fn->nslots == nslots);
  ref_assert(fn->pcoff != NULL || fn->nsafepoints == 0); /* registered before ref_init */
  ref_frame **top = m->curg ? &m->curg->frames : &m->g0_frames;
  rec->fn = fn;
  rec->pc = fn->pcoff ? fn->entry + fn->pcoff[0] : fn->entry; /* safepoint 0, as in direct */
  rec->frame_lo = (uintptr_t)__builtin_frame_address(0);
  rec->parent = *top;
  atomic_signal_fence(memory_order_release); /* preempt=async: linked only when whole */
  *top = rec;
}

void ref__frame_pop(ref_frame *rec) {
  ref__m *m = ref__m_get();
  ref_frame **top = m->curg ? &m->curg->frames : &m->g0_frames;
  if (ref_unlikely(*top != rec))
    ref__throw("frame record %p (%s) popped out of order (top is %p)", (void *)rec,
               rec->fn ? rec->fn->name : "?", (void *)*top);
  *top = rec->parent;
}

/* ---------------------------------------------------------------------------
 * Guard-page faults
 * ------------------------------------------------------------------------- */

static void write_str(const char *s) {
  ssize_t r = write(2, s, strlen(s));
  (void)r;
}

static void write_u64(uint64_t v) {
  char buf[24], *p = buf + sizeof buf;
  *--p = 0;
  do *--p = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  write_str(p);
}

/* SIGSEGV on the alternate stack: a fault in the running goroutine's guard
 * page is a stack overflow, reported and aborted; any other fault goes to
 * the previous handler (the default, or a sanitizer's). */
static void segv_handler(int sig, siginfo_t *si, void *ctx) {
  ref__m *m = ref__m_get();
  uintptr_t addr = (uintptr_t)si->si_addr;
  ref_g *g = m ? m->curg : NULL;
  if (g && addr < g->stack.lo && addr >= g->stack.lo - gs.guard) {
    write_str("stackscan: goroutine ");
    write_u64(g->id);
    write_str(" overflowed its stack (");
    write_u64(g->stack.hi - g->stack.lo);
    write_str(" bytes)\n");
    signal(SIGABRT, SIG_DFL);
    abort();
  }
  if (gs.old_segv.sa_flags & SA_SIGINFO) {
    gs.old_segv.sa_sigaction(sig, si, ctx);
    return;
  }
  sigaction(SIGSEGV, &gs.old_segv, NULL); /* re-fault into the old disposition */
}

#define ALTSTACK_SIZE ((size_t)64 << 10)

int ref__g_thread_altstack(void **stack) {
  *stack = ref__os_map(ALTSTACK_SIZE, false, false);
  if (!*stack) return ref__seterr("mmap of the signal stack: %s", strerror(errno));
  stack_t ss = {.ss_sp = *stack, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) {
    ref__os_unmap(*stack, ALTSTACK_SIZE);
    *stack = NULL;
    return ref__seterr("sigaltstack: %s", strerror(errno));
  }
  return 0;
}

void ref__g_thread_altstack_free(void *stack) {
  if (!stack) return;
  stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
  sigaltstack(&ss, NULL);
  ref__os_unmap(stack, ALTSTACK_SIZE);
}

static int segv_install(void) {
  if (ref__g_thread_altstack(&gs.altstack) != 0) return -1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = segv_handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, &gs.old_segv) != 0)
    return ref__seterr("installing the stack-overflow handler: %s", strerror(errno));
  return 0;
}

static void segv_uninstall(void) {
  sigaction(SIGSEGV, &gs.old_segv, NULL);
  ref__g_thread_altstack_free(gs.altstack);
}

/* ---------------------------------------------------------------------------
 * Lifetime
 * ------------------------------------------------------------------------- */

int ref__g_init(const ref_config *cfg) {
  memset(&gs, 0, sizeof gs);
  gs.page = ref__os_page_size();
  gs.guard = gs.page;
  gs.stack_size = ref_align_up(cfg->stack_size, gs.page); /* in range: ref_init checked it */
  gs.max_map_count = read_max_map_count();
  pthread_mutex_init(&gs.lock, NULL);
  return segv_install();
}

static void free_chunks(chunk *c) {
  while (c) {
    chunk *next = c->next;
    ref__os_unmap(c->base, c->len);
    free(c);
    c = next;
  }
}

void ref__g_shutdown(void) {
  segv_uninstall();
  free_chunks(gs.stack_chunks);
  free_chunks(gs.g_blocks);
  retired_free();
  retired.pinned = false;
  free(ref__allg.g);
  memset(&ref__allg, 0, sizeof ref__allg);
  pthread_mutex_destroy(&gs.lock);
  memset(&gs, 0, sizeof gs);
}

/*
 * os.c: memory primitives over mmap, with the sanitizer bookkeeping they
 * need; the monotonic and thread CPU clocks; thread creation on the CPU set
 * the process started with.
 */
#include "os.h"

#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#if REF_ASAN
#include <sanitizer/asan_interface.h>
#endif

void ref__os_unpoison(void *p, size_t len) {
#if REF_ASAN
  __asan_unpoison_memory_region(p, len);
#else
  (void)p, (void)len;
#endif
}

void *ref__os_map(size_t len, bool lazy, bool huge) {
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | (lazy ? MAP_NORESERVE : 0);
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) return NULL;
  if (huge) (void)madvise(p, len, MADV_HUGEPAGE); /* advice only: fine if refused */
  ref__os_unpoison(p, len);
  return p;
}

void ref__os_unmap(void *p, size_t len) {
  if (p) munmap(p, len);
}

int ref__os_guard(void *p, size_t len) { return mprotect(p, len, PROT_NONE); }

int ref__os_decommit(void *p, size_t len) { return madvise(p, len, MADV_DONTNEED); }

size_t ref__os_page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); } /* glibc: from auxv */

size_t ref__os_physical_memory(void) {
  return (size_t)sysconf(_SC_PHYS_PAGES) * ref__os_page_size();
}

static inline uint64_t clock_ns(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ref__nanotime(void) { return clock_ns(CLOCK_MONOTONIC); }

uint64_t ref__thread_cputime(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

static struct {
  pthread_once_t once;
  bool ok;
  cpu_set_t set;
} cpus = {PTHREAD_ONCE_INIT, false, {{0}}};

static void cpus_read(void) { cpus.ok = sched_getaffinity(0, sizeof cpus.set, &cpus.set) == 0; }

void ref__os_cpus_capture(void) { pthread_once(&cpus.once, cpus_read); }

int ref__os_thread_create(pthread_t *t, void *(*fn)(void *), void *arg) {
  pthread_attr_t attr;
  int rc = pthread_attr_init(&attr);
  if (rc != 0) return rc;
  if (cpus.ok) rc = pthread_attr_setaffinity_np(&attr, sizeof cpus.set, &cpus.set);
  if (rc == 0) rc = pthread_create(t, &attr, fn, arg);
  pthread_attr_destroy(&attr);
  return rc;
}

/* Spins on a plain load (the line stays shared while held), then yields. */
void ref__spin_lock_slow(ref__spinlock *l) {
  for (unsigned spins = 0;; spins++) {
    if (!atomic_load_explicit(&l->x, memory_order_relaxed) &&
        !atomic_exchange_explicit(&l->x, 1, memory_order_acquire))
      return;
    if (spins < 64) ref_cpu_relax();
    else sched_yield();
  }
}

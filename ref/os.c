/*
 * os.c: memory primitives over mmap, with the sanitizer bookkeeping they
 * need.
 */
#include "os.h"

#include <sys/mman.h>
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

size_t ref__os_page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); } /* glibc: from auxv */

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

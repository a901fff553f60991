/*
 * scan_reuse.c: the records of clean stacks (reuse=clean). A complete scan
 * of a parked goroutine's stack, the second in a row without the goroutine
 * running (g.h: REF_G_SEEN), records what it fed the marker -- under
 * frames the live slot values that fell in the heap's range, under
 * conservative the candidate words -- in a side table indexed by the G's
 * place in allg, and sets the G's scan_clean bit. While the bit is set the
 * next cycle replays the record instead of reading the stack: the same
 * words are marked, so the same objects, and each object a word newly marks
 * is scanned at once rather than queued, since the scan pipeline fetched
 * it a few goroutines ahead (100k GoroutineParked, one worker, 2-vCPU
 * Xeon: 0.76x the replay's time conservative, 0.89x frames; not looking
 * up each object's span twice, 0.89-0.93x more; marking a batch of words
 * before scanning what they marked, 0.92-0.95x more). The bit's
 * soundness argument is in g.h, next to it.
 */
#include "gc.h"

#include <stddef.h>
#include <string.h>

/* One stack's record: n words of the scan made under scan mode `scan`,
 * inline when they fit, else all in ext (malloc'd, n words). Valid only
 * while its G's scan_clean bit is set; ext is NULL unless that is
 * REF_G_CLEAN_EXT (an inline entry's n and words are left stale when it
 * is dropped). 64 bytes, one line. */
#define INLINE_WORDS 6
typedef struct reuse_entry {
  uint32_t n;
  uint32_t scan;
  uintptr_t *ext;
  uintptr_t inl[INLINE_WORDS];
} reuse_entry;
_Static_assert(sizeof(reuse_entry) == REF_REUSE_ENTRY_BYTES, "one line per entry");
_Static_assert(offsetof(ref_g, allg_index) + sizeof(uint32_t) <= 64,
               "a replay reads only the G's first line");

/* The side table, ref__reuse_entries (gc.h, for the scans' prefetches),
 * one entry per allg slot, table_cap of them; grown only between cycles. */
reuse_entry *ref__reuse_entries;
static size_t table_cap;

static inline const uintptr_t *entry_words(const reuse_entry *e) {
  return e->n <= INLINE_WORDS ? e->inl : e->ext;
}

static inline size_t entry_bytes(const reuse_entry *e) {
  return sizeof *e + (e->n > INLINE_WORDS ? e->n * REF_WORD : 0);
}

void ref__reuse_prepare(void) {
  if (ref__cfg.reuse == REF_REUSE_OFF || table_cap >= ref__allg.len) return;
  size_t cap = table_cap ? table_cap : 1024;
  while (cap < ref__allg.len) cap *= 2;
  reuse_entry *e = realloc(ref__reuse_entries, cap * sizeof *e);
  if (!e) ref__throw("out of memory for the reuse table of %zu goroutines", cap);
  memset(e + table_cap, 0, (cap - table_cap) * sizeof *e);
  ref__reuse_entries = e;
  table_cap = cap;
}

void ref__reuse_forget_slow(ref_g *g) {
  if (g->scan_clean == REF_G_CLEAN_EXT) {
    reuse_entry *e = &ref__reuse_entries[g->allg_index];
    free(e->ext);
    e->ext = NULL;
    e->n = 0;
  }
  g->scan_clean = 0;
}

/* Marks the objects n <= REPLAY_BATCH record words point into, then scans
 * the ones this marked, in two passes. Marking them all first means an
 * object the record names is scanned here, where the scan pipeline has
 * fetched it, and not found first through another's field, queued, and
 * fetched and looked up again when it is popped (a reader's channel, in
 * GoroutineParked); and the lookups of one pass do not wait for each
 * other's scans. */
#define REPLAY_BATCH 8
static void replay_batch(ref__worker *w, const uintptr_t *p, uint32_t n) {
  uintptr_t base[REPLAY_BATCH];
  ref__span *span[REPLAY_BATCH];
  uint32_t idx[REPLAY_BATCH], m = 0;
  for (uint32_t i = 0; i < n; i++) {
    uintptr_t b = ref__find_object(p[i], &span[m], &idx[m]);
    if (b && ref__mark_new(w, span[m], idx[m])) base[m++] = b;
  }
  for (uint32_t i = 0; i < m; i++) {
    if (ref__object_size(span[i]) > REF_OBLET_BYTES) ref__gcw_put(&w->gcw, base[i]);
    else ref__scanobject_at(w, base[i], base[i], span[i], idx[i]);
  }
}

bool ref__reuse_replay(ref__worker *w, ref_g *g) {
  if (g->scan_clean < REF_G_CLEAN) return false;
  const reuse_entry *e = &ref__reuse_entries[g->allg_index];
  if (e->scan != (uint32_t)ref__cfg.scan) { /* recorded under the other scan mode */
    ref__reuse_forget_slow(g);
    return false;
  }
  uintptr_t bytes = g->stack.hi - (uintptr_t)g->sp;
  ref__count_stack(w, bytes);
  w->n.stacks_reused++;
  w->n.stack_bytes_skipped += bytes;
  w->n.reuse_words += e->n;
  w->n.reuse_bytes += entry_bytes(e);
  const uintptr_t *p = entry_words(e);
  for (uint32_t i = 0; i < e->n; i += REPLAY_BATCH)
    replay_batch(w, p + i, e->n - i < REPLAY_BATCH ? e->n - i : REPLAY_BATCH);
  return true;
}

/* The scan pipeline's step for a clean G a few goroutines ahead of its
 * replay: its record's line has arrived (prefetch_g fetched it further
 * ahead), so fetch the objects its first words point into, which the
 * replay marks and scans at once. Reads only a record the scan's caller
 * holds still: the world is stopped, or the G's scan lock is held. */
void ref__reuse_prefetch_objects(const ref_g *g) {
  const reuse_entry *e = &ref__reuse_entries[g->allg_index];
  uint32_t n = e->n < INLINE_WORDS ? e->n : INLINE_WORDS;
  const uintptr_t *p = entry_words(e);
  for (uint32_t i = 0; i < n; i++) __builtin_prefetch((const void *)p[i]);
}

void ref__reuse_begin(ref__worker *w) {
  ref__ptrbuf_flush(w); /* what is queued is not this stack's */
  w->nrec = 0;
  w->recording = true;
}

void ref__record_slow(ref__worker *w, const uintptr_t *p, size_t n) {
  if (w->nrec + n > REF_REUSE_MAX_WORDS) {
    w->nrec = REF_REUSE_MAX_WORDS + 1; /* over the limit: not recorded */
    return;
  }
  memcpy(w->rec + w->nrec, p, n * REF_WORD);
  w->nrec += (uint32_t)n;
}

static int word_cmp(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return (x > y) - (x < y);
}

/* Sorts w->rec and drops repeats: a word marked twice marks nothing more,
 * and a parked stack holds the same few pointers in several places (a
 * record's slot, its spilled registers), so most records then fit inline. */
static uint32_t dedup(uintptr_t *a, uint32_t n) {
  if (n > 16) {
    qsort(a, n, sizeof *a, word_cmp);
  } else {
    for (uint32_t i = 1; i < n; i++)
      for (uint32_t j = i; j > 0 && a[j - 1] > a[j]; j--) {
        uintptr_t t = a[j];
        a[j] = a[j - 1];
        a[j - 1] = t;
      }
  }
  uint32_t m = 0;
  for (uint32_t i = 0; i < n; i++)
    if (m == 0 || a[m - 1] != a[i]) a[m++] = a[i];
  return m;
}

/* Called after the stack's last words are flushed. A record that is over
 * the limit (counted before repeats are dropped), or whose words cannot be
 * allocated, is not kept: the stack is read, and recording tried, again
 * next cycle. */
void ref__reuse_end(ref__worker *w, ref_g *g) {
  w->recording = false;
  ref__reuse_forget(g);
  reuse_entry *e = &ref__reuse_entries[g->allg_index];
  ref_assert_internal(!e->ext); /* a G's old record is freed when dropped */
  uint32_t n = w->nrec;
  uintptr_t *ext = NULL;
  if (n <= REF_REUSE_MAX_WORDS) n = dedup(w->rec, n);
  if (n > REF_REUSE_MAX_WORDS || (n > INLINE_WORDS && !(ext = malloc(n * REF_WORD)))) {
    w->n.reuse_unrecorded++;
    g->scan_clean = REF_G_SEEN; /* the next scan tries again */
    return;
  }
  memcpy(ext ? ext : e->inl, w->rec, n * REF_WORD);
  e->ext = ext;
  e->n = n;
  e->scan = (uint32_t)ref__cfg.scan;
  w->n.reuse_bytes += entry_bytes(e);
  g->scan_clean = ext ? REF_G_CLEAN_EXT : REF_G_CLEAN;
}

void ref__reuse_shutdown(void) {
  for (size_t i = 0; i < table_cap; i++) free(ref__reuse_entries[i].ext); /* NULL unless held */
  free(ref__reuse_entries);
  ref__reuse_entries = NULL;
  table_cap = 0;
}

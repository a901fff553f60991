/*
 * trace.c: cycle timelines (ref.h's ref_trace_*). Each worker appends spans
 * to its own buffer, so recording takes no lock; the buffers are emptied when
 * a cycle starts and read after it ends, when no worker writes.
 */
#include "gc.h"

#include <string.h>

#define KIND_NAME(e, name) name,
static const char *const kind_names[] = {REF_TRACE_KINDS(KIND_NAME)};
#undef KIND_NAME

const char *ref_trace_kind_name(ref_trace_kind kind) {
  return (unsigned)kind < REF_NTRACE_KINDS ? kind_names[kind] : NULL;
}

void ref__trace_add(ref__worker *w, ref_trace_kind kind, uint64_t t0, uint64_t items) {
  if (w->ntrace == w->trace_cap) {
    w->trace_dropped++;
    return;
  }
  w->trace[w->ntrace++] = (ref_trace_event){t0, ref__nanotime(), items, (uint32_t)kind};
}

void ref__trace_reset(ref__worker *w) {
  w->ntrace = 0;
  w->trace_dropped = 0;
}

void ref__trace_free(void) {
  for (int i = 0; i < ref__workers_count(); i++) {
    ref__worker *w = ref__worker_get(i);
    free(w->trace);
    w->trace = NULL;
    w->ntrace = w->trace_cap = 0;
    w->trace_dropped = 0;
  }
}

int ref_trace_enable(size_t cap) {
  REF_RUNTIME_CALL();
  ref__trace_free();
  if (cap == 0) return 0;
  if (cap > UINT32_MAX) return ref__seterr("trace capacity %zu is over %u events", cap, UINT32_MAX);
  for (int i = 0; i < ref__workers_count(); i++) {
    ref__worker *w = ref__worker_get(i);
    w->trace = calloc(cap, sizeof *w->trace);
    if (!w->trace) {
      ref__trace_free();
      return ref__seterr("out of memory for %zu trace events per worker", cap);
    }
    w->trace_cap = (uint32_t)cap;
  }
  return 0;
}

size_t ref_trace_events(int i, const ref_trace_event **events, uint64_t *dropped) {
  REF_RUNTIME_CALL();
  if (i < 0 || i >= ref__workers_count()) {
    *events = NULL;
    if (dropped) *dropped = 0;
    return 0;
  }
  const ref__worker *w = ref__worker_get(i);
  *events = w->trace;
  if (dropped) *dropped = w->trace_dropped;
  return w->trace ? w->ntrace : 0;
}

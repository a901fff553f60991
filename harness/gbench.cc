// gbench.cc: the C API of gbench.h over Google Benchmark. The one C++ file of
// the project. Every entry point catches C++ exceptions and turns them into
// an error code plus a message in gb_error(); none escapes into C frames.
#include "gbench.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

// A registered benchmark as C sees it: the library's object, plus what
// Google Benchmark would otherwise assert on (Iterations and MinTime are
// mutually exclusive, checked with an abort inside the library).
struct gb_bench {
  benchmark::internal::Benchmark *bm;
  bool has_iterations;
  bool has_min_time;
};

namespace {

char errbuf[256];

// Owns the gb_bench wrappers; the benchmarks themselves belong to the library.
std::vector<std::unique_ptr<gb_bench>> &handles() {
  static std::vector<std::unique_ptr<gb_bench>> v;
  return v;
}

void set_error(const char *what, const char *detail) {
  std::snprintf(errbuf, sizeof errbuf, "%s: %s", what, detail);
}

// Runs f, converting any exception into an error message; returns false then.
template <typename F> bool guarded(const char *what, F &&f) {
  try {
    f();
    return true;
  } catch (const std::exception &e) {
    set_error(what, e.what());
  } catch (...) {
    set_error(what, "unknown C++ exception");
  }
  return false;
}

benchmark::State *S(gb_state *st) { return reinterpret_cast<benchmark::State *>(st); }
const benchmark::State *S(const gb_state *st) {
  return reinterpret_cast<const benchmark::State *>(st);
}

// Maps gbench.h's counter flags to benchmark::Counter's; false on unknown bits.
bool counter_flags(unsigned flags, benchmark::Counter::Flags *out, benchmark::Counter::OneK *k) {
  const unsigned known = GB_COUNTER_RATE | GB_COUNTER_AVG_THREADS | GB_COUNTER_ITER_INVARIANT |
                         GB_COUNTER_AVG_ITERATIONS | GB_COUNTER_INVERT | GB_COUNTER_1024;
  if (flags & ~known) return false;
  int f = benchmark::Counter::kDefaults;
  if (flags & GB_COUNTER_RATE) f |= benchmark::Counter::kIsRate;
  if (flags & GB_COUNTER_AVG_THREADS) f |= benchmark::Counter::kAvgThreads;
  if (flags & GB_COUNTER_ITER_INVARIANT) f |= benchmark::Counter::kIsIterationInvariant;
  if (flags & GB_COUNTER_AVG_ITERATIONS) f |= benchmark::Counter::kAvgIterations;
  if (flags & GB_COUNTER_INVERT) f |= benchmark::Counter::kInvert;
  *out = static_cast<benchmark::Counter::Flags>(f);
  *k = (flags & GB_COUNTER_1024) ? benchmark::Counter::kIs1024 : benchmark::Counter::kIs1000;
  return true;
}

// Google Benchmark 1.7.1 (Debian's) wraps its static default display
// reporter in a unique_ptr inside RunSpecifiedBenchmarks when none is passed,
// deleting it after the first run: a second run reads freed memory. So a
// reporter is always passed: the library's console reporter (it resets its
// state in ReportContext, so reuse is safe) or a fresh JSON/CSV one (those
// keep per-run state). Call only after benchmark::Initialize, which fixes
// the default reporter's format.
size_t run_with_display(const std::string &spec) {
  benchmark::BenchmarkReporter *def = benchmark::CreateDefaultDisplayReporter();
  std::unique_ptr<benchmark::BenchmarkReporter> fresh;
  if (dynamic_cast<benchmark::JSONReporter *>(def) != nullptr) {
    fresh.reset(new benchmark::JSONReporter);
  } else if (dynamic_cast<benchmark::ConsoleReporter *>(def) == nullptr) {
    BENCHMARK_DISABLE_DEPRECATED_WARNING
    fresh.reset(new benchmark::CSVReporter);
    BENCHMARK_RESTORE_DEPRECATED_WARNING
  }
  return benchmark::RunSpecifiedBenchmarks(fresh ? fresh.get() : def, spec);
}

}  // namespace

extern "C" {

const char *gb_error(void) { return errbuf; }

/* ---------------------------------------------------------------------------
 * Registration and settings
 * ------------------------------------------------------------------------- */

gb_bench *gb_register(const char *name, gb_fn fn, void *arg) {
  if (name == nullptr || *name == '\0' || fn == nullptr) {
    set_error("gb_register", "empty name or NULL function");
    return nullptr;
  }
  gb_bench *out = nullptr;
  guarded("gb_register", [&] {
    auto h = std::make_unique<gb_bench>();
    h->bm = benchmark::RegisterBenchmark(
        name, [fn, arg](benchmark::State &st) { fn(reinterpret_cast<gb_state *>(&st), arg); });
    h->has_iterations = h->has_min_time = false;
    handles().push_back(std::move(h));
    out = handles().back().get();
  });
  return out;
}

void gb_clear_registered(void) {
  guarded("gb_clear_registered", [] {
    benchmark::ClearRegisteredBenchmarks();
    handles().clear();
  });
}

gb_bench *gb_use_manual_time(gb_bench *b) {
  if (b) b->bm->UseManualTime();
  return b;
}

gb_bench *gb_use_real_time(gb_bench *b) {
  if (b) b->bm->UseRealTime();
  return b;
}

gb_bench *gb_iterations(gb_bench *b, int64_t n) {
  if (!b) return b;
  if (n <= 0 || b->has_min_time) {
    set_error("gb_iterations", n <= 0 ? "n must be > 0" : "min_time already set");
    return b;
  }
  b->bm->Iterations(n);
  b->has_iterations = true;
  return b;
}

gb_bench *gb_repetitions(gb_bench *b, int n) {
  if (!b) return b;
  if (n <= 0) {
    set_error("gb_repetitions", "n must be > 0");
    return b;
  }
  b->bm->Repetitions(n);
  return b;
}

gb_bench *gb_min_time(gb_bench *b, double seconds) {
  if (!b) return b;
  if (!(seconds > 0) || b->has_iterations) {
    set_error("gb_min_time", b->has_iterations ? "iterations already set" : "seconds must be > 0");
    return b;
  }
  b->bm->MinTime(seconds);
  b->has_min_time = true;
  return b;
}

gb_bench *gb_unit(gb_bench *b, gb_time_unit u) {
  static const benchmark::TimeUnit units[] = {benchmark::kNanosecond, benchmark::kMicrosecond,
                                              benchmark::kMillisecond, benchmark::kSecond};
  if (!b) return b;
  if (static_cast<unsigned>(u) > GB_S) {
    set_error("gb_unit", "unknown time unit");
    return b;
  }
  b->bm->Unit(units[u]);
  return b;
}

gb_bench *gb_arg(gb_bench *b, int64_t x) {
  if (b) guarded("gb_arg", [&] { b->bm->Arg(x); });
  return b;
}

gb_bench *gb_report_aggregates_only(gb_bench *b, bool v) {
  if (b) b->bm->ReportAggregatesOnly(v);
  return b;
}

gb_bench *gb_display_aggregates_only(gb_bench *b, bool v) {
  if (b) b->bm->DisplayAggregatesOnly(v);
  return b;
}

int gb_add_context(const char *key, const char *value) {
  if (key == nullptr || value == nullptr) {
    set_error("gb_add_context", "NULL key or value");
    return -1;
  }
  return guarded("gb_add_context", [&] { benchmark::AddCustomContext(key, value); }) ? 0 : -1;
}

/* ---------------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------------- */

int gb_initialize(int *argc, char **argv) {
  // The library keeps argv[0] as a bare pointer for its reports; point it at
  // a copy so the caller's argv need not outlive the runs.
  static std::string argv0;
  return guarded("gb_initialize",
                 [&] {
                   argv0 = *argc > 0 && argv[0] != nullptr ? argv[0] : "stackscan-bench";
                   benchmark::Initialize(argc, argv);
                   benchmark::BenchmarkReporter::Context::executable_name = argv0.c_str();
                 })
             ? 0
             : -1;
}

size_t gb_run_specified(void) {
  size_t n = static_cast<size_t>(-1);
  guarded("gb_run_specified", [&] { n = run_with_display(benchmark::GetBenchmarkFilter()); });
  return n;
}

size_t gb_run_matching(const char *filter) {
  if (filter == nullptr) return gb_run_specified();
  size_t n = static_cast<size_t>(-1);
  guarded("gb_run_matching", [&] { n = run_with_display(filter); });
  return n;
}

void gb_shutdown(void) {
  guarded("gb_shutdown", [] {
    handles().clear();
    benchmark::Shutdown();
  });
}

/* ---------------------------------------------------------------------------
 * Inside a benchmark function
 * ------------------------------------------------------------------------- */

bool gb_keep_running(gb_state *st) { return S(st)->KeepRunning(); }

bool gb_keep_running_batch(gb_state *st, int64_t n) { return S(st)->KeepRunningBatch(n); }

void gb_set_iteration_time(gb_state *st, double seconds) { S(st)->SetIterationTime(seconds); }

void gb_pause_timing(gb_state *st) { S(st)->PauseTiming(); }

void gb_resume_timing(gb_state *st) { S(st)->ResumeTiming(); }

int gb_counter(gb_state *st, const char *name, double value, unsigned flags) {
  benchmark::Counter::Flags f;
  benchmark::Counter::OneK k;
  if (name == nullptr || !counter_flags(flags, &f, &k)) {
    set_error("gb_counter", name == nullptr ? "NULL name" : "unknown flag bits");
    return -1;
  }
  return guarded("gb_counter", [&] { S(st)->counters[name] = benchmark::Counter(value, f, k); })
             ? 0
             : -1;
}

void gb_skip_with_error(gb_state *st, const char *msg) {
  S(st)->SkipWithError(msg != nullptr ? msg : "error");
}

bool gb_error_occurred(const gb_state *st) { return S(st)->error_occurred(); }

void gb_set_label(gb_state *st, const char *label) {
  guarded("gb_set_label", [&] { S(st)->SetLabel(label != nullptr ? label : ""); });
}

int64_t gb_iterations_done(const gb_state *st) { return S(st)->iterations(); }

int64_t gb_max_iterations(const gb_state *st) { return S(st)->max_iterations; }

int64_t gb_range(const gb_state *st, size_t i) { return S(st)->range(i); }

int gb_thread_index(const gb_state *st) { return S(st)->thread_index(); }

int gb_threads(const gb_state *st) { return S(st)->threads(); }

}  // extern "C"

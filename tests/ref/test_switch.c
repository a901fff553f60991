/*
 * The context switch (switch_<arch>_<abi>.S), on whatever ISA this is built
 * for: every goroutine keeps its callee-saved registers and its FP control
 * across switches and across collections run on the scheduler stack
 * (ref__call_on_stack), and a pointer that only a register holds at a
 * switch is seen by the conservative scan.
 *
 * The register test holds more values than the ABI has callee-saved
 * registers, read from volatile memory so the compiler cannot recompute
 * them: in an optimised build they sit in x19-x28 and d8-d15 (rbx, r12-r15
 * on x86-64) across every call. At -O0 they live on the stack instead and
 * the test proves less. Likewise the scan test: in the aarch64 release
 * build it fails when the scan skips the saved context; on x86-64 the frames
 * between hide() and the switch spill its pointers first, and it does not.
 */
#include "testutil.h"

#include <fenv.h>

#define NG 3
#define ROUNDS 200

static volatile uint64_t gin[NG][10];
static volatile double din[NG][8];
static int bad[NG];

/* Holds 10 integers and 8 doubles of goroutine i live across yields and
 * collections; counts the rounds where any differs from its source. */
static void hold(void *arg) {
  int i = (int)(intptr_t)arg;
  uint64_t a0 = gin[i][0], a1 = gin[i][1], a2 = gin[i][2], a3 = gin[i][3], a4 = gin[i][4];
  uint64_t a5 = gin[i][5], a6 = gin[i][6], a7 = gin[i][7], a8 = gin[i][8], a9 = gin[i][9];
  double d0 = din[i][0], d1 = din[i][1], d2 = din[i][2], d3 = din[i][3];
  double d4 = din[i][4], d5 = din[i][5], d6 = din[i][6], d7 = din[i][7];
  for (int r = 0; r < ROUNDS; r++) {
    if (r % 16 == 0) ref_gc();
    else ref_yield();
    bool ok = a0 == gin[i][0] && a1 == gin[i][1] && a2 == gin[i][2] && a3 == gin[i][3] &&
              a4 == gin[i][4] && a5 == gin[i][5] && a6 == gin[i][6] && a7 == gin[i][7] &&
              a8 == gin[i][8] && a9 == gin[i][9];
    ok = ok && d0 == din[i][0] && d1 == din[i][1] && d2 == din[i][2] && d3 == din[i][3] &&
         d4 == din[i][4] && d5 == din[i][5] && d6 == din[i][6] && d7 == din[i][7];
    bad[i] += !ok;
  }
}

static void test_callee_saved_registers_survive(void **state) {
  (void)state;
  tu_init();
  for (int i = 0; i < NG; i++) {
    for (int k = 0; k < 10; k++) gin[i][k] = 0x9e3779b97f4a7c15ull * (uint64_t)(i * 10 + k + 1);
    for (int k = 0; k < 8; k++) din[i][k] = 1.0 / (double)(i * 8 + k + 3);
    bad[i] = 0;
    assert_non_null(ref_go(hold, (void *)(intptr_t)i));
  }
  assert_int_equal(ref_run(), 0);
  for (int i = 0; i < NG; i++)
    if (bad[i]) fail_msg("goroutine %d: registers changed in %d of %d rounds", i, bad[i], ROUNDS);
  ref_shutdown();
}

static const int modes[NG] = {FE_UPWARD, FE_TOWARDZERO, FE_DOWNWARD};
static int mode_seen[NG][2];

/* Sets its own rounding mode, then checks it after a yield and after a
 * collection; first records the mode it started with. */
static void rounding(void *arg) {
  int i = (int)(intptr_t)arg;
  mode_seen[i][0] = fegetround();
  fesetround(modes[i]);
  ref_yield();
  ref_gc();
  ref_yield();
  mode_seen[i][1] = fegetround();
}

/* Each goroutine carries its own FP control (MXCSR and the x87 control word,
 * or FPCR): it starts in round-to-nearest whatever its creator set, and keeps
 * what it sets while others set theirs. */
static void test_fp_control_per_goroutine(void **state) {
  (void)state;
  tu_init();
  assert_int_equal(fesetround(FE_DOWNWARD), 0); /* the creator's mode is not inherited */
  for (int i = 0; i < NG; i++) assert_non_null(ref_go(rounding, (void *)(intptr_t)i));
  assert_int_equal(ref_run(), 0);
  assert_int_equal(fegetround(), FE_DOWNWARD); /* the scheduler's own, untouched */
  fesetround(FE_TONEAREST);
  for (int i = 0; i < NG; i++) {
    assert_int_equal(mode_seen[i][0], FE_TONEAREST);
    assert_int_equal(mode_seen[i][1], modes[i]);
  }
  ref_shutdown();
}

#define CANARY 0x5ca1ab1e0ddba11ull
static const ref_type leaf_t = {64, NULL, "test.leaf"};
static int survived;

static void fill(uint64_t *p) {
  assert_non_null(p);
  for (int k = 0; k < 8; k++) p[k] = CANARY + (uint64_t)k;
}

static bool intact(const uint64_t *p) {
  for (int k = 0; k < 8; k++)
    if (p[k] != CANARY + (uint64_t)k) return false;
  return true;
}

/* Keeps the only pointers to four fresh objects in locals (registers, or
 * spill slots of this frame) across collections that other garbage makes
 * worth reusing; poison shows whether an object was freed. */
static void hide(void *arg) {
  (void)arg;
  uint64_t *p0 = ref_alloc(&leaf_t), *p1 = ref_alloc(&leaf_t);
  uint64_t *p2 = ref_alloc(&leaf_t), *p3 = ref_alloc(&leaf_t);
  fill(p0), fill(p1), fill(p2), fill(p3);
  for (int r = 0; r < 8; r++) {
    for (int j = 0; j < 1000; j++) assert_non_null(ref_alloc(&leaf_t)); /* garbage */
    if (r & 1) ref_gc();   /* on the scheduler stack, through ref__call_on_stack */
    else ref_yield();      /* the collector runs from another goroutine meanwhile */
  }
  survived += intact(p0) && intact(p1) && intact(p2) && intact(p3);
}

static void collect(void *arg) {
  (void)arg;
  for (int r = 0; r < 8; r++) {
    ref_gc();
    ref_yield();
  }
}

static void test_pointer_in_register_is_scanned(void **state) {
  (void)state;
  tu_init(); /* conservative: the pointer has no frame record */
  survived = 0;
  for (int i = 0; i < 4; i++) assert_non_null(ref_go(hide, NULL));
  assert_non_null(ref_go(collect, NULL));
  assert_int_equal(ref_run(), 0);
  assert_int_equal(survived, 4);
  ref_shutdown();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_callee_saved_registers_survive),
      cmocka_unit_test(test_fp_control_per_goroutine),
      cmocka_unit_test(test_pointer_in_register_is_scanned),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

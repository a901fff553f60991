/*
 * sizeclasses.c: the small-object size classes, Go's table (runtime/
 * sizeclasses.go, Go 1.20): 67 classes from 8 bytes to 32 KiB, each with
 * the span length (pages) that keeps tail waste under 12.5%. Class 0 is
 * "large": one object per span.
 *
 * Go's divMagic, ^uint32(0)/size + 1, yields exact slot indices for every
 * offset inside a span of these classes (tests/ref/test_heap.c checks every
 * byte of every class).
 */
#include "heap.h"

const uint16_t ref__class_size[REF_NUM_CLASSES] = {
    0,     8,     16,    24,    32,    48,    64,    80,    96,    112,   128,   144,
    160,   176,   192,   208,   224,   240,   256,   288,   320,   352,   384,   416,
    448,   480,   512,   576,   640,   704,   768,   896,   1024,  1152,  1280,  1408,
    1536,  1792,  2048,  2304,  2688,  3072,  3200,  3456,  4096,  4864,  5376,  6144,
    6528,  6784,  6912,  8192,  9472,  9728,  10240, 10880, 12288, 13568, 14336, 16384,
    18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768};

const uint8_t ref__class_npages[REF_NUM_CLASSES] = {
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 2, 1, 2, 1, 3, 2, 3, 1, 3,
    2, 3, 4, 5, 6, 1, 7, 6, 5, 4, 3, 5, 7, 2, 9, 7, 5, 8, 3, 10, 7, 4};

uint8_t ref__size_class8[1024 / 8 + 1];
uint8_t ref__size_class128[(REF_MAX_SMALL_SIZE - 1024) / 128 + 1];

/* The smallest class holding size bytes, by linear search. */
static int class_search(size_t size) {
  int c = 1;
  while (ref__class_size[c] < size) c++;
  return c;
}

void ref__sizeclass_init(void) {
  for (size_t i = 0; i < sizeof ref__size_class8; i++)
    ref__size_class8[i] = (uint8_t)class_search(i == 0 ? 1 : i * 8);
  for (size_t i = 0; i < sizeof ref__size_class128; i++)
    ref__size_class128[i] = (uint8_t)class_search(1024 + i * 128);
}

# Cross-compiling for AArch64 Linux on an x86-64 Debian host: the cross
# compilers of gcc-aarch64-linux-gnu / g++-aarch64-linux-gnu, the libraries of
# Debian's arm64 architecture installed by multiarch (libcmocka-dev:arm64,
# libbenchmark-dev:arm64, libhwloc-dev:arm64: ci/bootstrap installs them), and
# qemu-user to run what is built. Used by the `aarch64` preset.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_ASM_COMPILER aarch64-linux-gnu-gcc)

# Multiarch puts the arm64 libraries under /usr/lib/aarch64-linux-gnu on the
# host's own root, so the root is the sysroot: search it for libraries,
# headers and packages, and the host for programs. CMAKE_LIBRARY_ARCHITECTURE
# keeps the searches in the arm64 directories.
set(CMAKE_FIND_ROOT_PATH /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# pkg-config (hwloc) reads the arm64 .pc files, not the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)

# ctest (and anything else that runs a built program through CMake) goes
# through qemu-user. -L names the root in which the guest's dynamic loader
# and libraries are found: the host's own, where multiarch put them.
find_program(STACKSCAN_QEMU_AARCH64 qemu-aarch64 REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${STACKSCAN_QEMU_AARCH64} -L /)
# The same with 64 KiB pages (-p: the page size the guest is told), as some
# arm64 kernels have; tests/CMakeLists.txt runs a few tests this way too.
set(STACKSCAN_EMULATOR_64K_PAGES ${STACKSCAN_QEMU_AARCH64} -L / -p 65536)

# Cross build for 64-bit ARM with Debian's cross toolchain (gcc-aarch64-linux-gnu,
# g++-aarch64-linux-gnu) and the arm64 libraries of multiarch (libfoo-dev:arm64,
# in /usr/lib/aarch64-linux-gnu): no sysroot, the host's /usr is shared.
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DBS_ENGINE_ONLY=ON
# The test programs run under qemu-user (`make test-arm64`).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# pkg-config answers for arm64 only: the multiarch .pc files and the
# architecture-independent ones, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
unset(ENV{PKG_CONFIG_PATH})

# Programs (cmake, pkg-config, qemu) come from the host; libraries and headers
# from the target's directories.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

# ctest and add_test() run the target's programs through qemu-user, with the
# multiarch loader and libc (libc6:arm64, which the arm64 -dev packages pull
# in: /lib/ld-linux-aarch64.so.1, /lib/aarch64-linux-gnu). Not -L
# /usr/aarch64-linux-gnu: that loader (libc6-arm64-cross) would still find
# libc.so.6 through /etc/ld.so.cache in /lib/aarch64-linux-gnu, and a loader
# and libc of two builds (2.36-8cross1, 2.36-9+deb12u14) share no private
# ABI: the first pthread_create spins forever.
find_program(BS_QEMU_AARCH64 qemu-aarch64)
if(BS_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${BS_QEMU_AARCH64} -L /)
endif()

#ifndef REPRISE_CALLOCATOR_H
#define REPRISE_CALLOCATOR_H

// glibc's allocator settings, which Swift's Glibc module does not expose (malloc.h).
#include <stdlib.h>  // defines __GLIBC__ where the C library is glibc
#if defined(__GLIBC__)
#include <malloc.h>

/// Serve allocations of `bytes` and more with mmap, returned to the system on free, and keep
/// glibc from raising that threshold as large blocks are freed. Returns 1 on success.
static inline int reprise_pin_mmap_threshold(int bytes) { return mallopt(M_MMAP_THRESHOLD, bytes); }
#else
static inline int reprise_pin_mmap_threshold(int bytes) { (void)bytes; return 0; }
#endif

#endif

#ifndef REPRISE_CALLOCATOR_H
#define REPRISE_CALLOCATOR_H

// glibc's allocator settings, which Swift's Glibc module does not expose (malloc.h).
#include <stdlib.h>  // defines __GLIBC__ where the C library is glibc
#if defined(__GLIBC__)
#include <malloc.h>

/// Serve allocations of `bytes` and more with mmap, returned to the system on free, and keep
/// glibc from raising that threshold as large blocks are freed. Returns 1 on success.
static inline int reprise_pin_mmap_threshold(int bytes) { return mallopt(M_MMAP_THRESHOLD, bytes); }

/// What the allocator holds, in bytes: `in_use` by live allocations (arenas and mmap'd blocks),
/// `free_held` freed but kept in the arenas (not returned to the system), `mapped` in mmap'd blocks.
/// Returns 1 where glibc can say (mallinfo2, glibc 2.33 and later), 0 otherwise.
static inline int reprise_malloc_stats(unsigned long long *in_use, unsigned long long *free_held, unsigned long long *mapped) {
#if __GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33)
    struct mallinfo2 m = mallinfo2();
    *in_use = (unsigned long long)m.uordblks + (unsigned long long)m.hblkhd;
    *free_held = (unsigned long long)m.fordblks;
    *mapped = (unsigned long long)m.hblkhd;
    return 1;
#else
    *in_use = 0; *free_held = 0; *mapped = 0;
    return 0;
#endif
}
#else
static inline int reprise_pin_mmap_threshold(int bytes) { (void)bytes; return 0; }
static inline int reprise_malloc_stats(unsigned long long *in_use, unsigned long long *free_held, unsigned long long *mapped) {
    *in_use = 0; *free_held = 0; *mapped = 0;
    return 0;
}
#endif

#endif

// glibc's malloc returns large freed blocks to the kernel (munmap, or trimming the heap top), so a
// product that allocates its n × n and n × d work matrices afresh page-faults and zero-fills them
// again every time. In a float32 solve at n = 1024 that was about 7% of the CPU time (perf: page
// faults, clear_page, memcg charging). Keeping blocks up to 32 MiB in the heap, and not trimming it,
// lets the next product reuse the same pages. Peak memory is unchanged: only what was already in use
// stays mapped. Larger blocks (the stored n × n matrices of long sequences) are still mmap'ed.
#pragma once

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace lipattn {

inline void keep_freed_buffers_for_reuse() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest value glibc accepts on 64-bit
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

}  // namespace lipattn

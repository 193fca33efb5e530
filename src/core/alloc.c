#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mml/alloc.h"
#include "mml/error.h"

static atomic_uint_fast64_t g_count;

static void *counted(void *p, size_t n)
{
    if (!p) {
        mml_error(MML_ERR_NOMEM, "out of memory allocating %zu bytes", n);
        return NULL;
    }
    atomic_fetch_add_explicit(&g_count, 1, memory_order_relaxed);
    return p;
}

void *mml_malloc(size_t n) { return counted(malloc(n ? n : 1), n); }

void *mml_calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) {
        mml_error(MML_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    return counted(calloc(count ? count : 1, size ? size : 1), count * size);
}

void *mml_realloc(void *p, size_t n) { return counted(realloc(p, n ? n : 1), n); }

void *mml_aligned_alloc(size_t n)
{
    size_t rounded = (n + 63) & ~(size_t)63;
    if (rounded < n) {
        mml_error(MML_ERR_NOMEM, "allocation of %zu bytes overflows", n);
        return NULL;
    }
    return counted(aligned_alloc(64, rounded ? rounded : 64), n);
}

void mml_free(void *p) { free(p); }

void *mml_pages_alloc(size_t n)
{
    void *p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return counted(p == MAP_FAILED ? NULL : p, n);
}

void mml_pages_free(void *p, size_t n)
{
    if (p) munmap(p, n ? n : 1);
}

void mml_pages_release(void *p, size_t n)
{
    /* MADV_DONTNEED, not posix_madvise: glibc makes POSIX_MADV_DONTNEED a no-op. */
    if (p) (void)madvise(p, n ? n : 1, MADV_DONTNEED);
}

char *mml_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = mml_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

uint64_t mml_alloc_count(void) { return atomic_load(&g_count); }

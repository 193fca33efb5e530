/* mml/alloc.h: every heap allocation of libmml goes through these, so tests
 * can count them (a training step after warm-up must perform none). */
#ifndef MML_ALLOC_H
#define MML_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *mml_malloc(size_t n);             /* NULL and an error message on failure */
void *mml_calloc(size_t count, size_t size);
void *mml_realloc(void *p, size_t n);
void *mml_aligned_alloc(size_t n);      /* 64-byte aligned; free with mml_free */
void mml_free(void *p);
/* Whole pages from the system (page-aligned, zeroed), given back by
 * mml_pages_free(p, n) with the same n: big buffers that are replaced, such
 * as the step arena's warm-up chunks, do not stay resident in malloc's heap. */
void *mml_pages_alloc(size_t n);
void mml_pages_free(void *p, size_t n);
/* Gives the memory of pages from mml_pages_alloc (or of any private mapping:
 * p page-aligned) back to the system but keeps them mapped: they read as zeros
 * when touched again (a mapped file: its contents, reread), and reusing them is
 * not an allocation. Best effort (a failure only leaves the pages resident). */
void mml_pages_release(void *p, size_t n);
char *mml_strdup(const char *s);

/* Number of successful allocations since the process started (all threads). */
uint64_t mml_alloc_count(void);

#endif

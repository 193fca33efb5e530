/* mml/safetensors.h: read and write the safetensors format
 * (8-byte little-endian header length, JSON header, raw little-endian data).
 *
 * Loading validates every header field against the file size before any data
 * is touched: a bad file gives MML_ERR_FORMAT and a message naming the file and
 * what is wrong. Writing goes to "PATH.tmp" and is renamed when complete.
 *
 *     mml_safetensors *st;
 *     if (mml_safetensors_load("model.safetensors", &st) != MML_OK) { ...mml_last_error()... }
 *     mml_tensor *w = mml_safetensors_tensor(st, "fc.weight", MML_F32);  // heap copy
 *     mml_safetensors_free(st);
 */
#ifndef MML_SAFETENSORS_H
#define MML_SAFETENSORS_H

#include "mml/tensor.h"

typedef struct mml_safetensors mml_safetensors;

typedef struct mml_st_entry {
    const char *name;
    mml_dtype dtype;
    int ndim;
    int64_t shape[MML_MAX_DIMS];
    const void *data; /* little-endian bytes inside the loaded file */
    size_t nbytes;
} mml_st_entry;

mml_status mml_safetensors_load(const char *path, mml_safetensors **out);
/* Same, with the file mapped rather than read: the data stays in the page
 * cache, each page counted in the process's memory once touched, so a caller
 * that reads a few tensors, or copies large ones a slice at a time and drops
 * each slice, never holds the file twice. The mapping lives until
 * mml_safetensors_free; the file must not be truncated meanwhile. A file that
 * cannot be mapped is loaded instead. */
mml_status mml_safetensors_map(const char *path, mml_safetensors **out);
/* Lets the pages of [p, p + n) of a mapped file go (no-op for a loaded one);
 * reading them again faults them back in from the page cache. */
void mml_safetensors_drop(const mml_safetensors *st, const void *p, size_t n);
/* Same as mml_safetensors_load, from memory (the fuzz target's entry); `what` names it in errors. */
mml_status mml_safetensors_parse(const void *bytes, size_t len, const char *what,
                                 mml_safetensors **out);
void mml_safetensors_free(mml_safetensors *st);

int mml_safetensors_count(const mml_safetensors *st);
const mml_st_entry *mml_safetensors_at(const mml_safetensors *st, int i);
const mml_st_entry *mml_safetensors_find(const mml_safetensors *st, const char *name);
/* "__metadata__" string values; NULL when absent. */
const char *mml_safetensors_meta(const mml_safetensors *st, const char *key);
int mml_safetensors_meta_count(const mml_safetensors *st);
const char *mml_safetensors_meta_key(const mml_safetensors *st, int i);

/* Heap copy of a tensor converted to `as` (F32 from any float or integer
 * dtype; I32/I64 from integer dtypes). NULL and an error naming the file and
 * tensor if it is absent or cannot be converted. */
mml_tensor *mml_safetensors_tensor(const mml_safetensors *st, const char *name, mml_dtype as);
/* Copies into an existing tensor of the same shape (loading parameters).
 * Both copies let a mapped file's pages of that tensor go (mml_safetensors_drop). */
mml_status mml_safetensors_read_into(const mml_safetensors *st, const char *name,
                                     mml_tensor *dst);

typedef struct mml_st_writer mml_st_writer;
mml_st_writer *mml_st_writer_create(void);
void mml_st_writer_free(mml_st_writer *w);
/* Data is copied; F32 data may be stored as F16 or BF16 by passing that dtype in `store_as`. */
mml_status mml_st_writer_add(mml_st_writer *w, const char *name, const mml_tensor *t,
                             mml_dtype store_as);
mml_status mml_st_writer_add_raw(mml_st_writer *w, const char *name, mml_dtype dt, int ndim,
                                 const int64_t *shape, const void *data);
mml_status mml_st_writer_meta(mml_st_writer *w, const char *key, const char *value);
mml_status mml_st_writer_save(mml_st_writer *w, const char *path);

#endif

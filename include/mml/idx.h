/* mml/idx.h: the IDX format of MNIST and Fashion-MNIST, plain or gzip.
 *
 *     mml_tensor *images = mml_idx_load("train-images-idx3-ubyte.gz"); // U8 [60000, 28, 28]
 *
 * The header's dimensions must agree exactly with the data that follows; a
 * gzip stream is inflated with a cap derived from those dimensions, so a
 * decompression bomb is refused before it is expanded. */
#ifndef MML_IDX_H
#define MML_IDX_H

#include <stddef.h>

#include "mml/tensor.h"

/* Heap tensor: U8 for unsigned bytes, I8, I32 for int16/int32 (widened), F32
 * for float/double; NULL and "path: what is wrong" otherwise. */
mml_tensor *mml_idx_load(const char *path);
/* From memory (gzip or plain); `what` names it in errors. */
mml_tensor *mml_idx_parse(const void *bytes, size_t len, const char *what);

#endif

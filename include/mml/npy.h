/* mml/npy.h: NumPy .npy arrays and .npz archives of them.
 *
 *     mml_tensor *x = mml_npy_load("features.npy", MML_F32, NULL);   // any numeric dtype -> F32
 *     mml_npz *z;
 *     if (mml_npz_open("data.npz", &z) != MML_OK) ...             // errors name the file
 *     for (int i = 0; i < mml_npz_count(z); i++) puts(mml_npz_name(z, i));   // "x_train.npy", ...
 *     mml_tensor *y = mml_npz_load(z, "y_train", MML_I64);        // ".npy" may be left off
 *     mml_npz_free(z);
 *
 * .npy: format versions 1.0, 2.0 and 3.0; the header dictionary is parsed
 * strictly (exactly 'descr', 'fortran_order' and 'shape'; no evaluation) and
 * the data must be exactly shape x item size bytes. Little-endian dtypes
 * f2 f4 f8, i1 i2 i4 i8, u1 u2 u4, b1; big-endian ('>f4'), structured,
 * string, object and complex arrays are refused by name. Fortran-ordered
 * arrays (np.save of a transposed array writes one) are transposed into row
 * order, so the tensor always has the shape NumPy reports.
 *
 * Loaded dtype (`as`):
 *   MML_F32            any of the above (f8 rounded, integers converted);
 *   MML_I64, MML_I32   integer and boolean arrays (labels, ids); a value that
 *                      does not fit I32 is an error; float arrays are refused;
 *   MML_U8             u1 and b1 only (images);
 *   MML_NPY_NATIVE     the closest: floats -> F32, u1/b1 -> U8, i1 i2 u2 i4 -> I32,
 *                      i8 u4 -> I64.
 *
 * .npz: a zip archive (stored or deflate) read through its central directory;
 * each member's declared size must be at most MML_NPY_MAX_BYTES and within
 * deflate's possible ratio of its compressed size, it may not inflate past
 * that size, and its CRC-32 must match.
 *
 * Thread safety: an mml_npz may be read from several threads at once. */
#ifndef MML_NPY_H
#define MML_NPY_H

#include <stddef.h>

#include "mml/tensor.h"

#define MML_NPY_NATIVE MML_DTYPE_COUNT
#define MML_NPY_MAX_BYTES ((size_t)1 << 31) /* one array, and one .npz member */

typedef struct mml_npy_info {
    int version;                  /* 1, 2 or 3 */
    char descr[8];                /* as written: "<f4", "|u1" */
    bool fortran_order;
    int ndim;
    int64_t shape[MML_MAX_DIMS];
    size_t data_offset, data_bytes;
} mml_npy_info;

/* Header only (checks the data length too). `what` names the file in errors. */
mml_status mml_npy_header(const void *bytes, size_t len, const char *what, mml_npy_info *info);
/* The array converted to `as`; its header into *info unless info is NULL. */
mml_tensor *mml_npy_parse(const void *bytes, size_t len, int as, const char *what, mml_npy_info *info);
mml_tensor *mml_npy_load(const char *path, int as, mml_npy_info *info);

typedef struct mml_npz mml_npz;

mml_status mml_npz_open(const char *path, mml_npz **out);
/* From memory (copied); `what` names it in errors. */
mml_status mml_npz_parse(const void *bytes, size_t len, const char *what, mml_npz **out);
void mml_npz_free(mml_npz *z);
int mml_npz_count(const mml_npz *z);
const char *mml_npz_name(const mml_npz *z, int i); /* as stored: "x.npy" */
/* By name, with or without ".npy"; errors name the archive and the member. */
mml_tensor *mml_npz_load(const mml_npz *z, const char *name, int as);
/* Member i's array and, if info is not NULL, its header. */
mml_tensor *mml_npz_load_at(const mml_npz *z, int i, int as, mml_npy_info *info);

/* True when the bytes start like a .npy file or a zip archive. */
bool mml_npy_sniff(const void *bytes, size_t len);
bool mml_npz_sniff(const void *bytes, size_t len);

#endif

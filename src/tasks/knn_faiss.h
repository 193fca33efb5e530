/* Internal: the FAISS side of mml_knn_index (knn_faiss.cpp, compiled when
 * CMake finds libfaiss-dev). knn.c checks the arguments and fills in the
 * options' defaults before calling; threads is the OpenMP thread count. */
#ifndef MML_TASKS_KNN_FAISS_H
#define MML_TASKS_KNN_FAISS_H

#include <stdint.h>

#include "mml/knn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mml_faiss_index mml_faiss_index;

mml_status mml_faiss_build(const float *x, int64_t n, int64_t dim, const mml_knn_options *o, int threads,
                           mml_faiss_index **out);
mml_status mml_faiss_search(const mml_faiss_index *ix, const float *q, int64_t nq, int k, int threads, int64_t *rows,
                            float *scores);
void mml_faiss_free(mml_faiss_index *ix);

#ifdef __cplusplus
}
#endif
#endif

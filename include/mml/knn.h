/* mml/knn.h: exact k-nearest-neighbour search by inner product (cosine for
 * unit vectors), a scan of the index split over the thread pool. */
#ifndef MML_KNN_H
#define MML_KNN_H

#include <stdint.h>

#include "mml/error.h"

/* The k rows of index [n, dim] with the highest inner product with q [dim],
 * best first, into rows[] and scores[] (ties: the lower row first); returns
 * how many (min(k, n)). */
int mml_knn_search(const float *index, int64_t n, int64_t dim, const float *q, int k, int64_t *rows, float *scores);

#endif

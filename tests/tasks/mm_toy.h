/* A small synthetic image + audio set for the task tests: 3 classes, a bright
 * square in one of three places, a tone of 300 (c + 1) Hz and a sentence
 * saying where the square is; every 7th
 * sample lacks its audio. */
#ifndef MML_TESTS_MM_TOY_H
#define MML_TESTS_MM_TOY_H

#include <stddef.h>

#define TST_MM_TOY_CLASSES 3

/* The text of each class's samples. */
extern const char *const tst_mm_toy_text[TST_MM_TOY_CLASSES];

/* Writes train (45), val (9) and test (21) manifests with their files into a
 * fresh temporary dir; returns dir. */
const char *tst_mm_toy_data(char *dir, size_t cap);

#endif

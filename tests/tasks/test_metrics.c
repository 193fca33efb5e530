#include "mml/metrics.h"
#include "test.h"

TEST(metrics_match_hand_computed_sklearn_values)
{
    /* truth:     0 0 0 1 1 2 2 2 2 ; predicted: 0 1 0 1 1 2 0 2 1
     * class 0: tp 2, pred 3, actual 3 -> p 2/3, r 2/3
     * class 1: tp 2, pred 4, actual 2 -> p 1/2, r 1
     * class 2: tp 2, pred 2, actual 4 -> p 1,   r 1/2 */
    int t[] = { 0, 0, 0, 1, 1, 2, 2, 2, 2 }, p[] = { 0, 1, 0, 1, 1, 2, 0, 2, 1 };
    mml_confusion cm;
    CHECK_OK(mml_confusion_init(&cm, 4)); /* class 3 never appears: zero_division = 0 */
    for (int i = 0; i < 9; i++) mml_confusion_add(&cm, t[i], p[i]);
    mml_class_metrics pc[4];
    mml_metrics m = mml_metrics_compute(&cm, pc);
    CHECK_NEAR(m.accuracy, 6.0 / 9.0, 1e-12);
    CHECK_NEAR(pc[1].precision, 0.5, 1e-12);
    CHECK_NEAR(pc[1].f1, 2.0 / 3.0, 1e-12);
    CHECK_NEAR(pc[2].f1, 2.0 / 3.0, 1e-12);
    CHECK(pc[3].f1 == 0.0 && pc[3].support == 0);
    CHECK_NEAR(m.macro_f1, (2.0 / 3.0 * 3) / 4.0, 1e-12);
    CHECK_NEAR(m.macro_precision, (2.0 / 3.0 + 0.5 + 1.0) / 4.0, 1e-12);
    CHECK_NEAR(m.micro_f1, m.accuracy, 1e-12);
    mml_confusion_free(&cm);

    float scores[] = { 0.1f, 0.5f, 0.4f, /* truth 2: rank 2 */ 0.9f, 0.05f, 0.05f /* truth 0: rank 1 */ };
    int32_t truth[] = { 2, 0 };
    CHECK_NEAR(mml_topk_accuracy(scores, truth, 2, 3, 1), 0.5, 1e-12);
    CHECK_NEAR(mml_topk_accuracy(scores, truth, 2, 3, 2), 1.0, 1e-12);
}

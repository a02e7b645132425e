/* The engine context: models loaded on one bs_ctx share its compute
 * threads, so three loaded models run on exactly the context's threads
 * (counted in /proc/self/task by their name), and each answers as it does
 * on a context of its own. */
#include "testutil.h"

#include "bertstudio/model.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Threads of this process named "bs-compute" (the pool's workers). */
static int compute_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[300], name[64] = "";
        snprintf(p, sizeof p, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(p, "r");
        if (!f) continue; /* the thread ended meanwhile */
        if (fgets(name, sizeof name, f) && !strcmp(name, "bs-compute\n")) n++;
        fclose(f);
    }
    closedir(d);
    return n;
}

/* compute_threads() once the threads just joined have left /proc: the kernel
 * wakes pthread_join (clearing the thread's tid) before it unlists the task,
 * and under qemu-user (make test-arm64) the host thread runs on for a while
 * after the guest's has ended. Waits up to 5 s for want. */
static int compute_threads_after_join(int want)
{
    int n = compute_threads();
    for (int i = 0; i < 500 && n != want; i++) {
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
        n = compute_threads();
    }
    return n;
}

static const char *const models[] = {"tiny-bert-classification", "tiny-bert-ner",
                                     "tiny-bert-embeddings"};

/* The last hidden state of one short sequence. */
static void hidden_of(const bs_model *m, float *out, int32_t *n_out)
{
    const int32_t ids[] = {2, 1500, 1200, 3};
    bs_seq s = {ids, NULL, 4};
    bs_batch b = {&s, 1};
    bs_model_outputs o;
    bs_model_outputs_init(&o);
    o.want = BS_OUT_HIDDEN;
    bs_err err = {0};
    assert_int_equal(bs_model_forward(m, &b, &o, &err), 0);
    *n_out = o.total_tokens * o.hidden_size;
    memcpy(out, o.last_hidden_state, (size_t)*n_out * sizeof *out);
    bs_model_outputs_release(&o);
}

static void test_three_models_share_the_pool(void **state)
{
    (void)state;
    int before = compute_threads();
    bs_ctx *ctx = NULL;
    bs_err err = {0};
    bs_ctx_opts co = {.n_threads = 3};
    assert_int_equal(bs_ctx_new(&co, &ctx, &err), 0);
    assert_int_equal(bs_ctx_n_threads(ctx), 3);
    /* The caller of a forward pass is the pool's third thread. */
    assert_int_equal(compute_threads() - before, 2);
    bs_model *m[3] = {0};
    bs_model_opts mo;
    bs_model_opts_default(&mo);
    mo.ctx = ctx;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(bs_model_load(bs_test_fixture("models/%s", models[i]), &mo, &m[i], &err),
                         0);
        assert_int_equal(bs_model_n_threads(m[i]), 3);
    }
    assert_int_equal(bs_ctx_n_models(ctx), 3);
    assert_int_equal(compute_threads() - before, bs_ctx_n_threads(ctx) - 1);
    /* Same answers as on a context of the model's own. */
    for (int i = 0; i < 3; i++) {
        bs_model *alone = NULL;
        bs_model_opts ao;
        bs_model_opts_default(&ao);
        ao.n_threads = 1;
        assert_int_equal(bs_model_load(bs_test_fixture("models/%s", models[i]), &ao, &alone, &err),
                         0);
        static float a[4096], b[4096];
        int32_t na, nb;
        hidden_of(m[i], a, &na);
        hidden_of(alone, b, &nb);
        assert_int_equal(na, nb);
        for (int32_t k = 0; k < na; k++) assert_true(fabsf(a[k] - b[k]) <= 1e-5f);
        bs_model_free(alone);
    }
    for (int i = 0; i < 3; i++) bs_model_free(m[i]);
    assert_int_equal(bs_ctx_n_models(ctx), 0);
    bs_ctx_free(ctx);
    assert_int_equal(compute_threads_after_join(before), before);
}

/* Without a context, a model starts threads of its own (the old way, kept
 * for callers that load one model). */
static void test_model_without_ctx_owns_its_threads(void **state)
{
    (void)state;
    int before = compute_threads();
    bs_model_opts mo;
    bs_model_opts_default(&mo);
    mo.n_threads = 2;
    bs_model *m = NULL;
    bs_err err = {0};
    assert_int_equal(bs_model_load(bs_test_fixture("models/%s", models[0]), &mo, &m, &err), 0);
    assert_int_equal(bs_model_n_threads(m), 2);
    assert_int_equal(compute_threads() - before, 1);
    bs_model_free(m);
    assert_int_equal(compute_threads_after_join(before), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_models_share_the_pool),
        cmocka_unit_test(test_model_without_ctx_owns_its_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

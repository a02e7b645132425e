/* server/render.c against the JSON adaptor of the library: every case of
 * the pipeline fixtures run into its typed result, rendered in our
 * envelope, must be byte for byte bs_json_write of the envelope around
 * bs_task_result_json (what the CLI prints), float32 under "embeddings" and
 * "features"; and the pieces a stream sends, joined, are the whole answer. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertstudio/pipeline_json.h"
#include "server/render.h"
#include "util/json.h"

static char name[32][128];
static bs_pipeline_ctx *ctx[32];
static size_t n;

static bs_pipeline_ctx *load(const char *model)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(name[i], model)) return ctx[i];
    assert_true(n < 32);
    bs_err err = {0};
    bs_model_opts opts = {.n_threads = 1};
    if (bs_pipeline_ctx_load(bs_test_fixture("models/%s", model), &opts, &ctx[n], &err)) {
        print_error("loading %s: %s\n", model, err.msg);
        fail();
    }
    snprintf(name[n], sizeof name[n], "%s", model);
    return ctx[n++];
}

/* One case: rendered whole (one piece after another into one buffer) and
 * through the adaptor. */
static void check_case(const json_t *c, bs_task task, size_t *checked)
{
    const char *model = json_string_value(json_object_get(c, "model"));
    const json_t *request = json_object_get(c, "request");
    bs_task_result res;
    bs_err err = {0};
    if (bs_pipeline_run_request(load(model), task, request, &res, &err)) return; /* error cases */
    json_t *data = bs_task_result_json(&res);
    assert_non_null(data);
    json_t *env = json_pack("{s:b, s:o}", "success", 1, "data", data);
    static const char *const float_keys[] = {"embeddings", "features", NULL};
    bs_buf want, got;
    bs_buf_init(&want);
    bs_buf_init(&got);
    assert_int_equal(bs_json_write(env, float_keys, &want), 0);
    json_decref(env);

    bs_render r;
    bs_render_opts o = {.shape = BS_SHAPE_ENVELOPE};
    assert_int_equal(bs_render_begin(&r, &res, &o), 0);
    size_t pieces = 0;
    while (bs_render_next(&r, &got)) pieces++;
    assert_true(pieces >= 2);
    assert_false(got.oom);
    if (got.len != want.len || memcmp(got.data, want.data, want.len)) {
        print_error("%s: rendered\n%.*s\nadaptor\n%.*s\n",
                    json_string_value(json_object_get(c, "id")), (int)got.len, got.data,
                    (int)want.len, want.data);
        fail();
    }
    assert_int_equal(bs_render_overhead(&r), strlen("{\"success\":true,\"data\":}"));
    bs_render_free(&r);
    bs_buf_free(&want);
    bs_buf_free(&got);
    (*checked)++;
}

static void test_fixture_cases_render_as_the_adaptor(void **state)
{
    (void)state;
    static const char *const files[] = {"classification", "ner",        "qa",
                                        "fill-mask",      "embeddings", "features"};
    size_t checked = 0;
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        bs_task task;
        bs_err err = {0};
        assert_int_equal(bs_task_from_name(files[f], &task, &err), 0);
        FILE *fp = fopen(bs_test_fixture("pipelines/%s.jsonl", files[f]), "r");
        assert_non_null(fp);
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, fp) > 0) {
            json_t *c = json_loads(line, 0, NULL);
            assert_non_null(c);
            check_case(c, task, &checked);
            json_decref(c);
        }
        free(line);
        fclose(fp);
    }
    assert_true(checked >= 50);
    for (size_t i = 0; i < n; i++) bs_pipeline_ctx_free(ctx[i]);
    n = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_cases_render_as_the_adaptor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The model-independent parts of the pipelines: probabilities, rankings,
 * text helpers, NER aggregation, QA span scoring and windows, pooling, and
 * greedy / beam search driven by a small deterministic Markov "model". */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/internal.h"

static void test_softmax_sigmoid(void **s)
{
    (void)s;
    float x[3] = {1, 2, 3};
    double p[3], lp[3];
    bs_pl_softmax(x, 3, p);
    double z = exp(1) + exp(2) + exp(3);
    for (int i = 0; i < 3; i++) assert_true(fabs(p[i] - exp(i + 1) / z) < 1e-12);
    bs_pl_log_softmax(x, 3, lp);
    for (int i = 0; i < 3; i++) assert_true(fabs(lp[i] - log(p[i])) < 1e-12);
    assert_true(fabs(bs_pl_sigmoid(0) - 0.5) < 1e-15);
    assert_true(fabs(bs_pl_sigmoid(2) - 1 / (1 + exp(-2))) < 1e-15);
    float big[2] = {1000, 1001}; /* shifted: no overflow */
    bs_pl_softmax(big, 2, p);
    assert_true(fabs(p[1] - 1 / (1 + exp(-1))) < 1e-12);
}

static void test_argsort_is_stable_descending(void **s)
{
    (void)s;
    double v[7] = {0.1, 0.5, 0.3, 0.5, 0.9, 0.1, 0.3};
    size_t *o = bs_pl_argsort_desc(v, 7);
    size_t want[7] = {4, 1, 3, 2, 6, 0, 5};
    for (int i = 0; i < 7; i++) assert_int_equal(o[i], want[i]);
    free(o);
    assert_int_equal(bs_pl_argmax(v, 7), 4);
    double tie[3] = {2, 2, 1};
    assert_int_equal(bs_pl_argmax(tie, 3), 0);
}

static void test_text_helpers(void **s)
{
    (void)s;
    char t[] = "hello , world . it 's ok ? yes ! i do n't ' quote ' they 're we 've i 'm";
    bs_pl_clean_up_tokenization(t);
    assert_string_equal(t, "hello, world. it's ok? yes! i don't'quote'they're we've i'm");
    const char *u = "\u3000\t hi there\u00a0\n";
    size_t b, e;
    bs_pl_strip(u, strlen(u), &b, &e);
    assert_int_equal(e - b, 8);
    assert_memory_equal(u + b, "hi there", 8);
    bs_pl_strip("   ", 3, &b, &e);
    assert_int_equal(e, b);
    char *lo = bs_pl_lower("PaRIS Ünïcode", strlen("PaRIS Ünïcode"));
    assert_string_equal(lo, "paris ünïcode");
    free(lo);
    assert_int_equal(bs_pl_cp_to_byte("aé🙂b", strlen("aé🙂b"), 3), 7);
}

/* WordPiece-like decoder for the tests: "##x" glues, others join with " ". */
static char *join_words(void *user, const bs_ner_token *t, size_t from, size_t to)
{
    (void)user;
    char *out = calloc(256, 1);
    for (size_t i = from; i < to; i++) {
        const char *w = t[i].word;
        if (!strncmp(w, "##", 2))
            w += 2;
        else if (i > from)
            strcat(out, " ");
        strcat(out, w);
    }
    return out;
}

enum { O_, B_PER, I_PER, B_LOC, I_LOC, NL };
static const char *const labels[NL] = {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"};

/* John Sm ##ith lives in New York: probabilities chosen so that first,
 * average and max disagree on the word "Smith". */
static double probs[7][NL] = {
    {0.05, 0.80, 0.05, 0.05, 0.05}, /* John  B-PER */
    {0.10, 0.10, 0.50, 0.20, 0.10}, /* Sm    I-PER .50 */
    {0.05, 0.05, 0.25, 0.05, 0.60}, /* ##ith I-LOC .60 (max picks this token) */
    {0.90, 0.02, 0.03, 0.03, 0.02}, /* lives O */
    {0.70, 0.10, 0.10, 0.05, 0.05}, /* in    O */
    {0.10, 0.10, 0.10, 0.60, 0.10}, /* New   B-LOC */
    {0.10, 0.10, 0.10, 0.10, 0.60}, /* York  I-LOC */
};
static const char *const words[7] = {"John", "Sm", "##ith", "lives", "in", "New", "York"};
static const size_t spans[7][2] = {{0, 4}, {5, 7}, {7, 10}, {11, 16}, {17, 19}, {20, 23}, {24, 28}};

static json_t *aggregate(bs_ner_aggregation agg, const char *const *ignore, size_t n_ignore)
{
    bs_ner_token t[7];
    for (int i = 0; i < 7; i++)
        t[i] = (bs_ner_token){i + 1, 100 + i, words[i], spans[i][0], spans[i][1], i == 2, probs[i]};
    json_t *out = json_array();
    bs_err err = {0};
    assert_int_equal(
        bs_ner_aggregate(t, 7, labels, NL, agg, ignore, n_ignore, join_words, NULL, out, &err), 0);
    return out;
}

static void expect_entity(json_t *a, size_t i, const char *key, const char *name, const char *word,
                          int start, int end, double score)
{
    json_t *e = json_array_get(a, i);
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, key)), name);
    assert_string_equal(json_string_value(json_object_get(e, "word")), word);
    assert_int_equal(json_integer_value(json_object_get(e, "start")), start);
    assert_int_equal(json_integer_value(json_object_get(e, "end")), end);
    assert_true(fabs(json_real_value(json_object_get(e, "score")) - score) < 1e-12);
}

static void test_ner_none_and_simple(void **s)
{
    (void)s;
    const char *ign[] = {"O"};
    json_t *a = aggregate(BS_NER_AGG_NONE, ign, 1);
    assert_int_equal(json_array_size(a), 5); /* lives, in are O */
    expect_entity(a, 2, "entity", "I-LOC", "##ith", 7, 10, 0.60);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 2), "index")), 3);
    json_decref(a);
    a = aggregate(BS_NER_AGG_SIMPLE, ign, 1);
    /* John+Sm group (PER), ##ith (LOC, I- but tag differs), New York (LOC) */
    assert_int_equal(json_array_size(a), 3);
    expect_entity(a, 0, "entity_group", "PER", "John Sm", 0, 7, (0.80 + 0.50) / 2);
    expect_entity(a, 1, "entity_group", "LOC", "ith", 7, 10, 0.60);
    expect_entity(a, 2, "entity_group", "LOC", "New York", 20, 28, (0.60 + 0.60) / 2);
    json_decref(a);
}

static void test_ner_word_strategies(void **s)
{
    (void)s;
    const char *ign[] = {"O"};
    json_t *a = aggregate(BS_NER_AGG_FIRST, ign, 1); /* Smith = Sm's I-PER .50 */
    assert_int_equal(json_array_size(a), 2);
    expect_entity(a, 0, "entity_group", "PER", "John Smith", 0, 10, (0.80 + 0.50) / 2);
    json_decref(a);
    a = aggregate(BS_NER_AGG_MAX, ign, 1); /* Smith = ##ith's I-LOC .60 */
    assert_int_equal(json_array_size(a), 3);
    expect_entity(a, 1, "entity_group", "LOC", "Smith", 5, 10, 0.60);
    json_decref(a);
    a = aggregate(BS_NER_AGG_AVERAGE, ign, 1); /* mean: I-PER .375 vs I-LOC .35 */
    assert_int_equal(json_array_size(a), 2);
    expect_entity(a, 0, "entity_group", "PER", "John Smith", 0, 10, (0.80 + 0.375) / 2);
    json_decref(a);
    const char *ign_per[] = {"PER"}; /* replaces the default: O groups appear */
    a = aggregate(BS_NER_AGG_FIRST, ign_per, 1);
    assert_int_equal(json_array_size(a), 2);
    expect_entity(a, 0, "entity_group", "O", "lives in", 11, 19, (0.90 + 0.70) / 2);
    json_decref(a);
}

static void test_qa_window_spans(void **s)
{
    (void)s;
    /* [CLS] q [SEP] c1 c2 c3 [SEP]: context = 3..5 */
    float st[7] = {5, 9, 0, 1, 3, 0, 9}, en[7] = {5, 0, 9, 0, 1, 4, 9};
    uint8_t desired[7] = {1, 0, 0, 1, 1, 1, 0};
    double null = 1e6;
    bs_qa_span *sp;
    size_t n;
    bs_err err = {0};
    assert_int_equal(bs_qa_window_spans(st, en, desired, 7, 10, 15, 1, &null, &sp, &n, &err), 0);
    /* expected probabilities over positions 0,3,4,5 (others ~exp(-10000)) */
    double zs = exp(5) + exp(1) + exp(3) + exp(0), ze = exp(5) + exp(0) + exp(1) + exp(4);
    assert_true(fabs(null - exp(5) / zs * exp(5) / ze) < 1e-12);
    assert_int_equal(n, 6); /* s <= e within 3..5 */
    assert_int_equal(sp[0].s, 4);
    assert_int_equal(sp[0].e, 5);
    assert_true(fabs(sp[0].score - exp(3) / zs * exp(4) / ze) < 1e-12);
    for (size_t i = 1; i < n; i++) assert_true(sp[i - 1].score >= sp[i].score);
    free(sp);
    assert_int_equal(bs_qa_window_spans(st, en, desired, 7, 10, 1, 0, &null, &sp, &n, &err), 0);
    assert_int_equal(n, 3); /* max_answer_len 1: single tokens */
    for (size_t i = 0; i < n; i++) assert_int_equal(sp[i].s, sp[i].e);
    free(sp);
}

static void test_qa_windows(void **s)
{
    (void)s;
    size_t st[8];
    assert_int_equal(bs_qa_windows(10, 4, 1, st, 8), 3);
    assert_int_equal(st[0], 0);
    assert_int_equal(st[1], 3);
    assert_int_equal(st[2], 6); /* 6 + 4 reaches the end */
    assert_int_equal(bs_qa_windows(4, 4, 3, st, 8), 1);
    assert_int_equal(bs_qa_windows(11, 4, 1, st, 8), 4);
    assert_int_equal(bs_qa_windows(11, 4, 4, st, 8), 0);
    assert_int_equal(bs_qa_windows(1000, 4, 1, st, 8), 333); /* count beyond max reported */
}

static void test_pooling(void **s)
{
    (void)s;
    float h[3 * 2] = {1, -2, 3, 4, 5, 0};
    double v[2];
    bs_pool(h, 3, 2, BS_POOL_MEAN, v);
    assert_true(fabs(v[0] - 3) < 1e-12 && fabs(v[1] - 2.0 / 3) < 1e-12);
    bs_pool(h, 3, 2, BS_POOL_CLS, v);
    assert_true(v[0] == 1 && v[1] == -2);
    bs_pool(h, 3, 2, BS_POOL_MAX, v);
    assert_true(v[0] == 5 && v[1] == 4);
    bs_pool(h, 3, 2, BS_POOL_MEAN_SQRT_LEN, v);
    assert_true(fabs(v[0] - 9 / sqrt(3)) < 1e-12);
    bs_normalize(v, 2);
    assert_true(fabs(v[0] * v[0] + v[1] * v[1] - 1) < 1e-12);
    double zero[2] = {0, 0};
    bs_normalize(zero, 2);
    assert_true(zero[0] == 0 && zero[1] == 0);
}

/* A Markov "model": the next-token distribution depends on the row's last
 * token only. Tokens: 0 B, 1 A, 2 EOS, 3 START. */
static const double trans[4][4] = {
    {0.05, 0.05, 0.90, 0.00}, /* after B */
    {0.30, 0.45, 0.25, 0.00}, /* after A */
    {0.25, 0.25, 0.25, 0.25}, /* after EOS */
    {0.40, 0.60, 0.00, 0.00}, /* after START */
};

typedef struct markov {
    int32_t last[8];
    int steps;
} markov;

static int markov_step(void *user, const int32_t *tokens, int32_t n_rows, float *logits,
                       bs_err *err)
{
    markov *m = user;
    (void)err;
    m->steps++;
    for (int32_t r = 0; r < n_rows; r++) {
        m->last[r] = tokens[r];
        for (int v = 0; v < 4; v++)
            logits[r * 4 + v] = trans[tokens[r]][v] > 0 ? (float)log(trans[tokens[r]][v]) : -1e30f;
    }
    return 0;
}

static int markov_reorder(void *user, const int32_t *src, int32_t n, bs_err *err)
{
    (void)user;
    (void)err;
    for (int32_t i = 0; i < n; i++) assert_true(src[i] >= 0 && src[i] < 8);
    return 0;
}

static bs_gen_params markov_params(int beams, int max_length)
{
    bs_gen_params p = {.vocab_size = 4,
                       .max_length = max_length,
                       .num_beams = beams,
                       .length_penalty = 1.0,
                       .early_stopping = BS_EARLY_STOP_TRUE,
                       .decoder_start_token_id = 3,
                       .eos_token_id = 2,
                       .forced_bos_token_id = -1,
                       .forced_eos_token_id = -1};
    return p;
}

static void expect_ids(bs_gen_params p, const int32_t *want, size_t n_want, double *score)
{
    markov m = {0};
    int32_t *ids;
    size_t n;
    bs_err err = {0};
    assert_int_equal(bs_generate(&p, markov_step, markov_reorder, &m, &ids, &n, score, &err), 0);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++) assert_int_equal(ids[i], want[i]);
    free(ids);
}

static void test_greedy(void **s)
{
    (void)s;
    double score;
    bs_gen_params p = markov_params(1, 5);
    expect_ids(p, (int32_t[]){3, 1, 1, 1, 1}, 5, &score); /* A forever, cut at max_length */
    assert_true(isnan(score));
    p.no_repeat_ngram_size = 2; /* "A A" seen: A banned after A, then B, then EOS */
    expect_ids(p, (int32_t[]){3, 1, 1, 0, 2}, 5, &score);
    p = markov_params(1, 4);
    p.forced_eos_token_id = 2;
    expect_ids(p, (int32_t[]){3, 1, 1, 2}, 4, &score);
    p.forced_bos_token_id = 0; /* forced B first, then EOS is likely but min_length delays it */
    p.min_length = 3;
    expect_ids(p, (int32_t[]){3, 0, 0, 2}, 4, &score);
}

static void test_beam_search_finds_the_better_sequence(void **s)
{
    (void)s;
    double score;
    /* greedy takes A (0.6); the beam keeps B (0.4) whose EOS (0.9) wins */
    bs_gen_params p = markov_params(2, 6);
    expect_ids(p, (int32_t[]){3, 0, 2}, 3, &score);
    assert_true(fabs(score - log(0.4 * 0.9) / 2) < 1e-6);
    p.length_penalty = 0; /* plain sum of log-probabilities */
    expect_ids(p, (int32_t[]){3, 0, 2}, 3, &score);
    assert_true(fabs(score - log(0.4 * 0.9)) < 1e-6);
    p.num_beams = 1; /* greedy for comparison */
    expect_ids(p, (int32_t[]){3, 1, 1, 1, 1, 1}, 6, &score);
    bs_gen_params bad = markov_params(0, 6);
    markov m = {0};
    int32_t *ids;
    size_t n;
    bs_err err = {0};
    assert_int_equal(bs_generate(&bad, markov_step, markov_reorder, &m, &ids, &n, &score, &err),
                     BS_EINVAL);
    assert_non_null(strstr(err.msg, "num_beams"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_sigmoid),
        cmocka_unit_test(test_argsort_is_stable_descending),
        cmocka_unit_test(test_text_helpers),
        cmocka_unit_test(test_ner_none_and_simple),
        cmocka_unit_test(test_ner_word_strategies),
        cmocka_unit_test(test_qa_window_spans),
        cmocka_unit_test(test_qa_windows),
        cmocka_unit_test(test_pooling),
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_beam_search_finds_the_better_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Downloads over the Hub's file protocol against tests/api/hub_server.py (a
 * local fake Hub started per test): listing, LFS redirects, sha256 checks,
 * bearer tokens, resume after a dropped connection, 404s. */
#include "testutil.h"

#include "hub/download.h"
#include "util/buf.h"

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct hub {
    pid_t pid;
    char url[64];
} hub;

static hub start_hub(const char *const *extra)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    char script[1024];
    snprintf(script, sizeof script, "%s/tests/api/hub_server.py", getenv("BS_SOURCE_DIR"));
    const char *argv[16] = {"/usr/bin/python3", script, "--port", "0"};
    int n = 4;
    for (int i = 0; extra && extra[i] && n < 15; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* A failed assertion must not leave the fake Hub running. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(fds[1], 1);
        close(fds[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[128] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    int port = 0;
    assert_int_equal(sscanf(line, "PORT %d", &port), 1);
    hub h = {.pid = pid};
    snprintf(h.url, sizeof h.url, "http://127.0.0.1:%d", port);
    return h;
}

static void stop_hub(hub *h)
{
    kill(h->pid, SIGTERM);
    waitpid(h->pid, NULL, 0);
}

static size_t grow(char *p, size_t s, size_t n, void *ud)
{
    bs_buf *b = ud;
    bs_buf_append(b, p, s * n);
    return s * n;
}

/* The fake Hub's request log. */
static json_t *requests(const hub *h)
{
    char url[128];
    snprintf(url, sizeof url, "%s/_requests", h->url);
    bs_buf b;
    bs_buf_init(&b);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, grow);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    json_t *j = json_loadb(b.data, b.len, 0, NULL);
    bs_buf_free(&b);
    assert_non_null(j);
    return j;
}

static void assert_same_file(const char *a, const char *b)
{
    char ha[65], hb[65];
    assert_int_equal(bs_hub_sha256_file(a, ha, NULL, NULL), 0);
    assert_int_equal(bs_hub_sha256_file(b, hb, NULL, NULL), 0);
    assert_string_equal(ha, hb);
}

static int exists(const char *dir, const char *name)
{
    char p[2048];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return !stat(p, &st);
}

typedef struct seen {
    int calls, downloading;
    int64_t last_done, last_total;
    int files_done, files_total;
} seen;

static int on_progress(const bs_hub_progress *p, void *ud)
{
    seen *s = ud;
    s->calls++;
    if (!strcmp(p->stage, "downloading")) {
        s->downloading++;
        s->last_done = p->done;
        s->last_total = p->total;
        s->files_done = p->files_done;
        s->files_total = p->files_total;
    }
    return 0;
}

static void test_fetch(void **state)
{
    (void)state;
    hub h = start_hub(NULL);
    const char *dir = bs_test_tmpdir("hub_dl");
    seen s = {0};
    bs_hub_fetch f = {.endpoint = h.url,
                      .repo = "fixtures/tiny-bert-embeddings",
                      .revision = "main",
                      .cb = on_progress,
                      .ud = &s};
    char commit[41];
    bs_err e = {0};
    assert_int_equal(bs_hub_fetch_repo(&f, dir, commit, &e), 0);
    assert_int_equal(strlen(commit), 40);
    const char *files[] = {"config.json",
                           "model.safetensors",
                           "tokenizer.json",
                           "vocab.txt",
                           "modules.json",
                           "1_Pooling/config.json",
                           "sentence_bert_config.json",
                           NULL};
    char a[2048], b[2048];
    for (int i = 0; files[i]; i++) {
        snprintf(a, sizeof a, "%s/%s", dir, files[i]);
        snprintf(b, sizeof b, "%s", bs_test_fixture("models/tiny-bert-embeddings/%s", files[i]));
        assert_same_file(a, b);
    }
    /* Only what inference needs, and no leftovers. */
    assert_false(exists(dir, "expected.json"));
    assert_false(exists(dir, "model.safetensors.part"));
    /* Progress ends with every byte and file counted. */
    assert_true(s.downloading >= 2);
    assert_true(s.last_total > 0);
    assert_int_equal(s.last_done, s.last_total);
    assert_int_equal(s.files_done, s.files_total);
    /* Weights came through the LFS redirect; files after the listing were
     * fetched at the listing's commit. */
    json_t *log = requests(&h);
    int cdn = 0, pinned = 0;
    size_t i;
    json_t *r;
    json_array_foreach(log, i, r)
    {
        const char *p = json_string_value(json_object_get(r, "path"));
        if (!strncmp(p, "/cdn/", 5)) cdn++;
        char pin[128];
        snprintf(pin, sizeof pin, "/resolve/%s/", commit);
        if (strstr(p, pin)) pinned++;
    }
    assert_int_equal(cdn, 1);
    assert_int_equal(pinned, 10);
    json_decref(log);
    stop_hub(&h);
}

static void test_missing_repo(void **state)
{
    (void)state;
    hub h = start_hub(NULL);
    const char *dir = bs_test_tmpdir("hub_404");
    bs_hub_fetch f = {.endpoint = h.url, .repo = "nobody/nothing", .revision = "main"};
    bs_err e = {0};
    assert_int_equal(bs_hub_fetch_repo(&f, dir, NULL, &e), BS_ENOTFOUND);
    assert_non_null(strstr(e.msg, "nobody/nothing"));
    assert_non_null(strstr(e.msg, "404"));
    f.repo = "fixtures/tiny-bert-ner";
    f.revision = "no-such-branch";
    assert_int_equal(bs_hub_fetch_repo(&f, dir, NULL, &e), BS_ENOTFOUND);
    assert_non_null(strstr(e.msg, "no-such-branch"));
    stop_hub(&h);
    /* Nothing listening: an I/O error naming the endpoint. */
    f.revision = "main";
    assert_int_equal(bs_hub_fetch_repo(&f, dir, NULL, &e), BS_EIO);
    assert_non_null(strstr(e.msg, h.url));
}

static void test_token(void **state)
{
    (void)state;
    const char *args[] = {"--token", "hf_secret", NULL};
    hub h = start_hub(args);
    const char *dir = bs_test_tmpdir("hub_tok");
    bs_hub_fetch f = {.endpoint = h.url, .repo = "fixtures/tiny-bert-qa", .revision = "main"};
    bs_err e = {0};
    assert_int_equal(bs_hub_fetch_repo(&f, dir, NULL, &e), BS_EAUTH);
    assert_non_null(strstr(e.msg, "HF_TOKEN"));
    f.token = "wrong";
    assert_int_equal(bs_hub_fetch_repo(&f, dir, NULL, &e), BS_EAUTH);
    f.token = "hf_secret";
    assert_int_equal(bs_hub_fetch_repo(&f, dir, NULL, &e), 0);
    assert_true(exists(dir, "model.safetensors"));
    /* The token went with every request to the Hub itself. */
    json_t *log = requests(&h);
    size_t i;
    json_t *r;
    int with = 0;
    json_array_foreach(log, i, r)
    {
        const char *p = json_string_value(json_object_get(r, "path"));
        const char *auth = json_string_value(json_object_get(r, "auth"));
        if (strstr(p, "/resolve/") && auth && !strcmp(auth, "Bearer hf_secret")) with++;
    }
    assert_int_equal(with, 6); /* the six files of tiny-bert-qa */
    json_decref(log);
    stop_hub(&h);
}

static void test_resume(void **state)
{
    (void)state;
    const char *args[] = {"--drop", "model.safetensors", NULL};
    hub h = start_hub(args);
    const char *dir = bs_test_tmpdir("hub_resume");
    bs_hub_fetch f = {
        .endpoint = h.url, .repo = "fixtures/tiny-bert-ner", .revision = "main", .max_attempts = 1};
    bs_err e = {0};
    /* One attempt only: the dropped transfer fails and leaves half a file. */
    assert_int_equal(bs_hub_fetch_repo(&f, dir, NULL, &e), BS_EIO);
    assert_non_null(strstr(e.msg, "resumes"));
    char part[2048];
    snprintf(part, sizeof part, "%s/model.safetensors.part", dir);
    struct stat st;
    assert_int_equal(stat(part, &st), 0);
    struct stat full;
    assert_int_equal(stat(bs_test_fixture("models/tiny-bert-ner/model.safetensors"), &full), 0);
    assert_int_equal(st.st_size, full.st_size / 2);
    /* The next attempt asks for the rest only, and the result is whole. */
    assert_int_equal(bs_hub_fetch_repo(&f, dir, NULL, &e), 0);
    char a[2048];
    snprintf(a, sizeof a, "%s/model.safetensors", dir);
    assert_same_file(a, bs_test_fixture("models/tiny-bert-ner/model.safetensors"));
    json_t *log = requests(&h);
    char want[64];
    snprintf(want, sizeof want, "bytes=%lld-", (long long)(full.st_size / 2));
    int ranged = 0, config_again = 0;
    size_t i;
    json_t *r;
    json_array_foreach(log, i, r)
    {
        const char *range = json_string_value(json_object_get(r, "range"));
        const char *p = json_string_value(json_object_get(r, "path"));
        if (range && !strcmp(range, want) && strstr(p, "model.safetensors")) ranged++;
        size_t pl = strlen(p);
        if (pl > 12 && !strcmp(p + pl - 12, "/config.json")) config_again++;
    }
    assert_true(ranged >= 1);
    assert_int_equal(config_again, 1); /* completed files are not fetched again */
    json_decref(log);
    /* Files kept from an attempt at another commit are not reused. */
    char stale[2048];
    snprintf(stale, sizeof stale, "%s/.commit", dir);
    FILE *sf = fopen(stale, "w");
    fputs("0123456789012345678901234567890123456789", sf);
    fclose(sf);
    snprintf(stale, sizeof stale, "%s/config.json", dir);
    sf = fopen(stale, "w");
    fputs("{}", sf);
    fclose(sf);
    assert_int_equal(bs_hub_fetch_repo(&f, dir, NULL, &e), 0);
    assert_same_file(stale, bs_test_fixture("models/tiny-bert-ner/config.json"));

    stop_hub(&h);

    /* With retries (the default), one call recovers by itself. */
    hub h2 = start_hub(args);
    const char *dir2 = bs_test_tmpdir("hub_resume2");
    f.endpoint = h2.url;
    f.max_attempts = 0;
    assert_int_equal(bs_hub_fetch_repo(&f, dir2, NULL, &e), 0);
    snprintf(a, sizeof a, "%s/model.safetensors", dir2);
    assert_same_file(a, bs_test_fixture("models/tiny-bert-ner/model.safetensors"));
    stop_hub(&h2);
}

static void test_corrupt(void **state)
{
    (void)state;
    const char *args[] = {"--corrupt", "model.safetensors", NULL};
    hub h = start_hub(args);
    const char *dir = bs_test_tmpdir("hub_bad");
    bs_hub_fetch f = {.endpoint = h.url, .repo = "fixtures/tiny-bert-mlm", .revision = "main"};
    bs_err e = {0};
    assert_int_equal(bs_hub_fetch_repo(&f, dir, NULL, &e), BS_EFORMAT);
    assert_non_null(strstr(e.msg, "checksum mismatch"));
    assert_non_null(strstr(e.msg, "model.safetensors"));
    assert_false(exists(dir, "model.safetensors"));
    assert_false(exists(dir, "model.safetensors.part"));
    stop_hub(&h);
    /* A small file checked against its sha256 ETag. */
    const char *args2[] = {"--corrupt", "vocab.txt", NULL};
    hub h2 = start_hub(args2);
    f.endpoint = h2.url;
    const char *dir2 = bs_test_tmpdir("hub_bad2");
    assert_int_equal(bs_hub_fetch_repo(&f, dir2, NULL, &e), BS_EFORMAT);
    assert_non_null(strstr(e.msg, "vocab.txt"));
    stop_hub(&h2);
}

static void put(const char *dir, const char *name, const char *text)
{
    char p[2048];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_shards_and_formats(void **state)
{
    (void)state;
    /* A Hub of two made-up repos: sharded safetensors, and .bin only. */
    const char *root = bs_test_tmpdir("hub_root");
    char sharded[1024], binonly[1024];
    snprintf(sharded, sizeof sharded, "%s/sharded", root);
    snprintf(binonly, sizeof binonly, "%s/binonly", root);
    assert_int_equal(mkdir(sharded, 0755), 0);
    assert_int_equal(mkdir(binonly, 0755), 0);
    put(sharded, "config.json", "{}");
    put(sharded, "model-00001-of-00002.safetensors", "shard one");
    put(sharded, "model-00002-of-00002.safetensors", "shard two");
    put(sharded, "model.safetensors.index.json", "{\"weight_map\": {}}");
    put(sharded, "pytorch_model.bin", "not wanted");
    put(sharded, "README.md", "not wanted");
    put(binonly, "config.json", "{}");
    put(binonly, "pytorch_model.bin", "weights");
    const char *args[] = {"--root", root, NULL};
    hub h = start_hub(args);
    const char *dir = bs_test_tmpdir("hub_shards");
    bs_hub_fetch f = {.endpoint = h.url, .repo = "fixtures/sharded", .revision = "main"};
    bs_err e = {0};
    assert_int_equal(bs_hub_fetch_repo(&f, dir, NULL, &e), 0);
    assert_true(exists(dir, "model-00001-of-00002.safetensors"));
    assert_true(exists(dir, "model-00002-of-00002.safetensors"));
    assert_true(exists(dir, "model.safetensors.index.json"));
    assert_false(exists(dir, "pytorch_model.bin"));
    assert_false(exists(dir, "README.md"));
    f.repo = "fixtures/binonly";
    assert_int_equal(bs_hub_fetch_repo(&f, bs_test_tmpdir("hub_bin"), NULL, &e), BS_ENOTFOUND);
    assert_non_null(strstr(e.msg, "safetensors"));
    assert_non_null(strstr(e.msg, "pytorch_model.bin"));
    stop_hub(&h);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch),   cmocka_unit_test(test_missing_repo),
        cmocka_unit_test(test_token),   cmocka_unit_test(test_resume),
        cmocka_unit_test(test_corrupt), cmocka_unit_test(test_shards_and_formats),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}

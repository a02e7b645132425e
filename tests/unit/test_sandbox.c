/* The sandbox module against the real bertstudio-sandbox worker: a run
 * returns custom_function's value, engine calls reach the callback, each
 * limit and each refusal of the jail ends the run with its own sentence,
 * and the worker keeps serving afterwards. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/sandbox.h"
#include "testutil.h"

static bs_sandbox *sb;

static int setup(void **state)
{
    (void)state;
    static char path[4096];
    const char *dir = getenv("BS_BUILD_DIR");
    snprintf(path, sizeof path, "%s/bertstudio-sandbox", dir ? dir : ".");
    bs_err err = {0};
    if (bs_sandbox_open(path, NULL, &sb, &err)) {
        fprintf(stderr, "cannot open the sandbox: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bs_sandbox_close(sb);
    return 0;
}

/* Runs function_code on input (a JSON text) with a 2 s wall time. */
static void run(const char *function_code, const char *input, bs_sandbox_call_fn call, void *ud,
                bs_sandbox_result *r)
{
    bs_sandbox_limits lim;
    bs_sandbox_limits_default(&lim);
    lim.wall_ms = 2000;
    json_t *in = json_loads(input, JSON_DECODE_ANY, NULL);
    bs_sandbox_job job = {.tokenizer_code = "tokenizer = None",
                          .model_code = "model = None",
                          .function_code = function_code,
                          .model_id = "demo/m",
                          .input = in,
                          .batch = json_is_array(in)};
    bs_err err = {0};
    int rc = bs_sandbox_run(sb, &job, &lim, call, ud, r, &err);
    json_decref(in);
    if (rc) fprintf(stderr, "run failed: %s\n", err.msg);
    assert_int_equal(rc, 0);
}

static void expect_error(const char *code, bs_sandbox_status status, const char *needle)
{
    bs_sandbox_result r;
    run(code, "\"x\"", NULL, NULL, &r);
    if (r.status != status || !strstr(r.error, needle))
        fprintf(stderr, "code:\n%s\nstatus %d, error: %s\n", code, r.status, r.error);
    assert_int_equal(r.status, status);
    assert_non_null(strstr(r.error, needle));
    bs_sandbox_result_clear(&r);
}

static void test_run_returns_value(void **state)
{
    (void)state;
    bs_sandbox_result r;
    run("def custom_function(text):\n    return {'upper': text.upper(), 'model': model_id}\n",
        "\"hello\"", NULL, NULL, &r);
    assert_int_equal(r.status, BS_SANDBOX_OK);
    assert_string_equal(json_string_value(json_object_get(r.result, "upper")), "HELLO");
    assert_string_equal(json_string_value(json_object_get(r.result, "model")), "demo/m");
    bs_sandbox_result_clear(&r);
}

static void test_batch_mode(void **state)
{
    (void)state;
    bs_sandbox_result r;
    run("def custom_function(texts):\n    return [len(t) for t in texts]\n", "[\"ab\",\"abc\"]",
        NULL, NULL, &r);
    assert_int_equal(r.status, BS_SANDBOX_OK);
    assert_int_equal(json_array_size(r.result), 2);
    assert_int_equal(json_integer_value(json_array_get(r.result, 1)), 3);
    bs_sandbox_result_clear(&r);
}

static void test_torch_ops(void **state)
{
    (void)state;
    bs_sandbox_result r;
    run("import torch\nimport torch.nn.functional as F\n"
        "def custom_function(text):\n"
        "    a = torch.tensor([[1.0, 0.0]]); b = torch.tensor([[1.0, 1.0]])\n"
        "    return F.cosine_similarity(a, b).item()\n",
        "\"x\"", NULL, NULL, &r);
    assert_int_equal(r.status, BS_SANDBOX_OK);
    assert_true(json_real_value(r.result) > 0.7071 && json_real_value(r.result) < 0.7072);
    bs_sandbox_result_clear(&r);
}

static void test_unsupported_torch(void **state)
{
    (void)state;
    expect_error("import torch\ndef custom_function(text):\n    return torch.fft(1)\n",
                 BS_SANDBOX_ERROR, "not supported by BERT Studio's torch shim: torch.fft");
}

/* The engine callback sees the shim's call and its error reaches the code. */
static int fake_engine(void *ud, const json_t *call, json_t **reply, bs_err *err)
{
    int *calls = ud;
    (*calls)++;
    const char *op = json_string_value(json_object_get(call, "op"));
    const char *model = json_string_value(json_object_get(call, "model"));
    if (op && !strcmp(op, "load") && model && !strcmp(model, "demo/m")) {
        *reply = json_pack("{s:s,s:s}", "model_type", "bert", "head", "seq_cls");
        return 0;
    }
    return bs_err_set(err, BS_ENOTFOUND, "model '%s' is not in the model cache",
                      model ? model : "?");
}

static void test_engine_calls(void **state)
{
    (void)state;
    int calls = 0;
    bs_sandbox_result r;
    run("def custom_function(text):\n"
        "    t = AutoTokenizer.from_pretrained(model_id)\n"
        "    AutoModel.from_pretrained('nope/missing')\n",
        "\"x\"", fake_engine, &calls, &r);
    if (calls != 2) fprintf(stderr, "status %d: %s\n", r.status, r.error);
    assert_int_equal(calls, 2);
    assert_int_equal(r.status, BS_SANDBOX_ERROR);
    assert_non_null(strstr(r.error, "model 'nope/missing' is not in the model cache"));
    assert_non_null(strstr(r.error, "function_code line 3"));
    bs_sandbox_result_clear(&r);
}

static void test_errors_of_the_code(void **state)
{
    (void)state;
    expect_error("def custom_function(text):\n    return 1 +\n", BS_SANDBOX_ERROR,
                 "function_code line 2");
    expect_error("def other(text):\n    return 1\n", BS_SANDBOX_ERROR,
                 "must define a function named 'custom_function'");
    expect_error("def custom_function(text):\n    return {1, 2}\n", BS_SANDBOX_ERROR,
                 "not JSON-serialisable");
    expect_error("def custom_function(text):\n    x = 1\n    return x / 0\n", BS_SANDBOX_ERROR,
                 "ZeroDivisionError: division by zero (function_code line 3)");
}

static void test_limits(void **state)
{
    (void)state;
    expect_error("def custom_function(text):\n    while True: pass\n", BS_SANDBOX_LIMIT,
                 "custom task exceeded 2 s wall time");
    expect_error("def custom_function(text):\n    return ' ' * 10**10\n", BS_SANDBOX_LIMIT,
                 "memory limit (512 MB)");
    expect_error("def custom_function(text):\n    return list(range(10**9))\n", BS_SANDBOX_LIMIT,
                 "memory limit");
    expect_error("def f(n):\n    return f(n + 1)\ndef custom_function(text):\n    return f(0)\n",
                 BS_SANDBOX_LIMIT, "recursion");
    expect_error("def custom_function(text):\n    return 'x' * (2 << 20)\n", BS_SANDBOX_LIMIT,
                 "output exceeded");
}

static void test_jail_refusals(void **state)
{
    (void)state;
    expect_error("import os\ndef custom_function(text):\n    return os.system('id')\n",
                 BS_SANDBOX_REFUSED, "tried to start a process");
    expect_error("import os\ndef custom_function(text):\n    return os.fork()\n",
                 BS_SANDBOX_REFUSED, "tried to start a process");
    expect_error("import socket\ndef custom_function(text):\n"
                 "    return socket.create_connection(('127.0.0.1', 80))\n",
                 BS_SANDBOX_REFUSED, "tried to open a network connection");
    expect_error("import os\ndef custom_function(text):\n    os.open('/tmp/x', os.O_WRONLY | "
                 "os.O_CREAT)\n",
                 BS_SANDBOX_REFUSED, "tried to open a file for writing");
    expect_error("import os\ndef custom_function(text):\n    return os.execv('/bin/sh', ['sh'])\n",
                 BS_SANDBOX_REFUSED, "tried to run a program");
    expect_error("def custom_function(text):\n    return open('/etc/passwd').read()\n",
                 BS_SANDBOX_ERROR, "may not open files");
    /* Around the Python-level open: the kernel still says no. */
    expect_error("import os\ndef custom_function(text):\n    return os.open('/etc/passwd', "
                 "os.O_RDONLY)\n",
                 BS_SANDBOX_ERROR, "Permission denied");
    expect_error("def custom_function(text):\n    return __import__('o'+'s').getcwd() and "
                 "__import__('subprocess')\n",
                 BS_SANDBOX_ERROR, "module 'subprocess' is not available");
    expect_error("import ctypes\ndef custom_function(text):\n    return 1\n", BS_SANDBOX_ERROR,
                 "module 'ctypes' is not available");
}

/* The code owns fd 3 (the run's socket): what it writes there is its own
 * failure, and the worker keeps serving other runs. */
static void test_hostile_channel(void **state)
{
    (void)state;
    expect_error(
        "import os\ndef custom_function(text):\n    os.write(3, b'\\x05\\x00\\x00\\x00hello')\n"
        "    while True: pass\n",
        BS_SANDBOX_REFUSED, "malformed message");
    expect_error("import os\ndef custom_function(text):\n    os.write(3, b'\\xff\\xff\\xff\\x03')\n"
                 "    while True: pass\n",
                 BS_SANDBOX_LIMIT, "output exceeded");
    /* Calls it never reads the answers of, until the buffer is full. */
    expect_error("import os\ndef custom_function(text):\n"
                 "    m = b'{\"op\":\"call\",\"call\":{\"op\":\"load\",\"model\":\"m\"}}'\n"
                 "    f = len(m).to_bytes(4, 'little') + m\n"
                 "    while True: os.write(3, f)\n",
                 BS_SANDBOX_LIMIT, "wall time");
    bs_sandbox_result r;
    run("def custom_function(text):\n    return 7\n", "\"x\"", NULL, NULL, &r);
    assert_int_equal(r.status, BS_SANDBOX_OK);
    assert_int_equal(json_integer_value(r.result), 7);
    bs_sandbox_result_clear(&r);
}

static void test_environment_is_empty(void **state)
{
    (void)state;
    bs_sandbox_result r;
    run("import os\ndef custom_function(text):\n    return dict(os.environ)\n", "\"x\"", NULL, NULL,
        &r);
    if (r.status) fprintf(stderr, "status %d: %s\n", r.status, r.error);
    assert_int_equal(r.status, BS_SANDBOX_OK);
    assert_int_equal(json_object_size(r.result), 0);
    bs_sandbox_result_clear(&r);
}

static void test_check_reports(void **state)
{
    (void)state;
    json_t *rep = NULL;
    bs_err err = {0};
    assert_int_equal(bs_sandbox_check(sb, "tokenizer = AutoTokenizer.from_pretrained('a/b')",
                                      "model = pipeline('ner', model='c/d')\n", "x = 1\ndef f(:\n",
                                      &rep, &err),
                     0);
    assert_false(json_is_true(json_object_get(rep, "valid")));
    json_t *e = json_array_get(json_object_get(rep, "errors"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "part")), "function_code");
    assert_int_equal(json_integer_value(json_object_get(e, "line")), 2);
    json_t *models = json_object_get(rep, "models");
    assert_int_equal(json_array_size(models), 2);
    assert_string_equal(json_string_value(json_array_get(models, 1)), "c/d");
    json_decref(rep);
    assert_int_equal(
        bs_sandbox_check(sb, "", "", "def custom_function(t):\n    return t\n", &rep, &err), 0);
    assert_true(json_is_true(json_object_get(rep, "valid")));
    assert_true(json_is_true(json_object_get(rep, "defines_custom_function")));
    json_decref(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_returns_value),
        cmocka_unit_test(test_batch_mode),
        cmocka_unit_test(test_torch_ops),
        cmocka_unit_test(test_unsupported_torch),
        cmocka_unit_test(test_engine_calls),
        cmocka_unit_test(test_errors_of_the_code),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_jail_refusals),
        cmocka_unit_test(test_environment_is_empty),
        cmocka_unit_test(test_check_reports),
        cmocka_unit_test(test_hostile_channel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

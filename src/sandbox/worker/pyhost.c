/* The warm interpreter: CPython started once in the worker, isolated from
 * the environment, with the shims imported before any child is forked, and
 * the _bs_channel module through which the shims reach the server's engine
 * (one request frame out, one answer frame back, on the run's socket). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "sandbox/sandbox.h"
#include "sandbox/worker/worker.h"

extern int bs_worker_run_fd;

static int read_full(int fd, char *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* _bs_channel.call(request_json: str) -> answer_json: str */
static PyObject *channel_call(PyObject *self, PyObject *args)
{
    (void)self;
    const char *req;
    Py_ssize_t len;
    if (!PyArg_ParseTuple(args, "s#", &req, &len)) return NULL;
    static const char pre[] = "{\"op\":\"call\",\"call\":";
    size_t n = sizeof pre - 1 + (size_t)len + 1;
    char *msg = malloc(n);
    if (!msg) return PyErr_NoMemory();
    memcpy(msg, pre, sizeof pre - 1);
    memcpy(msg + sizeof pre - 1, req, (size_t)len);
    msg[n - 1] = '}';
    bs_err err = {0};
    int rc = bs_sandbox_frame_write_raw(bs_worker_run_fd, msg, n, &err);
    free(msg);
    if (rc) {
        PyErr_SetString(PyExc_RuntimeError, "the engine is not reachable");
        return NULL;
    }
    unsigned char hdr[4];
    if (read_full(bs_worker_run_fd, (char *)hdr, 4)) {
        PyErr_SetString(PyExc_RuntimeError, "the engine closed the channel");
        return NULL;
    }
    size_t alen =
        (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
    if (alen > BS_SANDBOX_MAX_FRAME) {
        PyErr_SetString(PyExc_RuntimeError, "the engine's answer is too large");
        return NULL;
    }
    char *ans = malloc(alen ? alen : 1);
    if (!ans) return PyErr_NoMemory();
    if (read_full(bs_worker_run_fd, ans, alen)) {
        free(ans);
        PyErr_SetString(PyExc_RuntimeError, "the engine closed the channel");
        return NULL;
    }
    PyObject *s = PyUnicode_DecodeUTF8(ans, (Py_ssize_t)alen, "strict");
    free(ans);
    return s;
}

static PyMethodDef channel_methods[] = {
    {"call", channel_call, METH_VARARGS, "Sends one engine call and returns the answer (JSON)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef channel_module = {
    PyModuleDef_HEAD_INIT,
    "_bs_channel",
    "The custom task's line to the engine.",
    -1,
    channel_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

static PyObject *channel_init(void)
{
    return PyModule_Create(&channel_module);
}

int bs_worker_py_init(const char *py_dir)
{
    if (PyImport_AppendInittab("_bs_channel", channel_init) < 0) return -1;
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    config.write_bytecode = 0;
    config.install_signal_handlers = 0;
    PyStatus st = PyConfig_SetBytesString(&config, &config.program_name, "bertstudio-sandbox");
    if (!PyStatus_Exception(st)) st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) {
        fprintf(stderr, "bertstudio-sandbox: cannot start Python: %s\n",
                st.err_msg ? st.err_msg : "unknown error");
        return -1;
    }
    PyObject *sys_path = PySys_GetObject("path"); /* borrowed */
    const char *dirs[] = {py_dir, "/usr/lib/python3/dist-packages"};
    for (size_t i = 0; i < 2; i++) {
        PyObject *d = PyUnicode_FromString(dirs[i]);
        if (!d || PyList_Insert(sys_path, (Py_ssize_t)i, d)) return -1;
        Py_DECREF(d);
    }
    PyObject *runner = PyImport_ImportModule("_bs_runner");
    if (!runner) {
        fprintf(stderr, "bertstudio-sandbox: cannot import the shims from %s:\n", py_dir);
        PyErr_Print();
        return -1;
    }
    Py_DECREF(runner);
    return 0;
}

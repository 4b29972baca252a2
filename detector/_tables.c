/* Grouped decayed sums for detector/features.py (DecayTable.update), in one pass.
 *
 * iotwatch.detector._tables.decay_accumulate(logx, t, order, heads, carry, state_t, state_logs,
 *                                            utaus, col_tau, gap, out, end_t, end_logs)
 *
 * does exactly what the numpy path of DecayTable.update does after its stable sort by key, with the
 * same floating-point operations in the same order, so the results are bit-identical (tests compare
 * the two):
 *   entries in sorted order (order[i] = row of logx/t), grouped (heads[g] = first sorted position of
 *   group g), a group with carry[g] >= 0 starting with the state row carry[g] (time state_t, values
 *   state_logs); per entry and column j (time constant utaus[col_tau[j]]):
 *       g   = (t - first_t) / tau + offset[tau]      (first_t: the group's first time, carry included)
 *       acc = logaddexp(acc, logx + g)               (numpy's npy_logaddexp; acc runs over ALL groups)
 *       out = acc - g
 *   and after each group offset[tau] += span / tau + gap (span: last time - first time of the group).
 *   The very first entry is copied (logaddexp.accumulate's first output is its first input).
 *   logaddexp(acc, -inf) == acc exactly, so -inf inputs (log 0: most counters are zero most of the
 *   time) skip the exp/log1p: the only difference from numpy is speed.
 * Outputs: out (n, m) in row order (unsorted), end_t/end_logs (G, m): each group's last entry.
 * Arrays go through the buffer protocol (no numpy C API): C-contiguous float64 'd' and int64 'q'/'l'.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LOGE2 0.693147180559945309417232121458176568

/* numpy/_core/src/npymath/npy_math_internal.h.src: npy_logaddexp */
static inline double logaddexp(double x, double y) {
    if (x == y) {
        return x + LOGE2;
    }
    const double tmp = x - y;
    if (tmp > 0) {
        return x + log1p(exp(-tmp));
    }
    else if (tmp <= 0) {
        return y + log1p(exp(tmp));
    }
    return tmp; /* NaN */
}

static int get_buf(PyObject *obj, Py_buffer *view, int ndim, char kind, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    const char *f = view->format ? view->format : "";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    int ok = view->ndim == ndim;
    if (kind == 'd') ok = ok && view->itemsize == 8 && strcmp(f, "d") == 0;
    else ok = ok && view->itemsize == 8 && (strcmp(f, "q") == 0 || strcmp(f, "l") == 0);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s must be a %d-d C-contiguous %s array", what, ndim,
                     kind == 'd' ? "float64" : "int64");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

#define NBUF 12

static PyObject *decay_accumulate(PyObject *self, PyObject *args) {
    PyObject *o[NBUF];
    double gap;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOdOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8],
                          &gap, &o[9], &o[10], &o[11]))
        return NULL;
    static const char *names[NBUF] = {"logx", "t", "order", "heads", "carry", "state_t", "state_logs", "utaus",
                                      "col_tau", "out", "end_t", "end_logs"};
    static const int dims[NBUF] = {2, 1, 1, 1, 1, 1, 2, 1, 1, 2, 1, 2};
    static const char kinds[NBUF] = {'d', 'd', 'q', 'q', 'q', 'd', 'd', 'd', 'q', 'd', 'd', 'd'};
    Py_buffer v[NBUF];
    int got = 0;
    PyObject *result = NULL;
    double *offset = NULL, *gv = NULL, *acc = NULL;
    for (; got < NBUF; got++)
        if (get_buf(o[got], &v[got], dims[got], kinds[got], names[got]) < 0) goto done;
    {
        const Py_ssize_t n = v[0].shape[0], m = v[0].shape[1];
        const Py_ssize_t G = v[3].shape[0], S = v[5].shape[0], U = v[7].shape[0];
        const double *logx = v[0].buf, *t = v[1].buf, *st_t = v[5].buf, *st_l = v[6].buf, *utaus = v[7].buf;
        const int64_t *order = v[2].buf, *heads = v[3].buf, *carry = v[4].buf, *col_tau = v[8].buf;
        double *out = v[9].buf, *end_t = v[10].buf, *end_l = v[11].buf;
        if (v[1].shape[0] != n || v[2].shape[0] != n || v[4].shape[0] != G || v[6].shape[0] != S ||
            (S && v[6].shape[1] != m) || v[8].shape[0] != m || v[9].shape[0] != n || v[9].shape[1] != m ||
            v[10].shape[0] != G || v[11].shape[0] != G || v[11].shape[1] != m || (G == 0) != (n == 0)) {
            PyErr_SetString(PyExc_ValueError, "decay_accumulate: inconsistent shapes");
            goto done;
        }
        for (Py_ssize_t j = 0; j < m; j++)
            if (col_tau[j] < 0 || col_tau[j] >= U) {
                PyErr_SetString(PyExc_ValueError, "decay_accumulate: col_tau out of range");
                goto done;
            }
        for (Py_ssize_t g = 0; g < G; g++) {
            Py_ssize_t e = g + 1 < G ? heads[g + 1] : n;
            if (heads[g] < 0 || heads[g] >= e || e > n || carry[g] >= S) {
                PyErr_SetString(PyExc_ValueError, "decay_accumulate: bad group heads or carries");
                goto done;
            }
        }
        for (Py_ssize_t i = 0; i < n; i++)
            if (order[i] < 0 || order[i] >= n) {
                PyErr_SetString(PyExc_ValueError, "decay_accumulate: order out of range");
                goto done;
            }
        offset = calloc((size_t)(U ? U : 1), sizeof(double));
        gv = malloc((size_t)(U ? U : 1) * sizeof(double));
        acc = malloc((size_t)(m ? m : 1) * sizeof(double));
        if (!offset || !gv || !acc) {
            PyErr_NoMemory();
            goto done;
        }
        int first = 1;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t g = 0; g < G; g++) {
            const Py_ssize_t s = heads[g], e = g + 1 < G ? heads[g + 1] : n;
            const int64_t c = carry[g];
            const double first_t = c >= 0 ? st_t[c] : t[order[s]];
            if (c >= 0) {  /* the carry: the key's state, first entry of its group */
                const double rel = st_t[c] - first_t;
                for (Py_ssize_t u = 0; u < U; u++) gv[u] = rel / utaus[u] + offset[u];
                const double *x = st_l + c * m;
                for (Py_ssize_t j = 0; j < m; j++) {
                    const double val = x[j] + gv[col_tau[j]];
                    if (first) acc[j] = val;
                    else if (val != -INFINITY) acc[j] = logaddexp(acc[j], val);
                }
                first = 0;
            }
            double rel = 0.0;
            for (Py_ssize_t i = s; i < e; i++) {
                const int64_t r = order[i];
                rel = t[r] - first_t;
                for (Py_ssize_t u = 0; u < U; u++) gv[u] = rel / utaus[u] + offset[u];
                const double *x = logx + r * m;
                double *y = out + r * m;
                for (Py_ssize_t j = 0; j < m; j++) {
                    const double gj = gv[col_tau[j]];
                    const double val = x[j] + gj;
                    if (first) acc[j] = val;
                    else if (val != -INFINITY) acc[j] = logaddexp(acc[j], val);
                    y[j] = acc[j] - gj;
                }
                first = 0;
            }
            end_t[g] = t[order[e - 1]];
            memcpy(end_l + g * m, out + order[e - 1] * m, (size_t)m * sizeof(double));
            for (Py_ssize_t u = 0; u < U; u++) offset[u] = offset[u] + (rel / utaus[u] + gap);
        }
        Py_END_ALLOW_THREADS
        result = Py_None;
        Py_INCREF(result);
    }
done:
    free(offset);
    free(gv);
    free(acc);
    for (int k = 0; k < got; k++) PyBuffer_Release(&v[k]);
    return result;
}

static PyMethodDef module_methods[] = {
    {"decay_accumulate", decay_accumulate, METH_VARARGS,
     "grouped decayed sums of DecayTable.update, bit-identical to its numpy path (see _tables.c)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_tables", "State-table kernels for detector/features.py (see _tables.c).", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__tables(void) { return PyModule_Create(&moduledef); }

/* Grouped decayed sums for detector/features.py (DecayTable.update), in one pass.
 *
 * iotwatch.detector._tables.decay_accumulate(logx, t, order, heads, carry, state_t, state_logs,
 *                                            utaus, col_tau, gap, out, end_t, end_logs[, x])
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
 * With ``x`` (the (n, m) inputs whose logs logx holds), an entry whose x is 0 counts as log 0 = -inf
 * whatever logx says: the caller may then take np.log of x with its zeros replaced by 1 (numpy's log is
 * several times slower on 0, its -inf special case, and most inputs are 0). With ``x``, logx may be None:
 * when every x is 0 or 1 (event counts: most tables) their logs are -inf and 0.0 (np.log(1.0) is +0.0) and
 * no (n, m) log array is needed; otherwise nothing is done and False returned (the caller takes the
 * logs and calls again). Returns True.
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
#define EXP_ZERO_BELOW (-800.0)  /* exp(x) is +0.0 for every x <= this */

/* numpy/_core/src/npymath/npy_math_internal.h.src: npy_logaddexp */
static inline double logaddexp(double x, double y) {
    if (x == y) {
        return x + LOGE2;
    }
    const double tmp = x - y;
    /* the same arithmetic without the libm calls when exp underflows to +0.0 (e^-800 is far below the
     * smallest subnormal) and log1p(+0.0) is +0.0: the first entry of a key's group meets the previous
     * group's sums 1000 time constants (DecayTable.GAP) below it */
    if (tmp > 0) {
        return tmp > -EXP_ZERO_BELOW ? x + 0.0 : x + log1p(exp(-tmp));
    }
    else if (tmp <= 0) {
        return tmp < EXP_ZERO_BELOW ? y + 0.0 : y + log1p(exp(tmp));
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

/* The grouping both accumulate kernels take from features._group_by_key: groups g = sorted positions
 * heads[g] .. heads[g + 1] (the last to n), each non-empty, a state carry below S (or < 0: none), and
 * order a permutation target in 0..n. Sets ValueError naming ``who`` and returns -1 when violated. */
static int check_groups(const char *who, Py_ssize_t n, Py_ssize_t G, Py_ssize_t S, const int64_t *heads,
                        const int64_t *carry, const int64_t *order, int first_at_zero) {
    for (Py_ssize_t g = 0; g < G; g++) {
        const Py_ssize_t e = g + 1 < G ? heads[g + 1] : n;
        if (heads[g] < 0 || heads[g] >= e || e > n || carry[g] >= S || (first_at_zero && g == 0 && heads[0] != 0)) {
            PyErr_Format(PyExc_ValueError, "%s: bad group heads or carries", who);
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (order[i] < 0 || order[i] >= n) {
            PyErr_Format(PyExc_ValueError, "%s: order out of range", who);
            return -1;
        }
    return 0;
}

#define NBUF 13

static PyObject *decay_accumulate(PyObject *self, PyObject *args) {
    PyObject *o[NBUF];
    double gap;
    o[12] = Py_None;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOdOOO|O", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8],
                          &gap, &o[9], &o[10], &o[11], &o[12]))
        return NULL;
    static const char *names[NBUF] = {"logx", "t", "order", "heads", "carry", "state_t", "state_logs", "utaus",
                                      "col_tau", "out", "end_t", "end_logs", "x"};
    static const int dims[NBUF] = {2, 1, 1, 1, 1, 1, 2, 1, 1, 2, 1, 2, 2};
    static const char kinds[NBUF] = {'d', 'd', 'q', 'q', 'q', 'd', 'd', 'd', 'q', 'd', 'd', 'd', 'd'};
    const int nbuf = o[12] == Py_None ? NBUF - 1 : NBUF;
    /* logx None: every x is 0 or 1 (checked), whose logs are -inf and 0.0 (np.log(1.0) is +0.0): x is read
     * in its place */
    const int binary = o[0] == Py_None;
    if (binary) {
        if (nbuf != NBUF) {
            PyErr_SetString(PyExc_ValueError, "decay_accumulate: logx None needs x");
            return NULL;
        }
        o[0] = o[12];
    }
    Py_buffer v[NBUF];
    int got = 0;
    PyObject *result = NULL;
    double *offset = NULL, *gv = NULL, *acc = NULL;
    for (; got < nbuf; got++)
        if (get_buf(o[got], &v[got], dims[got], kinds[got], names[got]) < 0) goto done;
    {
        const Py_ssize_t n = v[0].shape[0], m = v[0].shape[1];
        const Py_ssize_t G = v[3].shape[0], S = v[5].shape[0], U = v[7].shape[0];
        const double *logx = v[0].buf, *t = v[1].buf, *st_t = v[5].buf, *st_l = v[6].buf, *utaus = v[7].buf;
        const int64_t *order = v[2].buf, *heads = v[3].buf, *carry = v[4].buf, *col_tau = v[8].buf;
        double *out = v[9].buf, *end_t = v[10].buf, *end_l = v[11].buf;
        const double *raw = nbuf == NBUF ? v[12].buf : NULL;
        if (binary)
            for (Py_ssize_t i = 0; i < n * m; i++)
                if (raw[i] != 0.0 && raw[i] != 1.0) {  /* nothing done: the caller takes the logs */
                    result = Py_False;
                    Py_INCREF(result);
                    goto done;
                }
        if ((raw && (v[12].shape[0] != n || v[12].shape[1] != m)) || v[1].shape[0] != n || v[2].shape[0] != n || v[4].shape[0] != G || v[6].shape[0] != S ||
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
        if (check_groups("decay_accumulate", n, G, S, heads, carry, order, 0) < 0) goto done;
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
                const double *x = logx + r * m, *xr = raw ? raw + r * m : NULL;
                double *y = out + r * m;
                for (Py_ssize_t j = 0; j < m; j++) {
                    const double gj = gv[col_tau[j]];
                    const double val = (xr && xr[j] == 0.0 ? -INFINITY : binary ? 0.0 : x[j]) + gj;
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
        result = Py_True;
        Py_INCREF(result);
    }
done:
    free(offset);
    free(gv);
    free(acc);
    for (int k = 0; k < got; k++) PyBuffer_Release(&v[k]);
    return result;
}

/* ---------------------------------------------------------------------------------------------------
 * count_accumulate(x, order, heads, carry, state_sums, out, end_sums): CountTable.update's running sums
 * after its grouping, the same float operations in the same order as its numpy path (tests compare the
 * two): over the entries in sorted order (order[i] = row of x; group g from sorted position heads[g]),
 *     cs  += x                     (np.cumsum over ALL sorted rows, every column: the sum runs across groups)
 *     out  = (cs - before_g) + c_g (before_g: cs just before the group, 0 for the first; c_g: the state row
 *                                   carry[g] of state_sums, or 0.0 when carry[g] < 0)
 * out (n, m) in row order; end_sums (G, m): each group's last out row. float64 'd', int64 'q'.
 * ------------------------------------------------------------------------------------------------- */
static PyObject *count_accumulate(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o[7];
    if (!PyArg_ParseTuple(args, "OOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6])) return NULL;
    static const char *names[7] = {"x", "order", "heads", "carry", "state_sums", "out", "end_sums"};
    static const int dims[7] = {2, 1, 1, 1, 2, 2, 2};
    static const char kinds[7] = {'d', 'q', 'q', 'q', 'd', 'd', 'd'};
    Py_buffer v[7];
    int got = 0;
    PyObject *result = NULL;
    double *cs = NULL, *before = NULL;
    for (; got < 7; got++)
        if (get_buf(o[got], &v[got], dims[got], kinds[got], names[got]) < 0) goto done;
    {
        const Py_ssize_t n = v[0].shape[0], m = v[0].shape[1], G = v[2].shape[0], S = v[4].shape[0];
        const double *x = v[0].buf, *st = v[4].buf;
        const int64_t *order = v[1].buf, *heads = v[2].buf, *carry = v[3].buf;
        double *out = v[5].buf, *end = v[6].buf;
        if (v[1].shape[0] != n || v[3].shape[0] != G || (S && v[4].shape[1] != m) || v[5].shape[0] != n ||
            v[5].shape[1] != m || v[6].shape[0] != G || v[6].shape[1] != m || (G == 0) != (n == 0)) {
            PyErr_SetString(PyExc_ValueError, "count_accumulate: inconsistent shapes");
            goto done;
        }
        if (check_groups("count_accumulate", n, G, S, heads, carry, order, 1) < 0) goto done;
        cs = calloc((size_t)(m ? m : 1), sizeof(double));
        before = malloc((size_t)(m ? m : 1) * sizeof(double));
        if (!cs || !before) {
            PyErr_NoMemory();
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t g = 0; g < G; g++) {
            const Py_ssize_t s = heads[g], e = g + 1 < G ? heads[g + 1] : n;
            const double *c = carry[g] >= 0 ? st + carry[g] * m : NULL;
            for (Py_ssize_t j = 0; j < m; j++) before[j] = g ? cs[j] : 0.0;
            for (Py_ssize_t i = s; i < e; i++) {
                const double *xr = x + order[i] * m;
                double *y = out + order[i] * m;
                for (Py_ssize_t j = 0; j < m; j++) {
                    cs[j] = i ? cs[j] + xr[j] : xr[j];  /* cumsum's first row is the row itself */
                    y[j] = (cs[j] - before[j]) + (c ? c[j] : 0.0);
                }
            }
            memcpy(end + g * m, out + order[e - 1] * m, (size_t)m * sizeof(double));
        }
        Py_END_ALLOW_THREADS
        result = Py_None;
        Py_INCREF(result);
    }
done:
    free(cs);
    free(before);
    for (int q = 0; q < got; q++) PyBuffer_Release(&v[q]);
    return result;
}

/* ---------------------------------------------------------------------------------------------------
 * vote_accumulate(x, order, heads, carry, state_sums, state_w, alpha, out, end_sums, end_w): the per-flow
 * vote of detector/flowvote.py (FlowVote.update) after its grouping. Per group g (sorted positions from
 * heads[g]), starting from the state row carry[g] (sums and weight) or from 0 when carry[g] < 0, over the
 * group's rows in stream order (order[i] = row of x):
 *     s = alpha * s + x ;  w = alpha * w + 1 ;  out = s / w
 * (a bias-corrected exponential moving average of the rows over the flow's packets). out (n, m) in row
 * order; end_sums (G, m), end_w (G): each group's final s and w. The numpy path of FlowVote computes the
 * same values (tests compare the two). float64 'd', int64 'q'.
 * ------------------------------------------------------------------------------------------------- */
static PyObject *vote_accumulate(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o[9];
    double alpha;
    if (!PyArg_ParseTuple(args, "OOOOOOdOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &alpha, &o[6], &o[7], &o[8]))
        return NULL;
    static const char *names[9] = {"x", "order", "heads", "carry", "state_sums", "state_w", "out", "end_sums",
                                   "end_w"};
    static const int dims[9] = {2, 1, 1, 1, 2, 1, 2, 2, 1};
    static const char kinds[9] = {'d', 'q', 'q', 'q', 'd', 'd', 'd', 'd', 'd'};
    Py_buffer v[9];
    int got = 0;
    PyObject *result = NULL;
    double *s = NULL;
    for (; got < 9; got++)
        if (get_buf(o[got], &v[got], dims[got], kinds[got], names[got]) < 0) goto done;
    {
        const Py_ssize_t n = v[0].shape[0], m = v[0].shape[1], G = v[2].shape[0], S = v[4].shape[0];
        const double *x = v[0].buf, *st = v[4].buf, *sw = v[5].buf;
        const int64_t *order = v[1].buf, *heads = v[2].buf, *carry = v[3].buf;
        double *out = v[6].buf, *end = v[7].buf, *end_w = v[8].buf;
        if (v[1].shape[0] != n || v[3].shape[0] != G || (S && v[4].shape[1] != m) || v[5].shape[0] != S ||
            v[6].shape[0] != n || v[6].shape[1] != m || v[7].shape[0] != G || v[7].shape[1] != m ||
            v[8].shape[0] != G || (G == 0) != (n == 0) || !(alpha >= 0.0 && alpha < 1.0)) {
            PyErr_SetString(PyExc_ValueError, "vote_accumulate: inconsistent shapes or alpha outside [0, 1)");
            goto done;
        }
        if (check_groups("vote_accumulate", n, G, S, heads, carry, order, 1) < 0) goto done;
        s = malloc((size_t)(m ? m : 1) * sizeof(double));
        if (!s) {
            PyErr_NoMemory();
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t g = 0; g < G; g++) {
            const Py_ssize_t b = heads[g], e = g + 1 < G ? heads[g + 1] : n;
            double w = 0.0;
            if (carry[g] >= 0) {
                memcpy(s, st + carry[g] * m, (size_t)m * sizeof(double));
                w = sw[carry[g]];
            }
            else
                for (Py_ssize_t j = 0; j < m; j++) s[j] = 0.0;
            for (Py_ssize_t i = b; i < e; i++) {
                const double *xr = x + order[i] * m;
                double *y = out + order[i] * m;
                w = alpha * w + 1.0;
                for (Py_ssize_t j = 0; j < m; j++) {
                    s[j] = alpha * s[j] + xr[j];
                    y[j] = s[j] / w;
                }
            }
            memcpy(end + g * m, s, (size_t)m * sizeof(double));
            end_w[g] = w;
        }
        Py_END_ALLOW_THREADS
        result = Py_None;
        Py_INCREF(result);
    }
done:
    free(s);
    for (int q = 0; q < got; q++) PyBuffer_Release(&v[q]);
    return result;
}

/* ---------------------------------------------------------------------------------------------------
 * merge_state(keys_old, alive_old, keys_new, alive_new, cols_old, cols_new, keys_out, cols_out): the merge
 * of features._merge_state in one pass: the rows of the two sorted, disjoint uint64 key arrays whose
 * alive mask (bool) is set, in key order (a new key before an equal old one, as searchsorted's left side
 * puts it), into keys_out, and each column's rows (any dtype and row width, the same for old, new and
 * out; C-contiguous) into the matching cols_out array. Only data movement: the same bytes as numpy's
 * compaction + searchsorted + scatter.
 * ------------------------------------------------------------------------------------------------- */
#define MERGE_MAX_COLS 8

static int any_buf(PyObject *obj, Py_buffer *view, int writable) {
    return PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_ND |
                                             (writable ? PyBUF_WRITABLE : 0));
}

static PyObject *merge_state(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *ko, *ao, *kn, *an, *co, *cn, *kout, *cout;
    if (!PyArg_ParseTuple(args, "OOOOO!O!OO!", &ko, &ao, &kn, &an, &PyTuple_Type, &co, &PyTuple_Type, &cn, &kout,
                          &PyTuple_Type, &cout))
        return NULL;
    const Py_ssize_t nc = PyTuple_GET_SIZE(co);
    if (nc > MERGE_MAX_COLS || PyTuple_GET_SIZE(cn) != nc || PyTuple_GET_SIZE(cout) != nc) {
        PyErr_SetString(PyExc_ValueError, "merge_state: column tuples differ in length (or more than 8)");
        return NULL;
    }
    Py_buffer v[4 + 3 * MERGE_MAX_COLS];
    PyObject *objs[4] = {ko, ao, kn, an};
    int got = 0;
    PyObject *result = NULL;
    for (; got < 4; got++)
        if (any_buf(objs[got], &v[got], 0) < 0) goto done;
    for (Py_ssize_t c = 0; c < nc; c++) {
        if (any_buf(PyTuple_GET_ITEM(co, c), &v[got], 0) < 0) goto done;
        got++;
        if (any_buf(PyTuple_GET_ITEM(cn, c), &v[got], 0) < 0) goto done;
        got++;
        if (any_buf(PyTuple_GET_ITEM(cout, c), &v[got], 1) < 0) goto done;
        got++;
    }
    {
        Py_buffer vk;
        if (any_buf(kout, &vk, 1) < 0) goto done;
        const Py_ssize_t NO = v[0].len / 8, NN = v[2].len / 8, NT = vk.len / 8;
        int ok = v[0].itemsize == 8 && v[2].itemsize == 8 && vk.itemsize == 8 && v[1].itemsize == 1 &&
                 v[3].itemsize == 1 && v[1].len == NO && v[3].len == NN;
        const unsigned char *mo = v[1].buf, *mn = v[3].buf;
        Py_ssize_t alive = 0;
        if (ok) {
            for (Py_ssize_t i = 0; i < NO; i++) alive += mo[i] != 0;
            for (Py_ssize_t j = 0; j < NN; j++) alive += mn[j] != 0;
            ok = alive == NT;
        }
        Py_ssize_t row[MERGE_MAX_COLS];
        for (Py_ssize_t c = 0; ok && c < nc; c++) {
            Py_buffer *o = &v[4 + 3 * c], *w = &v[5 + 3 * c], *t = &v[6 + 3 * c];
            row[c] = NO ? o->len / NO : (NN ? w->len / NN : 0);
            ok = o->len == row[c] * NO && w->len == row[c] * NN && t->len == row[c] * NT;
        }
        if (!ok) {
            PyBuffer_Release(&vk);
            PyErr_SetString(PyExc_ValueError, "merge_state: inconsistent sizes");
            goto done;
        }
        const uint64_t *a = v[0].buf, *b = v[2].buf;
        uint64_t *k = vk.buf;
        Py_ssize_t i = 0, j = 0, w = 0;
        for (;;) {
            while (i < NO && !mo[i]) i++;
            while (j < NN && !mn[j]) j++;
            if (i >= NO && j >= NN) break;
            const int take_new = i >= NO || (j < NN && b[j] <= a[i]);
            const Py_ssize_t src = take_new ? j : i;
            k[w] = take_new ? b[j] : a[i];
            for (Py_ssize_t c = 0; c < nc; c++) {
                const char *from = (const char *)v[(take_new ? 5 : 4) + 3 * c].buf + src * row[c];
                memcpy((char *)v[6 + 3 * c].buf + w * row[c], from, (size_t)row[c]);
            }
            if (take_new) j++;
            else i++;
            w++;
        }
        PyBuffer_Release(&vk);
        result = Py_None;
        Py_INCREF(result);
    }
done:
    for (int q = 0; q < got; q++) PyBuffer_Release(&v[q]);
    return result;
}

/* ---------------------------------------------------------------------------------------------------
 * group_keys(keys, order, heads, uniq, inv) -> G: the entries of a uint64 key array grouped by key, what
 * a stable argsort gives (features._group_by_key): order (n, int64) = np.argsort(keys, kind="stable"),
 * heads[:G] = the sorted position where each distinct key's run starts, uniq[:G] = the distinct keys in
 * ascending order, inv (n, int64) = each entry's group (index into uniq). The permutation a stable sort
 * gives is unique, so this is the same result by another road: the distinct keys are found with an
 * open-addressing hash table in one pass (a batch holds few distinct hosts, pairs, flows, many times
 * over), only those are sorted (LSD radix, skipping the bytes all of them share), then every entry is
 * placed by counting sort, in stream order within its key. O(n + G) instead of numpy's O(n log n)
 * argsort. Returns -1 (and writes nothing the caller may use) when the hash table probes too long (keys
 * crafted to collide): the caller then sorts with numpy.
 * ------------------------------------------------------------------------------------------------- */
#define GROUP_MAX_PROBES 64  /* average probes per entry before giving up to numpy's sort */

static int u64_buf(PyObject *obj, Py_buffer *view, int writable, const char *what) {
    if (any_buf(obj, view, writable) < 0) return -1;
    if (view->itemsize != 8 || view->ndim != 1) {
        PyErr_Format(PyExc_TypeError, "%s must be a 1-d C-contiguous 8-byte integer array", what);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* sort the distinct keys u[0..G) (with their first-seen ids) ascending: LSD radix, 8 bits a pass */
static void radix_sort_pairs(uint64_t *u, int32_t *id, uint64_t *tu, int32_t *tid, Py_ssize_t G) {
    if (G <= 32) {  /* insertion sort: keys are distinct */
        for (Py_ssize_t i = 1; i < G; i++) {
            const uint64_t k = u[i];
            const int32_t d = id[i];
            Py_ssize_t j = i;
            while (j > 0 && u[j - 1] > k) {
                u[j] = u[j - 1];
                id[j] = id[j - 1];
                j--;
            }
            u[j] = k;
            id[j] = d;
        }
        return;
    }
    static Py_ssize_t cnt[8][256];  /* under the GIL (the caller holds it) */
    memset(cnt, 0, sizeof(cnt));
    for (Py_ssize_t i = 0; i < G; i++)
        for (int b = 0; b < 8; b++) cnt[b][(u[i] >> (8 * b)) & 0xFF]++;
    for (int b = 0; b < 8; b++) {
        if (cnt[b][(u[0] >> (8 * b)) & 0xFF] == G) continue;  /* every key has this byte: nothing moves */
        Py_ssize_t sum = 0;
        for (int d = 0; d < 256; d++) {
            const Py_ssize_t c = cnt[b][d];
            cnt[b][d] = sum;
            sum += c;
        }
        for (Py_ssize_t i = 0; i < G; i++) {
            const Py_ssize_t at = cnt[b][(u[i] >> (8 * b)) & 0xFF]++;
            tu[at] = u[i];
            tid[at] = id[i];
        }
        memcpy(u, tu, (size_t)G * sizeof(uint64_t));
        memcpy(id, tid, (size_t)G * sizeof(int32_t));
    }
}

static PyObject *group_keys(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o[5];
    if (!PyArg_ParseTuple(args, "OOOOO", &o[0], &o[1], &o[2], &o[3], &o[4])) return NULL;
    static const char *names[5] = {"keys", "order", "heads", "uniq", "inv"};
    Py_buffer v[5];
    int got = 0;
    PyObject *result = NULL;
    int32_t *slot_id = NULL;
    int32_t *gid = NULL, *ids = NULL, *tids = NULL;
    uint64_t *slot_key = NULL, *u = NULL, *tu = NULL;
    Py_ssize_t *rank = NULL, *start = NULL;
    for (; got < 5; got++)
        if (u64_buf(o[got], &v[got], got > 0, names[got]) < 0) goto done;
    {
        const Py_ssize_t n = v[0].shape[0];
        if (v[1].shape[0] != n || v[2].shape[0] != n || v[3].shape[0] != n || v[4].shape[0] != n || n >= INT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "group_keys: arrays differ in length");
            goto done;
        }
        const uint64_t *k = v[0].buf;
        int64_t *order = v[1].buf, *heads = v[2].buf, *inv = v[4].buf;
        uint64_t *uniq = v[3].buf;
        /* the table starts small (cache-resident for the usual few hundred distinct keys) and doubles
         * whenever it would be more than half full: at most 2n slots */
        int bits = 4, max_bits = 4;
        while (((Py_ssize_t)1 << max_bits) < 2 * n) max_bits++;
        bits = max_bits < 10 ? max_bits : 10;
        size_t size = (size_t)1 << bits, mask = size - 1;
        slot_key = malloc(((size_t)1 << max_bits) * sizeof(uint64_t));
        slot_id = malloc(((size_t)1 << max_bits) * sizeof(int32_t));
        gid = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
        u = malloc((size_t)(n ? n : 1) * sizeof(uint64_t));
        tu = malloc((size_t)(n ? n : 1) * sizeof(uint64_t));
        ids = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
        tids = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
        rank = malloc((size_t)(n ? n : 1) * sizeof(Py_ssize_t));
        start = malloc((size_t)(n ? n : 1) * sizeof(Py_ssize_t));
        if (!slot_key || !slot_id || !gid || !u || !tu || !ids || !tids || !rank || !start) {
            PyErr_NoMemory();
            goto done;
        }
        memset(slot_id, 0xFF, size * sizeof(int32_t));  /* -1: empty */
        Py_ssize_t G = 0, probes = 0;
        const Py_ssize_t max_probes = GROUP_MAX_PROBES * (n + 16);
#define SLOT(key) ((size_t)(((key) * 0x9E3779B97F4A7C15ULL) >> (64 - bits)))
        for (Py_ssize_t i = 0; i < n; i++) {  /* distinct keys in first-seen order; counts in start[] */
            const uint64_t key = k[i];
            size_t h = SLOT(key);
            for (;;) {
                const int32_t s = slot_id[h];
                if (s < 0) {
                    if (2 * (size_t)(G + 1) > size) {  /* grow, re-insert the distinct keys, probe again */
                        bits++;
                        size <<= 1;
                        mask = size - 1;
                        memset(slot_id, 0xFF, size * sizeof(int32_t));
                        for (Py_ssize_t g = 0; g < G; g++) {
                            size_t q = SLOT(u[g]);
                            while (slot_id[q] >= 0) q = (q + 1) & mask;
                            slot_id[q] = (int32_t)g;
                            slot_key[q] = u[g];
                        }
                        h = SLOT(key);
                        continue;
                    }
                    slot_id[h] = (int32_t)G;
                    slot_key[h] = key;
                    u[G] = key;
                    ids[G] = (int32_t)G;
                    start[G] = 0;
                    gid[i] = (int32_t)G++;
                    break;
                }
                if (slot_key[h] == key) {
                    gid[i] = s;
                    break;
                }
                h = (h + 1) & mask;
                if (++probes > max_probes) {
                    result = PyLong_FromLong(-1);
                    goto done;
                }
            }
            start[gid[i]]++;
        }
#undef SLOT
        radix_sort_pairs(u, ids, tu, tids, G);
        Py_ssize_t pos = 0;
        for (Py_ssize_t r = 0; r < G; r++) {  /* runs in key order: rank of each first-seen id, run starts */
            const int32_t d = ids[r];
            rank[d] = r;
            uniq[r] = u[r];
            heads[r] = pos;
            const Py_ssize_t c = start[d];
            start[d] = pos;
            pos += c;
        }
        for (Py_ssize_t i = 0; i < n; i++) {  /* counting sort: stream order kept within a key */
            const int32_t d = gid[i];
            order[start[d]++] = i;
            inv[i] = rank[d];
        }
        result = PyLong_FromSsize_t(G);
    }
done:
    free(slot_key);
    free(slot_id);
    free(gid);
    free(u);
    free(tu);
    free(ids);
    free(tids);
    free(rank);
    free(start);
    for (int q = 0; q < got; q++) PyBuffer_Release(&v[q]);
    return result;
}

/* ---------------------------------------------------------------------------------------------------
 * transpose32(src, dst): dst = src.T for a C-contiguous (R, C) array of 4-byte items and a C-contiguous
 * (C, R) one: the extractor's column-major float32 row block into the row-major matrix it returns, in
 * 8 x 256 tiles (both sides stay in cache; numpy's strided copy of a (225, 8192) block walks one side a
 * cache line per item: 5.5 ms against 1.3 ms here). Only data movement.
 * ------------------------------------------------------------------------------------------------- */
#define TILE_R 8    /* rows of src read at once: few, as they are often a power of two bytes apart (8192 x 4) */
#define TILE_C 256

static PyObject *transpose32(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *a, *b;
    if (!PyArg_ParseTuple(args, "OO", &a, &b)) return NULL;
    Py_buffer va, vb;
    if (any_buf(a, &va, 0) < 0) return NULL;
    if (any_buf(b, &vb, 1) < 0) {
        PyBuffer_Release(&va);
        return NULL;
    }
    if (va.ndim != 2 || vb.ndim != 2 || va.itemsize != 4 || vb.itemsize != 4 || va.shape[0] != vb.shape[1] ||
        va.shape[1] != vb.shape[0]) {
        PyBuffer_Release(&va);
        PyBuffer_Release(&vb);
        PyErr_SetString(PyExc_ValueError, "transpose32: src (R, C) and dst (C, R) of 4-byte items");
        return NULL;
    }
    const Py_ssize_t R = va.shape[0], C = va.shape[1];
    const uint32_t *src = va.buf;
    uint32_t *dst = vb.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r0 = 0; r0 < R; r0 += TILE_R) {
        const Py_ssize_t r1 = r0 + TILE_R < R ? r0 + TILE_R : R;
        for (Py_ssize_t c0 = 0; c0 < C; c0 += TILE_C) {
            const Py_ssize_t c1 = c0 + TILE_C < C ? c0 + TILE_C : C;
            for (Py_ssize_t r = r0; r < r1; r++)
                for (Py_ssize_t c = c0; c < c1; c++) dst[c * R + r] = src[r * C + c];
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&va);
    PyBuffer_Release(&vb);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------------------------------------
 * np.exp without its slow paths for results that are exactly 0: to_exp_input(a, out) copies a (float64,
 * C-contiguous, any shape) into out with every value <= EXP_ZERO_BELOW (-inf = log 0, and the very
 * negative logs DecayTable gives a column with nothing in its own group: ~ -1000 per group of offset)
 * as 0.0 and returns how many there were; the caller takes np.exp of out in place, then
 * zero_where_exp_zero(out, a) writes +0.0 back there: np.exp of any x <= -800 is +0.0 (checked, and
 * e^-800 ~ 4e-348 is far below the smallest subnormal), but numpy's float64 exp takes a scalar path for
 * every vector holding such a value (6x slower for -inf, 17x for underflow).
 * ------------------------------------------------------------------------------------------------- */

static int flat_doubles(PyObject *obj, Py_buffer *view, int writable, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    const char *f = view->format ? view->format : "";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    if (view->itemsize != 8 || strcmp(f, "d") != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous float64 array", what);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* the read-only float64 buffer ``a`` and the writable ``out`` of one size (both released on error) */
static int in_out_doubles(PyObject *a, PyObject *o, Py_buffer *va, Py_buffer *vo, const char *who) {
    if (flat_doubles(a, va, 0, "a") < 0) return -1;
    if (flat_doubles(o, vo, 1, "out") < 0) {
        PyBuffer_Release(va);
        return -1;
    }
    if (va->len != vo->len) {
        PyBuffer_Release(va);
        PyBuffer_Release(vo);
        PyErr_Format(PyExc_ValueError, "%s: a and out differ in size", who);
        return -1;
    }
    return 0;
}

__attribute__((optimize("O3"))) static PyObject *to_exp_input(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *a, *o;
    if (!PyArg_ParseTuple(args, "OO", &a, &o)) return NULL;
    Py_buffer va, vo;
    if (in_out_doubles(a, o, &va, &vo, "to_exp_input") < 0) return NULL;
    const Py_ssize_t n = va.len / 8;
    const double *x = va.buf;
    uint64_t *y = vo.buf;  /* written as bits: branch-free (the pattern is random) */
    uint64_t count = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const double xi = x[i];
        uint64_t bits;
        memcpy(&bits, &xi, 8);
        const uint64_t zero = (uint64_t)(xi <= EXP_ZERO_BELOW);
        count += zero;
        y[i] = bits & (zero - 1);  /* -> +0.0 */
    }
    PyBuffer_Release(&va);
    PyBuffer_Release(&vo);
    return PyLong_FromUnsignedLongLong(count);
}

__attribute__((optimize("O3"))) static PyObject *zero_where_exp_zero(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o, *a;
    if (!PyArg_ParseTuple(args, "OO", &o, &a)) return NULL;
    Py_buffer va, vo;
    if (in_out_doubles(a, o, &va, &vo, "zero_where_exp_zero") < 0) return NULL;
    const Py_ssize_t n = va.len / 8;
    const double *x = va.buf;
    uint64_t *y = vo.buf;  /* as bits: branch-free */
    for (Py_ssize_t i = 0; i < n; i++) y[i] &= (uint64_t)(x[i] <= EXP_ZERO_BELOW) - 1;  /* +0.0 */
    PyBuffer_Release(&va);
    PyBuffer_Release(&vo);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------------------------------------
 * A recycling allocator for numpy array data, switched on while the extractor transforms a batch.
 *
 * The capture layer pins glibc's mmap threshold at 128 KiB (captures/tshark/malloc.py: flat memory on
 * long runs), so every numpy temporary of 128 KiB or more -- the extractor makes hundreds per 8192-row
 * batch: (n, m) float64 blocks of the state tables, 2n-entry key arrays -- is a fresh mmap whose pages
 * fault in one by one (4 KiB, zeroed by the kernel) and an munmap on free: 20-35% of the extractor's
 * time. This allocator (numpy's NEP 49 handler, set with PyDataMem_SetHandler for the current context
 * only: other threads and code outside transform keep numpy's default) rounds blocks of 96 KiB to
 * 8 MiB (up to a batch's float32 row block: 225 x 8192 x 4 bytes) up to a 64 KiB size class and keeps
 * freed ones, at most CACHE_SLOTS blocks and 48 MiB (the oldest
 * freed block goes back to libc first), for the next request of the same class. Only where memory
 * comes from changes, never a value: calloc clears a recycled block with memset.
 * Arrays keep their handler, so one allocated here and freed later (a returned row block) comes back.
 * ------------------------------------------------------------------------------------------------- */
#include <pthread.h>
#include <sys/mman.h>

#define CACHE_MIN ((size_t)96 * 1024)      /* smaller: glibc's heap serves it without an mmap */
#define CACHE_MAX ((size_t)8 << 20)        /* larger: fresh, madvised for huge pages as numpy does */
#define CACHE_GRAIN ((size_t)64 * 1024)
#define CACHE_SLOTS 256
#define CACHE_BYTES_DEFAULT ((size_t)48 << 20)
#define HUGE_MIN ((size_t)4 << 20)         /* numpy's own threshold for madvise(MADV_HUGEPAGE) */

typedef struct {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr, size_t size);
} np_allocator;  /* numpy's PyDataMemAllocator (ndarraytypes.h, version 1) */

typedef struct {
    char name[127];
    uint8_t version;
    np_allocator allocator;
} np_handler;  /* numpy's PyDataMem_Handler */

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static void *cache_ptr[CACHE_SLOTS];
static size_t cache_cap[CACHE_SLOTS];
static int cache_n = 0;               /* slots 0..cache_n-1, oldest first */
static size_t cache_bytes = 0;
static size_t cache_limit = CACHE_BYTES_DEFAULT;
static unsigned long long cache_hits = 0, cache_misses = 0;

static inline int cached_size(size_t size) { return size >= CACHE_MIN && size <= CACHE_MAX; }
static inline size_t size_class(size_t size) { return (size + CACHE_GRAIN - 1) / CACHE_GRAIN * CACHE_GRAIN; }

static void *cache_take(size_t cap) {
    void *p = NULL;
    pthread_mutex_lock(&cache_lock);
    for (int i = cache_n - 1; i >= 0; i--)  /* the most recently freed block of the class: warm in cache */
        if (cache_cap[i] == cap) {
            p = cache_ptr[i];
            memmove(cache_ptr + i, cache_ptr + i + 1, (size_t)(cache_n - i - 1) * sizeof(void *));
            memmove(cache_cap + i, cache_cap + i + 1, (size_t)(cache_n - i - 1) * sizeof(size_t));
            cache_n--;
            cache_bytes -= cap;
            break;
        }
    if (p) cache_hits++;
    else cache_misses++;
    pthread_mutex_unlock(&cache_lock);
    return p;
}

static void *fresh(size_t cap, int zero) {
    void *p = zero ? calloc(1, cap) : malloc(cap);
#ifdef MADV_HUGEPAGE
    if (p && cap >= HUGE_MIN) {  /* as numpy does for its own large blocks */
        uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
        if (a < (uintptr_t)p + cap) madvise((void *)a, (uintptr_t)p + cap - a, MADV_HUGEPAGE);
    }
#endif
    return p;
}

static void *rc_malloc(void *ctx, size_t size) {
    (void)ctx;
    if (!cached_size(size)) return size > CACHE_MAX ? fresh(size, 0) : malloc(size);
    size_t cap = size_class(size);
    void *p = cache_take(cap);
    return p ? p : fresh(cap, 0);
}

static void *rc_calloc(void *ctx, size_t nelem, size_t elsize) {
    (void)ctx;
    if (elsize && nelem > SIZE_MAX / elsize) return NULL;
    size_t size = nelem * elsize;
    if (!cached_size(size)) return size > CACHE_MAX ? fresh(size, 1) : calloc(nelem, elsize);
    size_t cap = size_class(size);
    void *p = cache_take(cap);
    if (p) {
        memset(p, 0, size);
        return p;
    }
    return fresh(cap, 1);
}

static void *rc_realloc(void *ctx, void *ptr, size_t new_size) {
    (void)ctx;
    /* a block numpy will free with a size of the cached range must hold that size's whole class */
    return realloc(ptr, cached_size(new_size) ? size_class(new_size) : new_size);
}

static void rc_free(void *ctx, void *ptr, size_t size) {
    (void)ctx;
    if (!ptr) return;
    if (!cached_size(size)) {
        free(ptr);
        return;
    }
    size_t cap = size_class(size);
    void *drop[CACHE_SLOTS + 1];
    int nd = 0;
    pthread_mutex_lock(&cache_lock);
    if (cap > cache_limit) {  /* never cached: the cache stays as it is */
        pthread_mutex_unlock(&cache_lock);
        free(ptr);
        return;
    }
    while (cache_n > 0 && (cache_n == CACHE_SLOTS || cache_bytes + cap > cache_limit)) {  /* oldest out */
        drop[nd++] = cache_ptr[0];
        cache_bytes -= cache_cap[0];
        memmove(cache_ptr, cache_ptr + 1, (size_t)(cache_n - 1) * sizeof(void *));
        memmove(cache_cap, cache_cap + 1, (size_t)(cache_n - 1) * sizeof(size_t));
        cache_n--;
    }
    cache_ptr[cache_n] = ptr;
    cache_cap[cache_n] = cap;
    cache_n++;
    cache_bytes += cap;
    pthread_mutex_unlock(&cache_lock);
    for (int i = 0; i < nd; i++) free(drop[i]);
}

static np_handler recycling_handler = {
    "iotwatch_recycling_allocator", 1, {NULL, rc_malloc, rc_calloc, rc_realloc, rc_free}};
static PyObject *handler_capsule = NULL;
static PyObject *(*set_handler)(PyObject *) = NULL;
static const char *numpy_api_error = NULL;

/* PyDataMem_SetHandler from numpy's C-API table (no numpy headers needed at build time) */
static int numpy_api(void) {
    if (set_handler) return 0;
    if (numpy_api_error) {
        PyErr_SetString(PyExc_RuntimeError, numpy_api_error);
        return -1;
    }
    PyObject *mod = PyImport_ImportModule("numpy._core._multiarray_umath");
    if (!mod) {
        PyErr_Clear();
        mod = PyImport_ImportModule("numpy.core._multiarray_umath");
    }
    if (!mod) return -1;
    PyObject *cap = PyObject_GetAttrString(mod, "_ARRAY_API");
    Py_DECREF(mod);
    if (!cap) return -1;
    void **api = PyCapsule_IsValid(cap, NULL) ? (void **)PyCapsule_GetPointer(cap, NULL) : NULL;
    Py_DECREF(cap);
    if (!api) {
        numpy_api_error = "numpy's _ARRAY_API capsule is not readable";
        PyErr_SetString(PyExc_RuntimeError, numpy_api_error);
        return -1;
    }
    unsigned int feature = ((unsigned int (*)(void))api[211])();  /* PyArray_GetNDArrayCFeatureVersion */
    if (feature < 0x0000000f) {  /* NPY_1_22_API_VERSION: NEP 49 handlers */
        numpy_api_error = "numpy older than 1.22 has no PyDataMem_SetHandler";
        PyErr_SetString(PyExc_RuntimeError, numpy_api_error);
        return -1;
    }
    handler_capsule = PyCapsule_New(&recycling_handler, "mem_handler", NULL);
    if (!handler_capsule) return -1;
    set_handler = (PyObject * (*)(PyObject *)) api[304];  /* PyDataMem_SetHandler */
    return 0;
}

static PyObject *recycling_on(PyObject *self, PyObject *noargs) {
    (void)self; (void)noargs;
    if (numpy_api() < 0) return NULL;
    return set_handler(handler_capsule);  /* the previous handler (new reference): give it to restore */
}

static PyObject *recycling_restore(PyObject *self, PyObject *previous) {
    (void)self;
    if (numpy_api() < 0) return NULL;
    PyObject *mine = set_handler(previous);
    if (!mine) return NULL;
    Py_DECREF(mine);
    Py_RETURN_NONE;
}

static PyObject *recycling_stats(PyObject *self, PyObject *noargs) {
    (void)self; (void)noargs;
    /* copied under the lock, built after it: making the dict may run the garbage collector, which may
       free an array of this allocator, whose rc_free takes the same (non-recursive) lock */
    pthread_mutex_lock(&cache_lock);
    unsigned long long hits = cache_hits, misses = cache_misses;
    int blocks = cache_n;
    size_t bytes = cache_bytes, limit = cache_limit;
    pthread_mutex_unlock(&cache_lock);
    return Py_BuildValue("{s:K,s:K,s:i,s:n,s:n,s:n}", "hits", hits, "misses", misses, "blocks", blocks,
                         "bytes", (Py_ssize_t)bytes, "limit", (Py_ssize_t)limit,
                         "default_limit", (Py_ssize_t)CACHE_BYTES_DEFAULT);
}

static PyObject *recycling_clear(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t limit = -1;
    if (!PyArg_ParseTuple(args, "|n", &limit)) return NULL;
    void *drop[CACHE_SLOTS];
    pthread_mutex_lock(&cache_lock);
    int nd = cache_n;
    memcpy(drop, cache_ptr, (size_t)nd * sizeof(void *));
    cache_n = 0;
    cache_bytes = 0;
    if (limit >= 0) cache_limit = (size_t)limit;
    pthread_mutex_unlock(&cache_lock);
    for (int i = 0; i < nd; i++) free(drop[i]);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"decay_accumulate", decay_accumulate, METH_VARARGS,
     "grouped decayed sums of DecayTable.update, bit-identical to its numpy path (see _tables.c)"},
    {"count_accumulate", count_accumulate, METH_VARARGS,
     "running sums of CountTable.update, bit-identical to its numpy path (see _tables.c)"},
    {"vote_accumulate", vote_accumulate, METH_VARARGS,
     "per-flow bias-corrected moving average of FlowVote.update (see _tables.c)"},
    {"merge_state", merge_state, METH_VARARGS, "the merge of features._merge_state in one pass (see _tables.c)"},
    {"group_keys", group_keys, METH_VARARGS,
     "entries grouped by uint64 key: a stable argsort, run heads, distinct keys, inverse (see _tables.c)"},
    {"transpose32", transpose32, METH_VARARGS, "dst = src.T for C-contiguous 4-byte arrays (see _tables.c)"},
    {"to_exp_input", to_exp_input, METH_VARARGS, "out = a with values <= -800 (exp is +0.0) as 0.0; returns how many"},
    {"zero_where_exp_zero", zero_where_exp_zero, METH_VARARGS, "out[a <= -800] = +0.0"},
    {"recycling_on", recycling_on, METH_NOARGS,
     "numpy array data from the recycling allocator in this context; returns the previous handler"},
    {"recycling_restore", recycling_restore, METH_O, "restore the handler recycling_on returned"},
    {"recycling_stats", recycling_stats, METH_NOARGS, "hits, misses, cached blocks and bytes, byte limit"},
    {"recycling_clear", recycling_clear, METH_VARARGS,
     "give every cached block back to libc; recycling_clear(limit) also sets the byte limit"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_tables", "State-table kernels for detector/features.py (see _tables.c).", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__tables(void) { return PyModule_Create(&moduledef); }

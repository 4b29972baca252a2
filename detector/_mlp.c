/* iotwatch.detector._mlp: fused float32 MLP inference kernel (dense ReLU layers, softmax output).
 *
 * Exact fp32 arithmetic, no quantisation. The model's inputs are raw feature rows with the input
 * scaler folded into layer 0 (see model.FoldedMLP), and those rows are sparse (~55 nonzeros of ~170
 * features on real captures); after each ReLU most hidden units are exactly zero as well (~45/128,
 * ~17/64, ~13/32). So every layer is computed per row as
 *
 *     out = bias + sum over the row's nonzero inputs i of  in[i] * W[i, :]
 *
 * with the output accumulators held in vector registers. Skipping an exact zero input changes
 * nothing (0 * w == 0 for the finite weights a bundle holds); only the summation order differs
 * from BLAS (differences ~1e-7 in probabilities). NaN and +-inf inputs propagate exactly as in the
 * numpy path: a NaN input is "nonzero", ReLU keeps NaN (like np.maximum), and the softmax of a row
 * with a NaN logit is all NaN.
 *
 * Sizes (features, hidden widths, classes, number of layers) are runtime values. Weight columns are
 * zero-padded to a multiple of 16 floats in 64-byte aligned storage owned by a Kernel object.
 *
 * Kernels, chosen at run time from what the CPU (and OS) support: "avx512" (AVX-512F/VL/DQ/BW +
 * FMA), "avx2" (AVX2 + FMA), "generic" (portable C). Kernel(..., isa="generic") forces one, so the
 * tests compare every kernel the machine can run with the numpy path.
 *
 * Python API (used by model.FoldedMLP; no numpy C API needed, buffers go through the buffer
 * protocol):
 *     k = Kernel(weights, biases, isa="auto")   # weights: list of (in, out) float32 C arrays
 *     k.isa -> "avx512" | "avx2" | "generic";  k.dims -> (in, h1, ..., out)
 *     k.proba(X, out)   # X: (n, in) float32 C-contiguous, out: (n, out) float32 writable
 *     available_isas() -> tuple of kernels this machine can run, best first
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define IOTW_X86 1
#include <immintrin.h>
#else
#define IOTW_X86 0
#endif

#define PAD 16            /* floats per padded column group (one AVX-512 vector) */
#define MAX_LAYERS 16
#define BLOCK 16          /* rows per block in the blocked AVX-512 kernel */

enum { ISA_GENERIC = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };
static const char *ISA_NAMES[] = {"generic", "avx2", "avx512"};

typedef struct {
    int n_layers;
    int dims[MAX_LAYERS + 1];   /* dims[0] = inputs, dims[l + 1] = outputs of layer l */
    int pdims[MAX_LAYERS + 1];  /* padded to a multiple of PAD */
    int cw[MAX_LAYERS];         /* column chunk width of layer l (multiple of PAD) */
    const float *W[MAX_LAYERS]; /* chunk-major: chunk c (columns c*cw .. +w, w = min(cw, pdims - c*cw))
                                   is a (dims[l], w) row-major block at W + dims[l] * c * cw; padding
                                   columns are zero. cw == pdims (one chunk) for the row-wise kernels */
    const float *b[MAX_LAYERS]; /* (pdims[l + 1]), padding zero */
    int maxw;                   /* largest padded width, for scratch buffers */
} Net;

static inline int pad_up(int n) { return (n + PAD - 1) / PAD * PAD; }

/* Column chunk width for the blocked SIMD kernels: as wide as possible (at most maxcols columns, the
 * accumulators the kernel keeps in registers) while a (K, width) weight chunk stays within
 * CHUNK_BYTES (about L1 + a bit: measured best on Zen 4 among 16-90 KB), split evenly. */
#ifndef CHUNK_BYTES
#define CHUNK_BYTES (48 * 1024)
#endif
static int chunk_width(int K, int P, int maxcols) {
    int maxw = CHUNK_BYTES / (K * (int)sizeof(float)) / PAD * PAD;
    if (maxw < PAD) maxw = PAD;
    if (maxw > maxcols) maxw = maxcols;
    const int nchunks = (P + maxw - 1) / maxw;
    return pad_up((P + nchunks - 1) / nchunks);
}

/* ---------------------------------------------------------------- generic (portable C) */

static int nz_generic(const float *x, int K, int32_t *idx, float *val) {
    int n = 0;
    for (int j = 0; j < K; j++) {
        float v = x[j];
        if (v != 0.0f || v != v) { idx[n] = j; val[n] = v; n++; }
    }
    return n;
}

static void softmax_generic(const float *z, int N, float *out) {
    float m = z[0];
    int nan = 0;
    for (int j = 0; j < N; j++) {
        if (z[j] != z[j]) nan = 1;
        if (z[j] > m) m = z[j];
    }
    if (nan) { for (int j = 0; j < N; j++) out[j] = NAN; return; }
    float s = 0.0f;
    for (int j = 0; j < N; j++) { out[j] = expf(z[j] - m); s += out[j]; }
    for (int j = 0; j < N; j++) out[j] /= s;
}

static void rows_generic(const Net *net, const float *X, Py_ssize_t n, float *out, float *h,
                         int32_t *idx, float *val) {
    const int L = net->n_layers;
    for (Py_ssize_t r = 0; r < n; r++) {
        int nnz = nz_generic(X + (size_t)r * net->dims[0], net->dims[0], idx, val);
        for (int l = 0; l < L; l++) {
            const int N = net->dims[l + 1], P = net->pdims[l + 1];
            const float *W = net->W[l];
            memcpy(h, net->b[l], sizeof(float) * (size_t)N);
            for (int t = 0; t < nnz; t++) {
                const float *w = W + (size_t)idx[t] * P;
                const float v = val[t];
                for (int j = 0; j < N; j++) h[j] += v * w[j];
            }
            if (l + 1 < L) {
                for (int j = 0; j < N; j++) if (h[j] < 0.0f) h[j] = 0.0f; /* keeps NaN, like np.maximum */
                nnz = nz_generic(h, N, idx, val);
            } else {
                softmax_generic(h, N, out + (size_t)r * N);
            }
        }
    }
}

#if IOTW_X86
/* ---------------------------------------------------------------- AVX-512 */

#define T512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma,popcnt")))

T512 static inline __mmask16 tail16(int k) { return k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << k) - 1u); }

/* Indices (int16) of the nonzero (or NaN) entries of x[0:K] -> idx, which needs K + 16 slots
 * (full-vector stores). The register form of vcompress is used: the memory form is microcoded and
 * slow on some CPUs. Values are not copied: the layer reads x[idx[t]] from the row itself. */
T512 static int nzi_avx512(const float *x, int K, int16_t *idx) {
    int n = 0;
    __m512i ids = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    const __m512 zero = _mm512_setzero_ps();
    for (int j = 0; j < K; j += 16) {
        const __mmask16 t = tail16(K - j);
        const __mmask16 m = _mm512_mask_cmp_ps_mask(t, _mm512_maskz_loadu_ps(t, x + j), zero, _CMP_NEQ_UQ);
        _mm256_storeu_si256((__m256i *)(idx + n), _mm512_cvtepi32_epi16(_mm512_maskz_compress_epi32(m, ids)));
        n += __builtin_popcount((unsigned)m);
        ids = _mm512_add_epi32(ids, step);
    }
    return n;
}

/* out[0:16*NV] = bias + sum_t x[idx[t]] * W[idx[t], 0:16*NV], then ReLU if relu (max(0, NaN) is
 * NaN, as np.maximum: vmaxps returns its 2nd operand on NaN). NV accumulators live in registers;
 * for small NV two interleaved accumulator sets hide the FMA latency. */
#define DEF_AXPY512(NV)                                                                              \
    T512 static void axpy512_##NV(const int16_t *idx, const float *x, int nnz, const float *W,     \
                                  size_t ldw, const float *bias, float *out, int relu) {             \
        __m512 a[NV], c[NV];                                                                         \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                                       \
            a[v] = _mm512_load_ps(bias + 16 * v);                                                    \
            c[v] = _mm512_setzero_ps();                                                              \
        }                                                                                            \
        int t = 0;                                                                                   \
        if (NV <= 4) {                                                                               \
            for (; t + 1 < nnz; t += 2) {                                                            \
                const int i0 = idx[t], i1 = idx[t + 1];                                              \
                const float *w0 = W + (size_t)i0 * ldw, *w1 = W + (size_t)i1 * ldw;                 \
                const __m512 x0 = _mm512_set1_ps(x[i0]), x1 = _mm512_set1_ps(x[i1]);                \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                               \
                    a[v] = _mm512_fmadd_ps(x0, _mm512_load_ps(w0 + 16 * v), a[v]);                   \
                    c[v] = _mm512_fmadd_ps(x1, _mm512_load_ps(w1 + 16 * v), c[v]);                   \
                }                                                                                    \
            }                                                                                        \
        }                                                                                            \
        for (; t < nnz; t++) {                                                                       \
            const int i = idx[t];                                                                    \
            const float *w = W + (size_t)i * ldw;                                                   \
            const __m512 xv = _mm512_set1_ps(x[i]);                                                  \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                                     \
                a[v] = _mm512_fmadd_ps(xv, _mm512_load_ps(w + 16 * v), a[v]);                        \
        }                                                                                            \
        const __m512 zero = _mm512_setzero_ps();                                                     \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                                       \
            __m512 r = NV <= 4 ? _mm512_add_ps(a[v], c[v]) : a[v];                                   \
            _mm512_store_ps(out + 16 * v, relu ? _mm512_max_ps(zero, r) : r);                        \
        }                                                                                            \
    }
DEF_AXPY512(8)
DEF_AXPY512(7)
DEF_AXPY512(6)
DEF_AXPY512(5)
DEF_AXPY512(4)
DEF_AXPY512(3)
DEF_AXPY512(2)
DEF_AXPY512(1)

typedef void (*axpy_fn)(const int16_t *, const float *, int, const float *, size_t, const float *, float *, int);
static const axpy_fn AXPY512[9] = {NULL, axpy512_1, axpy512_2, axpy512_3, axpy512_4,
                                   axpy512_5, axpy512_6, axpy512_7, axpy512_8};

/* exp(d) for d <= 0 or NaN (softmax arguments); |rel err| ~1 ulp (Cephes expf polynomial). */
T512 static inline __m512 exp_neg512(__m512 d) {
    d = _mm512_max_ps(_mm512_set1_ps(-104.0f), d); /* NaN stays NaN (2nd operand) */
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(d, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), d);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

T512 static void softmax_avx512(const float *z, int N, float *out) {
    if (N > 16) { softmax_generic(z, N, out); return; }
    const __mmask16 t = tail16(N);
    const __m512 v = _mm512_maskz_loadu_ps(t, z);
    if (_mm512_mask_cmp_ps_mask(t, v, v, _CMP_UNORD_Q)) {
        _mm512_mask_storeu_ps(out, t, _mm512_set1_ps(NAN));
        return;
    }
    const float m = _mm512_mask_reduce_max_ps(t, v);
    const __m512 e = _mm512_maskz_mov_ps(t, exp_neg512(_mm512_sub_ps(v, _mm512_set1_ps(m))));
    const float s = _mm512_reduce_add_ps(e);
    _mm512_mask_storeu_ps(out, t, _mm512_div_ps(e, _mm512_set1_ps(s)));
}

/* Rows go through the network in blocks of BLOCK rows, layer by layer, one column chunk at a time:
 * a chunk's weights (see chunk_width) stay in L1/L2 while every row of the block uses
 * them. Per row and layer, the nonzero inputs are listed once (index, value) and reused by every
 * chunk. */

#define DEF_ROWS(NAME, TARGET, NZI, AXPY, VEC, SOFTMAX)                                                                  \
TARGET static void NAME(const Net *net, const float *X, Py_ssize_t n, float *out, float *hbuf,                           \
                      int16_t *idx, int S, int HS) {                                                                     \
    const int L = net->n_layers, K0 = net->dims[0], NC = net->dims[L];                                                   \
    int cnt[BLOCK];                                                                                                      \
    float *hA = hbuf, *hB = hbuf + (size_t)BLOCK * HS; /* ping-pong: a layer reads one, writes the other */              \
    for (Py_ssize_t r0 = 0; r0 < n; r0 += BLOCK) {                                                                       \
        const int nb = n - r0 < BLOCK ? (int)(n - r0) : BLOCK;                                                           \
        const float *in = X + (size_t)r0 * K0;                                                                           \
        int in_stride = K0;                                                                                              \
        for (int r = 0; r < nb; r++) cnt[r] = NZI(in + (size_t)r * K0, K0, idx + r * S);                                 \
        /* the next block's input rows are fetched while this block computes */                                          \
        if (r0 + BLOCK < n) {                                                                                            \
            const char *nx = (const char *)(X + (size_t)(r0 + BLOCK) * K0);                                              \
            const size_t bytes = (size_t)((n - r0 - BLOCK) < BLOCK ? (n - r0 - BLOCK) : BLOCK) * K0 * sizeof(float);     \
            for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(nx + o, _MM_HINT_T0);                                    \
        }                                                                                                                \
        float *h = hA;                                                                                                   \
        for (int l = 0; l < L; l++) {                                                                                    \
            const int K = net->dims[l], P = net->pdims[l + 1], cw = net->cw[l], relu = l + 1 < L;                        \
            for (int c = 0; c < P; c += cw) {                                                                            \
                const int w = P - c < cw ? P - c : cw;                                                                   \
                const float *Wc = net->W[l] + (size_t)K * c, *bc = net->b[l] + c;                                        \
                const axpy_fn f = AXPY[w / VEC];                                                                         \
                for (int r = 0; r < nb; r++)                                                                             \
                    f(idx + r * S, in + (size_t)r * in_stride, cnt[r], Wc, (size_t)w, bc, h + (size_t)r * HS + c, relu); \
            }                                                                                                            \
            if (relu) {                                                                                                  \
                for (int r = 0; r < nb; r++) cnt[r] = NZI(h + (size_t)r * HS, net->dims[l + 1], idx + r * S);            \
                in = h;                                                                                                  \
                in_stride = HS;                                                                                          \
                h = h == hA ? hB : hA;                                                                                   \
            } else {                                                                                                     \
                for (int r = 0; r < nb; r++) SOFTMAX(h + (size_t)r * HS, NC, out + (size_t)(r0 + r) * NC);               \
            }                                                                                                            \
        }                                                                                                                \
    }                                                                                                                    \
}
DEF_ROWS(rows_avx512, T512, nzi_avx512, AXPY512, 16, softmax_avx512)

/* ---------------------------------------------------------------- AVX2 + FMA */

#define T256 __attribute__((target("avx2,fma,bmi,popcnt")))

/* NZ_LUT[m] = positions of the set bits of the 8-bit mask m, in order (int16, for nzi_avx2) */
static int16_t NZ_LUT[256][8] __attribute__((aligned(16)));

static void init_nz_lut(void) {
    for (int m = 0; m < 256; m++) {
        int k = 0;
        for (int b = 0; b < 8; b++) if (m & (1 << b)) NZ_LUT[m][k++] = (int16_t)b;
        for (; k < 8; k++) NZ_LUT[m][k] = 0;
    }
}

/* as nzi_avx512, 8 lanes at a time: indices from a lookup table on the compare mask */
T256 static int nzi_avx2(const float *x, int K, int16_t *idx) {
    int n = 0, j = 0;
    const __m256 zero = _mm256_setzero_ps();
    for (; j + 8 <= K; j += 8) {
        const unsigned m = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + j), zero, _CMP_NEQ_UQ));
        _mm_storeu_si128((__m128i *)(idx + n), _mm_add_epi16(_mm_load_si128((const __m128i *)NZ_LUT[m]),
                                                              _mm_set1_epi16((short)j)));
        n += __builtin_popcount(m);
    }
    for (; j < K; j++) {
        const float v = x[j];
        if (v != 0.0f || v != v) idx[n++] = (int16_t)j;
    }
    return n;
}

#define DEF_AXPY256(NV)                                                                              \
    T256 static void axpy256_##NV(const int16_t *idx, const float *x, int nnz, const float *W,     \
                                  size_t ldw, const float *bias, float *out, int relu) {             \
        __m256 a[NV], c[NV];                                                                         \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                                       \
            a[v] = _mm256_load_ps(bias + 8 * v);                                                     \
            c[v] = _mm256_setzero_ps();                                                              \
        }                                                                                            \
        int t = 0;                                                                                   \
        if (NV <= 4) {                                                                               \
            for (; t + 1 < nnz; t += 2) {                                                            \
                const int i0 = idx[t], i1 = idx[t + 1];                                              \
                const float *w0 = W + (size_t)i0 * ldw, *w1 = W + (size_t)i1 * ldw;                 \
                const __m256 x0 = _mm256_broadcast_ss(x + i0), x1 = _mm256_broadcast_ss(x + i1);     \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                               \
                    a[v] = _mm256_fmadd_ps(x0, _mm256_load_ps(w0 + 8 * v), a[v]);                    \
                    c[v] = _mm256_fmadd_ps(x1, _mm256_load_ps(w1 + 8 * v), c[v]);                    \
                }                                                                                    \
            }                                                                                        \
        }                                                                                            \
        for (; t < nnz; t++) {                                                                       \
            const int i = idx[t];                                                                    \
            const float *w = W + (size_t)i * ldw;                                                   \
            const __m256 xv = _mm256_broadcast_ss(x + i);                                            \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                                     \
                a[v] = _mm256_fmadd_ps(xv, _mm256_load_ps(w + 8 * v), a[v]);                         \
        }                                                                                            \
        const __m256 zero = _mm256_setzero_ps();                                                     \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) {                                       \
            __m256 r = NV <= 4 ? _mm256_add_ps(a[v], c[v]) : a[v];                                   \
            _mm256_store_ps(out + 8 * v, relu ? _mm256_max_ps(zero, r) : r);                         \
        }                                                                                            \
    }
DEF_AXPY256(8)
DEF_AXPY256(6)
DEF_AXPY256(4)
DEF_AXPY256(2)

/* chunk widths are multiples of 16 floats: 2, 4, 6 or 8 vectors of 8 */
static const axpy_fn AXPY256[9] = {NULL, NULL, axpy256_2, NULL, axpy256_4, NULL, axpy256_6, NULL, axpy256_8};

/* exp(d) for d <= 0 or NaN, 8 lanes (as exp_neg512; below -87 it returns ~1.6e-38 instead of 0) */
T256 static inline __m256 exp_neg256(__m256 d) {
    d = _mm256_max_ps(_mm256_set1_ps(-87.0f), d); /* NaN stays NaN (2nd operand) */
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(d, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), d);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

T256 static inline float hmax256(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

T256 static inline float hsum256(__m256 v) {
    __m128 m = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_add_ps(m, _mm_movehl_ps(m, m));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

T256 static void softmax_avx2(const float *z, int N, float *out) {
    if (N > 8) { softmax_generic(z, N, out); return; }
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i t = _mm256_cmpgt_epi32(_mm256_set1_epi32(N), lane);
    const __m256 v = _mm256_load_ps(z); /* z is a padded (16-float, aligned) activation row */
    const __m256 tf = _mm256_castsi256_ps(t);
    if (_mm256_movemask_ps(_mm256_and_ps(tf, _mm256_cmp_ps(v, v, _CMP_UNORD_Q)))) {
        _mm256_maskstore_ps(out, t, _mm256_set1_ps(NAN));
        return;
    }
    const float m = hmax256(_mm256_blendv_ps(_mm256_set1_ps(-INFINITY), v, tf));
    const __m256 e = _mm256_and_ps(tf, exp_neg256(_mm256_sub_ps(v, _mm256_set1_ps(m))));
    const float s = hsum256(e);
    _mm256_maskstore_ps(out, t, _mm256_div_ps(e, _mm256_set1_ps(s)));
}

/* the blocked structure of rows_avx512, 8-float vectors */
DEF_ROWS(rows_avx2, T256, nzi_avx2, AXPY256, 8, softmax_avx2)
#endif /* IOTW_X86 */

static int isa_supported(int isa) {
    if (isa == ISA_GENERIC) return 1;
#if IOTW_X86
    __builtin_cpu_init();
    if (isa == ISA_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("fma");
#endif
    return 0;
}

/* ---------------------------------------------------------------- Python type */

typedef struct {
    PyObject_HEAD
    Net net;
    float *store; /* one aligned block holding every W and b */
    int isa;
} KernelObject;

static void Kernel_dealloc(KernelObject *self) {
    free(self->store);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int get_f32(PyObject *obj, Py_buffer *view, int ndim, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->ndim != ndim || view->itemsize != 4 || !view->format || strcmp(view->format, "f") != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a %d-d C-contiguous float32 array", what, ndim);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int Kernel_init(KernelObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"weights", "biases", "isa", NULL};
    PyObject *weights, *biases;
    const char *isa_name = "auto";
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|s", kwlist, &weights, &biases, &isa_name)) return -1;
    if (!PySequence_Check(weights) || !PySequence_Check(biases)) {
        PyErr_SetString(PyExc_TypeError, "weights and biases must be sequences of arrays");
        return -1;
    }
    Py_ssize_t L = PySequence_Size(weights);
    if (L < 1 || L > MAX_LAYERS || PySequence_Size(biases) != L) {
        PyErr_Format(PyExc_ValueError, "need 1..%d layers and one bias per weight matrix", MAX_LAYERS);
        return -1;
    }
    int isa;
    if (strcmp(isa_name, "auto") == 0) {
        isa = isa_supported(ISA_AVX512) ? ISA_AVX512 : isa_supported(ISA_AVX2) ? ISA_AVX2 : ISA_GENERIC;
    } else {
        for (isa = 0; isa < 3 && strcmp(isa_name, ISA_NAMES[isa]) != 0; isa++) {}
        if (isa == 3) { PyErr_Format(PyExc_ValueError, "unknown isa %s", isa_name); return -1; }
        if (!isa_supported(isa)) { PyErr_Format(PyExc_ValueError, "isa %s not supported by this CPU", isa_name); return -1; }
    }
    Net net;
    memset(&net, 0, sizeof net);
    net.n_layers = (int)L;
    Py_buffer wv[MAX_LAYERS], bv[MAX_LAYERS];
    int got = 0, ok = 0;
    size_t total = 0;
    for (; got < L; got++) {
        PyObject *w = PySequence_GetItem(weights, got), *b = PySequence_GetItem(biases, got);
        int rc = (w && b) ? get_f32(w, &wv[got], 2, "each weight") : -1;
        if (rc == 0 && get_f32(b, &bv[got], 1, "each bias") < 0) { PyBuffer_Release(&wv[got]); rc = -1; }
        Py_XDECREF(w);
        Py_XDECREF(b);
        if (rc < 0) goto done;
    }
    for (int l = 0; l < L; l++) {
        Py_ssize_t K = wv[l].shape[0], N = wv[l].shape[1];
        if (K < 1 || N < 1 || K > 32000 || N > 32000 || bv[l].shape[0] != N ||
            (l > 0 && K != net.dims[l])) {
            PyErr_Format(PyExc_ValueError, "layer %d: weight (%zd, %zd), bias (%zd) do not chain", l, K, N,
                         bv[l].shape[0]);
            goto done;
        }
        net.dims[l] = (int)K;
        net.dims[l + 1] = (int)N;
    }
    net.maxw = 0;
    for (int l = 0; l <= L; l++) {
        net.pdims[l] = pad_up(net.dims[l]);
        if (net.pdims[l] > net.maxw) net.maxw = net.pdims[l];
    }
    for (int l = 0; l < L; l++)
        net.cw[l] = isa == ISA_AVX512 ? chunk_width(net.dims[l], net.pdims[l + 1], 128)
                  : isa == ISA_AVX2   ? chunk_width(net.dims[l], net.pdims[l + 1], 64)
                                      : net.pdims[l + 1];
    for (int l = 0; l < L; l++) total += (size_t)net.dims[l] * net.pdims[l + 1] + net.pdims[l + 1];
    float *store = aligned_alloc(64, (total * sizeof(float) + 63) / 64 * 64);
    if (!store) { PyErr_NoMemory(); goto done; }
    memset(store, 0, total * sizeof(float));
    float *p = store;
    for (int l = 0; l < L; l++) {
        const int K = net.dims[l], N = net.dims[l + 1], P = net.pdims[l + 1];
        const float *src = (const float *)wv[l].buf;
        for (int c = 0; c < N; c += net.cw[l]) {
            const int w = P - c < net.cw[l] ? P - c : net.cw[l], take = N - c < w ? N - c : w;
            for (int i = 0; i < K; i++)
                memcpy(p + (size_t)K * c + (size_t)i * w, src + (size_t)i * N + c, sizeof(float) * (size_t)take);
        }
        net.W[l] = p;
        p += (size_t)K * P;
        memcpy(p, bv[l].buf, sizeof(float) * (size_t)N);
        net.b[l] = p;
        p += P;
    }
    free(self->store);
    self->store = store;
    self->net = net;
    self->isa = isa;
    ok = 1;
done:
    for (int l = 0; l < got; l++) { PyBuffer_Release(&wv[l]); PyBuffer_Release(&bv[l]); }
    return ok ? 0 : -1;
}

static PyObject *Kernel_proba(KernelObject *self, PyObject *args) {
    PyObject *xo, *oo;
    if (!PyArg_ParseTuple(args, "OO", &xo, &oo)) return NULL;
    const Net *net = &self->net;
    if (!self->store) { PyErr_SetString(PyExc_RuntimeError, "Kernel not initialised"); return NULL; }
    Py_buffer xv, ov;
    if (get_f32(xo, &xv, 2, "X") < 0) return NULL;
    if (PyObject_GetBuffer(oo, &ov, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&xv);
        return NULL;
    }
    PyObject *ret = NULL;
    const Py_ssize_t n = xv.shape[0];
    if (ov.ndim != 2 || ov.itemsize != 4 || !ov.format || strcmp(ov.format, "f") != 0) {
        PyErr_SetString(PyExc_TypeError, "out must be a writable 2-d C-contiguous float32 array");
        goto done;
    }
    if (xv.shape[1] != net->dims[0] || ov.shape[0] != n || ov.shape[1] != net->dims[net->n_layers]) {
        PyErr_Format(PyExc_ValueError, "expected X (n, %d) and out (n, %d), got (%zd, %zd) and (%zd, %zd)",
                     net->dims[0], net->dims[net->n_layers], xv.shape[0], xv.shape[1], ov.shape[0], ov.shape[1]);
        goto done;
    }
    if (n > 0) {
        /* scratch: one padded activation row, and index/value lists with a vector of slack */
        /* per block row: a padded activation row (HS floats) and index/value lists of the nonzero
           inputs (S slots: the widest layer input plus a vector of slack for full-vector stores) */
        int S = 0;
        for (int l = 0; l < net->n_layers; l++) if (net->pdims[l] > S) S = net->pdims[l];
        S += 16;
        const int HS = net->maxw;
        float *h = aligned_alloc(64, (size_t)2 * BLOCK * HS * sizeof(float));
        float *val = aligned_alloc(64, (size_t)BLOCK * S * sizeof(float));
        int32_t *idx = aligned_alloc(64, (size_t)BLOCK * S * sizeof(int32_t));
        if (!h || !val || !idx) {
            free(h); free(val); free(idx);
            PyErr_NoMemory();
            goto done;
        }
        const float *X = (const float *)xv.buf;
        float *out = (float *)ov.buf;
        Py_BEGIN_ALLOW_THREADS
#if IOTW_X86
        if (self->isa == ISA_AVX512) rows_avx512(net, X, n, out, h, (int16_t *)idx, S, HS);
        else if (self->isa == ISA_AVX2) rows_avx2(net, X, n, out, h, (int16_t *)idx, S, HS);
        else
#endif
            rows_generic(net, X, n, out, h, idx, val);
        Py_END_ALLOW_THREADS
        free(h); free(val); free(idx);
    }
    ret = Py_NewRef(oo);
done:
    PyBuffer_Release(&xv);
    PyBuffer_Release(&ov);
    return ret;
}

static PyObject *Kernel_get_isa(KernelObject *self, void *closure) {
    (void)closure;
    return PyUnicode_FromString(ISA_NAMES[self->isa]);
}

static PyObject *Kernel_get_dims(KernelObject *self, void *closure) {
    (void)closure;
    if (!self->store) return PyTuple_New(0);
    PyObject *t = PyTuple_New(self->net.n_layers + 1);
    if (!t) return NULL;
    for (int l = 0; l <= self->net.n_layers; l++) PyTuple_SET_ITEM(t, l, PyLong_FromLong(self->net.dims[l]));
    return t;
}

static PyMethodDef Kernel_methods[] = {
    {"proba", (PyCFunction)Kernel_proba, METH_VARARGS,
     "proba(X, out): softmax probabilities of the rows of X (n, in) into out (n, classes); returns out"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Kernel_getset[] = {
    {"isa", (getter)Kernel_get_isa, NULL, "the kernel in use: avx512, avx2 or generic", NULL},
    {"dims", (getter)Kernel_get_dims, NULL, "(inputs, hidden..., classes)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "iotwatch.detector._mlp.Kernel",
    .tp_basicsize = sizeof(KernelObject),
    .tp_dealloc = (destructor)Kernel_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Kernel(weights, biases, isa='auto'): fused sparse-input float32 MLP (ReLU hidden, softmax out)",
    .tp_methods = Kernel_methods,
    .tp_getset = Kernel_getset,
    .tp_init = (initproc)Kernel_init,
    .tp_new = PyType_GenericNew,
};

static PyObject *available_isas(PyObject *mod, PyObject *unused) {
    (void)mod; (void)unused;
    PyObject *lst = PyList_New(0);
    if (!lst) return NULL;
    for (int isa = ISA_AVX512; isa >= ISA_GENERIC; isa--) {
        if (!isa_supported(isa)) continue;
        PyObject *s = PyUnicode_FromString(ISA_NAMES[isa]);
        if (!s || PyList_Append(lst, s) < 0) { Py_XDECREF(s); Py_DECREF(lst); return NULL; }
        Py_DECREF(s);
    }
    PyObject *t = PyList_AsTuple(lst);
    Py_DECREF(lst);
    return t;
}


static PyMethodDef module_methods[] = {
    {"available_isas", available_isas, METH_NOARGS, "kernels this machine can run, best first"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_mlp", "Fused sparse-input float32 MLP inference kernel (see _mlp.c).", -1,
    module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__mlp(void) {
#if IOTW_X86
    init_nz_lut();
#endif
    if (PyType_Ready(&KernelType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    Py_INCREF(&KernelType);
    if (PyModule_AddObject(m, "Kernel", (PyObject *)&KernelType) < 0) {
        Py_DECREF(&KernelType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

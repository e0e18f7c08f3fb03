/* Per-cell affine maps for skinr's BatchedLinear on the CPU.
 *
 * An ensemble's layer multiplies, for each of C cells, a P x K block of points by the
 * cell's own K x N weight. At 16 points per cell (a 128 x 128 image on a 32 x 32 grid)
 * MKL's batched GEMM runs at about half its large-matrix rate; these kernels keep a
 * 4-row x TILE_V-vector tile of the output in registers and read each weight once per
 * product. Cells are split across the threads of the OpenMP runtime torch already
 * loaded (libgomp, found by its soname), so no second thread pool competes with torch's.
 *
 * Layout (all row-major, contiguous): X (C, P, K), W (C, K, N), b (C, 1, N),
 * Y and G (C, P, N). A layer is wide (N % VL == 0) or narrow (N < VL and K % VL == 0,
 * an output layer); P is free. Each function scales its result by `scale`, so a SIREN
 * layer's omega_0 costs no extra pass over the activations.
 */
#include <stddef.h>
#include <omp.h>

#if defined(__AVX512F__)
#define VL 16
#define TILE_V 4
#elif defined(__AVX__)
#define VL 8
#define TILE_V 2
#else
#define VL 4
#define TILE_V 2
#endif

typedef float vec __attribute__((vector_size(VL * sizeof(float))));
typedef float vec_unaligned __attribute__((vector_size(VL * sizeof(float)), aligned(4)));
#define LOAD(p) (*(const vec_unaligned*)(p))
#define STORE(p, v) (*(vec_unaligned*)(p) = (v))

int skinr_vector_length(void) { return VL; }

/* O[r, v*VL : (v+1)*VL] = init + sum_k A[r*ars + k*acs] * B[k*ldb + v*VL : ...],
 * for 4 rows and TILE_V vectors; A is read as broadcast scalars, so any strides work.
 * The accumulators are spelled out: GCC spills an accumulator array to memory. */
#if TILE_V == 4
#define TILE_COLUMNS(X) X(0) X(1) X(2) X(3)
#else
#define TILE_COLUMNS(X) X(0) X(1)
#endif
static void tile_4(int K, const float* A, ptrdiff_t ars, ptrdiff_t acs, const float* B,
                   ptrdiff_t ldb, float* O, ptrdiff_t ldo, const float* init, float scale) {
#define START(v)                                            \
  vec r0_##v = {0};                                         \
  if (init) r0_##v = LOAD(init + (v) * VL);                 \
  vec r1_##v = r0_##v, r2_##v = r0_##v, r3_##v = r0_##v;
  TILE_COLUMNS(START)
  for (int k = 0; k < K; ++k) {
    const float* b = B + k * ldb;
    const float* a = A + k * acs;
    vec a0 = (vec){0} + a[0], a1 = (vec){0} + a[ars];
    vec a2 = (vec){0} + a[2 * ars], a3 = (vec){0} + a[3 * ars];
#define STEP(v)                                             \
    {                                                       \
      vec bv = LOAD(b + (v) * VL);                          \
      r0_##v += a0 * bv; r1_##v += a1 * bv;                 \
      r2_##v += a2 * bv; r3_##v += a3 * bv;                 \
    }
    TILE_COLUMNS(STEP)
  }
#define FINISH(v)                                           \
  STORE(O + (v) * VL, r0_##v * scale); STORE(O + ldo + (v) * VL, r1_##v * scale); \
  STORE(O + 2 * ldo + (v) * VL, r2_##v * scale); STORE(O + 3 * ldo + (v) * VL, r3_##v * scale);
  TILE_COLUMNS(FINISH)
#undef START
#undef STEP
#undef FINISH
}

/* The same for any rows x vectors, without register blocking (tile edges). */
static void tile_any(int rows, int vectors, int K, const float* A, ptrdiff_t ars, ptrdiff_t acs,
                     const float* B, ptrdiff_t ldb, float* O, ptrdiff_t ldo, const float* init,
                     float scale) {
  for (int r = 0; r < rows; ++r)
    for (int v = 0; v < vectors; ++v) {
      vec acc = {0};
      if (init) acc = LOAD(init + v * VL);
      for (int k = 0; k < K; ++k) acc += A[r * ars + k * acs] * (vec)LOAD(B + k * ldb + v * VL);
      STORE(O + r * ldo + v * VL, acc * scale);
    }
}

/* O (M x N) = scale * (A (M x K, strides ars, acs) @ B (K x N, row stride ldb) [+ init row]);
 * N % VL == 0. */
static void gemm(int M, int N, int K, const float* A, ptrdiff_t ars, ptrdiff_t acs, const float* B,
                 ptrdiff_t ldb, float* O, ptrdiff_t ldo, const float* init, float scale) {
  for (int j = 0; j < N; j += TILE_V * VL) {
    int vectors = (N - j) / VL < TILE_V ? (N - j) / VL : TILE_V;
    const float* init_j = init ? init + j : NULL;
    int r = 0;
    if (vectors == TILE_V)
      for (; r + 4 <= M; r += 4)
        tile_4(K, A + r * ars, ars, acs, B + j, ldb, O + r * ldo + j, ldo, init_j, scale);
    if (r < M)
      tile_any(M - r, vectors, K, A + r * ars, ars, acs, B + j, ldb, O + r * ldo + j, ldo, init_j,
               scale);
  }
}

/* Floats of scratch each thread needs (the caller allocates threads times this). */
long skinr_scratch_floats(int P, int K, int N) {
  long lanes = (long)(N + K) * VL, transposed = (long)N * K;
  (void)P;
  return lanes > transposed ? lanes : transposed;
}

/* This thread's part of the caller's scratch buffer. */
static float* thread_scratch(float* scratch, int P, int K, int N) {
  return scratch + (size_t)omp_get_thread_num() * skinr_scratch_floats(P, K, N);
}

static void transpose(int rows, int cols, const float* in, float* out) {
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) out[c * rows + r] = in[r * cols + c];
}

/* Y[c] = scale * (X[c] @ W[c] + b[c]) (b may be NULL).
 * Wide (N % VL == 0): register tiles over Y's columns. Narrow (N < VL, K % VL == 0, an
 * output layer): one dot product over K per value, with W transposed per cell. */
void skinr_grouped_forward(int threads, int C, int P, int K, int N, const float* X,
                           const float* W, const float* b, float* Y, float scale, float* scratch) {
#pragma omp parallel num_threads(threads)
  {
    float* w_t = thread_scratch(scratch, P, K, N);
#pragma omp for schedule(static)
    for (int c = 0; c < C; ++c) {
      const float* x = X + (ptrdiff_t)c * P * K;
      const float* w = W + (ptrdiff_t)c * K * N;
      const float* bias = b ? b + (ptrdiff_t)c * N : NULL;
      float* y = Y + (ptrdiff_t)c * P * N;
      if (N % VL == 0) {
        gemm(P, N, K, x, K, 1, w, N, y, N, bias, scale);
        continue;
      }
      transpose(K, N, w, w_t);
      for (int i = 0; i < P; ++i)
        for (int n = 0; n < N; ++n) {
          vec acc = {0};
          for (int k = 0; k < K; k += VL) acc += (vec)LOAD(x + i * K + k) * (vec)LOAD(w_t + n * K + k);
          float total = bias ? bias[n] : 0.0f;
          for (int lane = 0; lane < VL; ++lane) total += acc[lane];
          y[i * N + n] = scale * total;
        }
    }
  }
}

/* dW[c] = scale * X[c]^T @ G[c]  (K x N).
 * Wide: X read column-wise as the broadcast operand. Narrow: dW^T = G^T X, then transposed. */
void skinr_grouped_weight_grad(int threads, int C, int P, int K, int N, const float* X,
                               const float* G, float* DW, float scale, float* scratch) {
#pragma omp parallel num_threads(threads)
  {
    float* dw_t = thread_scratch(scratch, P, K, N);
#pragma omp for schedule(static)
    for (int c = 0; c < C; ++c) {
      const float* x = X + (ptrdiff_t)c * P * K;
      const float* g = G + (ptrdiff_t)c * P * N;
      float* dw = DW + (ptrdiff_t)c * K * N;
      if (N % VL == 0) {
        gemm(K, N, P, x, 1, K, g, N, dw, N, NULL, scale);
      } else {
        gemm(N, K, P, g, 1, N, x, K, dw_t, K, NULL, scale);
        transpose(N, K, dw_t, dw);
      }
    }
  }
}

/* dX[c] = scale * G[c] @ W[c]^T  (P x K).
 * Wide: reading W^T row-wise would need W transposed (64 KB per cell at 128 x 128), so
 * VL points at a time are transposed (VL x N, small) and dX^T = W @ G^T is formed with
 * the points in the vector lanes, eight rows of W per step, then transposed back.
 * Narrow: W (K x N) is small, so it is transposed and dX = G @ W^T tiled as usual. */
void skinr_grouped_input_grad(int threads, int C, int P, int K, int N, const float* G,
                              const float* W, float* DX, float scale, float* scratch) {
#pragma omp parallel num_threads(threads)
  {
    float* g_t = thread_scratch(scratch, P, K, N);
    float* dx_t = g_t + (size_t)N * VL;
#pragma omp for schedule(static)
    for (int c = 0; c < C; ++c) {
      const float* w = W + (ptrdiff_t)c * K * N;
      if (N % VL != 0) {
        transpose(K, N, w, g_t);
        gemm(P, K, N, G + (ptrdiff_t)c * P * N, N, 1, g_t, K, DX + (ptrdiff_t)c * P * K, K, NULL,
             scale);
        continue;
      }
      for (int i0 = 0; i0 < P; i0 += VL) {
        int lanes = P - i0 < VL ? P - i0 : VL;
        const float* g = G + ((ptrdiff_t)c * P + i0) * N;
        for (int n = 0; n < N; ++n)
          for (int i = 0; i < VL; ++i) g_t[n * VL + i] = i < lanes ? g[i * N + n] : 0.0f;
        int k = 0;
        for (; k + 8 <= K; k += 8) {
          vec s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, s4 = {0}, s5 = {0}, s6 = {0}, s7 = {0};
          const float* wk = w + (ptrdiff_t)k * N;
          for (int n = 0; n < N; ++n) {
            vec gn = LOAD(g_t + n * VL);
            s0 += wk[n] * gn;         s1 += wk[N + n] * gn;
            s2 += wk[2 * N + n] * gn; s3 += wk[3 * N + n] * gn;
            s4 += wk[4 * N + n] * gn; s5 += wk[5 * N + n] * gn;
            s6 += wk[6 * N + n] * gn; s7 += wk[7 * N + n] * gn;
          }
          float* o = dx_t + (ptrdiff_t)k * VL;
          STORE(o, s0);          STORE(o + VL, s1);     STORE(o + 2 * VL, s2);
          STORE(o + 3 * VL, s3); STORE(o + 4 * VL, s4); STORE(o + 5 * VL, s5);
          STORE(o + 6 * VL, s6); STORE(o + 7 * VL, s7);
        }
        for (; k < K; ++k) {
          vec s = {0};
          for (int n = 0; n < N; ++n) s += w[(ptrdiff_t)k * N + n] * (vec)LOAD(g_t + n * VL);
          STORE(dx_t + (ptrdiff_t)k * VL, s);
        }
        float* d = DX + ((ptrdiff_t)c * P + i0) * K;
        for (int i = 0; i < lanes; ++i)
          for (int kk = 0; kk < K; ++kk) d[i * K + kk] = scale * dx_t[kk * VL + i];
      }
    }
  }
}

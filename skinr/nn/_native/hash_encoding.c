/* Multiresolution hash encoding (Instant-NGP) on the CPU, for skinr's HashEncoding.
 *
 * PyTorch computes the encoding as tensors: for n points, L levels and 2^d corners it
 * materialises the corner coordinates, weights and slots (int64, n x L x 2^d x d), then
 * gathers, and its backward scatter-adds through index_put. Here each point walks its
 * levels and corners in registers: the forward reads 2^d table rows per level, the
 * backward adds 2^d weighted gradients per level into the table's gradient. The forward
 * splits points, the backward levels, across the OpenMP threads of the runtime torch
 * already loaded.
 *
 * The arithmetic follows skinr/encodings.py exactly (the same slots, the same weights,
 * float32 sums in the same corner order), so the two paths agree to float rounding:
 * u = (x + 1) / 2, position p = u * N_l, cell = min(max(floor(p), 0), N_l - 1),
 * t = p - cell; corner c has bit a set -> vertex cell_a + 1 on axis a, weight t_a,
 * else vertex cell_a, weight 1 - t_a; dense slot sum_a v_a (N_l + 1)^a, hashed slot
 * XOR_a v_a prime_a, both modulo the level's size, plus the level's offset.
 */
#include <math.h>
#include <stdint.h>
#include <omp.h>

#define MAX_DIMS 17

static inline void corner_slots(int d, int corner, const int64_t* cell, int64_t cells,
                                int hashed, int64_t size, const int64_t* primes,
                                int64_t* slot) {
  int64_t dense = 0, mixed = 0, stride = 1;
  for (int a = 0; a < d; ++a) {
    int64_t v = cell[a] + ((corner >> (d - 1 - a)) & 1);
    dense += v * stride;
    stride *= cells + 1;
    mixed ^= v * primes[a];
  }
  int64_t s = (hashed ? mixed : dense) % size;
  *slot = s < 0 ? s + size : s;
}

static inline float corner_weight(int d, int corner, const float* t) {
  float w = 1.0f;
  for (int a = 0; a < d; ++a) {
    w *= ((corner >> (d - 1 - a)) & 1) ? t[a] : 1.0f - t[a];
  }
  return w;
}

static inline void locate(int d, const float* x, int64_t cells, int64_t* cell, float* t) {
  for (int a = 0; a < d; ++a) {
    float p = (x[a] + 1.0f) * 0.5f * (float)cells;
    float c = floorf(p);
    if (c < 0.0f) c = 0.0f;
    if (c > (float)(cells - 1)) c = (float)(cells - 1);
    cell[a] = (int64_t)c;
    t[a] = p - c;
  }
}

/* out (n, L * F) = the encoding of coords (n, d). */
void skinr_hash_forward(int threads, int64_t n, int d, int L, int F, const float* coords,
                        const int64_t* cells, const int64_t* offsets, const int64_t* sizes,
                        const uint8_t* hashed, const int64_t* primes, const float* table,
                        float* out) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    int64_t cell[MAX_DIMS];
    float t[MAX_DIMS];
    for (int l = 0; l < L; ++l) {
      float* o = out + i * (int64_t)L * F + (int64_t)l * F;
      for (int f = 0; f < F; ++f) o[f] = 0.0f;
      locate(d, coords + i * d, cells[l], cell, t);
      for (int corner = 0; corner < (1 << d); ++corner) {
        int64_t slot;
        corner_slots(d, corner, cell, cells[l], hashed[l], sizes[l], primes, &slot);
        float w = corner_weight(d, corner, t);
        const float* row = table + (offsets[l] + slot) * F;
        for (int f = 0; f < F; ++f) o[f] += w * row[f];
      }
    }
  }
}

/* grad_table (rows, F) += the encoding's transpose applied to grad (n, L * F).
 * Threads split the levels, whose table rows are disjoint, and each walks the points in
 * order: no atomics, and the same sums in the same order on every run, so a seeded fit
 * is reproducible. */
void skinr_hash_backward(int threads, int64_t n, int d, int L, int F, const float* coords,
                         const int64_t* cells, const int64_t* offsets, const int64_t* sizes,
                         const uint8_t* hashed, const int64_t* primes, const float* grad,
                         float* grad_table) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int l = 0; l < L; ++l) {
    int64_t cell[MAX_DIMS];
    float t[MAX_DIMS];
    for (int64_t i = 0; i < n; ++i) {
      const float* g = grad + i * (int64_t)L * F + (int64_t)l * F;
      locate(d, coords + i * d, cells[l], cell, t);
      for (int corner = 0; corner < (1 << d); ++corner) {
        int64_t slot;
        corner_slots(d, corner, cell, cells[l], hashed[l], sizes[l], primes, &slot);
        float w = corner_weight(d, corner, t);
        float* row = grad_table + (offsets[l] + slot) * F;
        for (int f = 0; f < F; ++f) row[f] += w * g[f];
      }
    }
  }
}

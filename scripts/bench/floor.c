/*
 * The bandwidth floor for `npm run bench`: NAdam's update as one fused C loop
 * (reads p, g, m, v; writes p, m, v: 7 values an element), compiled on the
 * machine that runs the bench (cc -O3 -march=native -fno-math-errno -fopenmp).
 * Not bit-exact with anything: it is the speed a memory-bound kernel reaches here.
 * -fno-math-errno changes no result (sqrt is correctly rounded either way):
 * without it, sqrtf must set errno on a negative input, and gcc keeps the loop
 * scalar, three times slower than the SIMD loop a floor must be.
 * Protocol, one command a line on stdin, one JSON answer a line on stdout:
 *   setup COUNT NUMEL DTYPE THREADS   (dtype float32 | float64)
 *   round [STEPS]                     STEPS (default 1) back-to-back steps of every configuration: {"ms":[... per step]}
 *   clear
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
  long count, numel;
  int f64, threads;
  void **p, **g, **m, **v;
} Config;

static Config configs[256];
static int n_configs = 0;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* One element's update (the loop's body). */
#define ELEMENT(T, SQRT)                                                              \
  {                                                                                   \
    T grad = g[i] + wd * p[i];                                                        \
    T mi = m[i] + w * (grad - m[i]);                                                  \
    T vi = b2 * v[i] + omb2 * grad * grad;                                            \
    T d = SQRT(vi) / bc + eps;                                                        \
    p[i] += s1 * grad / d + s2 * mi / d;                                              \
    m[i] = mi;                                                                        \
    v[i] = vi;                                                                        \
  }
/* One thread: no OpenMP region, which costs ~0.3 us a call even with if(0): 15 times a 10-element tensor's loop. */
#define STEP(T, SQRT)                                                                 \
  static void step_##T(T *restrict p, const T *restrict g, T *restrict m, T *restrict v, long n, int threads) { \
    const T wd = 0.01, w = 0.1, b2 = 0.999, omb2 = 0.001, bc = 0.0316, eps = 1e-8, s1 = -1e-4, s2 = -1e-3;     \
    if (threads > 1) {                                                                \
      _Pragma("omp parallel for schedule(static) num_threads(threads)")               \
      for (long i = 0; i < n; i++) ELEMENT(T, SQRT)                                   \
    } else {                                                                          \
      for (long i = 0; i < n; i++) ELEMENT(T, SQRT)                                   \
    }                                                                                 \
  }
STEP(float, sqrtf)
STEP(double, sqrt)

static void *filled(long n, int f64, double seed) {
  void *a = aligned_alloc(64, ((n * (f64 ? 8 : 4)) + 63) / 64 * 64);
  for (long i = 0; i < n; i++) {
    double x = sin((i + seed) * 0.37) * 0.1;
    if (f64) ((double *)a)[i] = x; else ((float *)a)[i] = (float)x;
  }
  return a;
}

int main(void) {
  char line[256];
#ifdef _OPENMP
  printf("{\"ready\":true,\"openmp\":true,\"max_threads\":%d}\n", omp_get_max_threads());
#else
  printf("{\"ready\":true,\"openmp\":false,\"max_threads\":1}\n");
#endif
  fflush(stdout);
  while (fgets(line, sizeof line, stdin)) {
    char dtype[16];
    long count, numel;
    int threads;
    if (sscanf(line, "setup %ld %ld %15s %d", &count, &numel, dtype, &threads) == 4 && n_configs < 256) {
      Config *c = &configs[n_configs++];
      c->count = count; c->numel = numel; c->f64 = strcmp(dtype, "float64") == 0; c->threads = threads;
      c->p = malloc(count * sizeof(void *)); c->g = malloc(count * sizeof(void *));
      c->m = malloc(count * sizeof(void *)); c->v = malloc(count * sizeof(void *));
      for (long t = 0; t < count; t++) {
        c->p[t] = filled(numel, c->f64, t); c->g[t] = filled(numel, c->f64, t + 1);
        c->m[t] = filled(numel, c->f64, 0); c->v[t] = filled(numel, c->f64, 0);
        /* exp_avg_sq is never negative: the numbers NAdam meets, not the NaNs of a negative's sqrt */
        for (long i = 0; i < numel; i++) {
          if (c->f64) ((double *)c->v[t])[i] = fabs(((double *)c->v[t])[i]);
          else ((float *)c->v[t])[i] = fabsf(((float *)c->v[t])[i]);
        }
      }
      printf("{\"ok\":true}\n");
    } else if (strncmp(line, "round", 5) == 0) {
      int steps = 1;
      if (sscanf(line, "round %d", &steps) != 1 || steps < 1) steps = 1;
      printf("{\"ms\":[");
      for (int k = 0; k < n_configs; k++) {
        Config *c = &configs[k];
        double t0 = now_ms();
        for (int s = 0; s < steps; s++) {
          for (long t = 0; t < c->count; t++) {
            if (c->f64) step_double(c->p[t], c->g[t], c->m[t], c->v[t], c->numel, c->threads);
            else step_float(c->p[t], c->g[t], c->m[t], c->v[t], c->numel, c->threads);
          }
        }
        printf("%s%.6f", k ? "," : "", (now_ms() - t0) / steps);
      }
      printf("]}\n");
    } else if (strncmp(line, "clear", 5) == 0) {
      for (int k = 0; k < n_configs; k++) {
        Config *c = &configs[k];
        for (long t = 0; t < c->count; t++) { free(c->p[t]); free(c->g[t]); free(c->m[t]); free(c->v[t]); }
        free(c->p); free(c->g); free(c->m); free(c->v);
      }
      n_configs = 0;
      printf("{\"ok\":true}\n");
    } else {
      printf("{\"error\":\"unknown command\"}\n");
    }
    fflush(stdout);
  }
  return 0;
}

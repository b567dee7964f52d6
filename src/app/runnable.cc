// Opening float checkpoints and .vitq files for inference, and the thread count (app).
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "vitq/app.h"

namespace vitq {

int ApplyThreads(int threads) {
  // The default: the user's OMP_NUM_THREADS, else the CPUs this process may use (affinity mask
  // and cgroup CPU quota, vitq/threads.h), not the machine's core count.
  if (threads <= 0) {
    const char* env = std::getenv("OMP_NUM_THREADS");
    threads = (env != nullptr && *env != '\0') ? omp_get_max_threads() : UsableCpuCount();
  }
  omp_set_num_threads(threads);
  return threads;
}

namespace {
// Makes r->forward run on the thread count AdaptiveThreads picks call by call (max: the count in
// force now, set by --threads or the default), restoring the max after each call. With
// VITQ_TRACE_THREADS=1 every call's choice and time go to stderr (why a run chose one thread).
void MakeAdaptive(Runnable* r) {
  const int max_threads = omp_get_max_threads();
  if (max_threads <= 1 || !AdaptiveThreadsEnabled()) return;
  auto choice = std::make_shared<AdaptiveThreads>(max_threads);
  r->adaptive = choice;
  const char* trace_env = std::getenv("VITQ_TRACE_THREADS");
  const bool trace = trace_env != nullptr && std::string(trace_env) == "1";
  r->forward = [choice, trace, forward = std::move(r->forward)](const float* x, int b, float* y) {
    const int threads = choice->Begin(b);
    omp_set_num_threads(threads);
    const auto t0 = std::chrono::steady_clock::now();
    forward(x, b, y);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    choice->End(seconds);
    omp_set_num_threads(choice->max_threads());
    if (trace) {
      std::fprintf(stderr, "vitq: thread choice: call %lld: %d thread%s, %.2f ms per image\n",
                   static_cast<long long>(choice->calls()), threads, threads == 1 ? "" : "s",
                   1e3 * seconds / b);
    }
  };
}
}  // namespace

Result<std::unique_ptr<Runnable>> OpenRunnable(const std::string& path, QuantPath qpath,
                                               const std::vector<std::string>& keep_float) {
  VITQ_ASSIGN_OR_RETURN(std::unique_ptr<Runnable> r, OpenRunnableFixed(path, qpath, keep_float));
  MakeAdaptive(r.get());
  return r;
}

Result<std::unique_ptr<Runnable>> OpenRunnableFixed(const std::string& path, QuantPath qpath,
                                                    const std::vector<std::string>& keep_float) {
  auto r = std::make_unique<Runnable>();
  if (!keep_float.empty() && qpath != QuantPath::kFakeQuant) {
    return Status::Usage(
        "--keep-float leaves activation sites float on the fake-quant path: add --fake-quant "
        "(the integer engine and its simulation hold every activation as integers)");
  }
  if (!keep_float.empty() && !IsQuantizedFile(path)) {
    return Status::Usage("--keep-float applies to a quantized .vitq file; '" + path +
                         "' is a float model");
  }
  if (IsQuantizedFile(path)) {
    VITQ_ASSIGN_OR_RETURN(QuantizedModel q, LoadQuantizedFile(path));
    r->quantized = std::make_unique<QuantizedModel>(std::move(q));
    r->spec = r->quantized->model.spec;
    r->size_bytes = r->quantized->StoredBytes();
    const bool integer_plan = CheckIntegerPlan(r->quantized->plan, r->spec.config).ok();
    if (qpath == QuantPath::kFakeQuant || (qpath == QuantPath::kSimulate && !integer_plan)) {
      ViTModel dequantized = DequantizedModel(*r->quantized);
      QuantPlan plan = r->quantized->plan;
      if (!keep_float.empty()) {
        auto kept = KeepActivationsFloat(&plan, keep_float);
        if (!kept.ok()) return kept.status().WithContext("'" + path + "'");
        r->float_sites = kept.value();
      }
      VITQ_ASSIGN_OR_RETURN(r->simulated, SimulatedModel::Create(dequantized, plan));
      r->engine = "fake-quant";
      SimulatedModel* sim = r->simulated.get();
      r->forward = [sim](const float* x, int b, float* y) { sim->Forward(x, b, y); };
      return r;
    }
    const bool simulate = qpath == QuantPath::kSimulate;
    auto engine = simulate ? IntegerEngine::CreateSimulation(*r->quantized)
                           : IntegerEngine::Create(*r->quantized);
    if (!engine.ok()) return engine.status().WithContext("'" + path + "'");
    r->integer = std::move(engine).value();
    r->engine = simulate ? "simulated" : "int8";
    IntegerEngine* e = r->integer.get();
    r->forward = [e](const float* x, int b, float* y) { e->Forward(x, b, y); };
    return r;
  }
  VITQ_ASSIGN_OR_RETURN(ViTModel m, LoadModel(path));
  r->model = std::make_unique<ViTModel>(std::move(m));
  r->float_engine = std::make_unique<Engine>(*r->model);
  r->spec = r->model->spec;
  r->engine = "fp32";
  r->size_bytes = r->model->NumParams() * 4;
  Engine* e = r->float_engine.get();
  r->forward = [e](const float* x, int b, float* y) { e->Forward(x, b, y); };
  return r;
}

}  // namespace vitq

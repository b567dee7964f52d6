// The Python module `vitq` (pybind11): load a float checkpoint or a .vitq file and run it on numpy
// arrays, evaluate on an image folder, quantize (python). Public headers only; the work is done
// by the same functions as the CLI's (vitq/app.h), so results and error messages are the CLI's.
// The GIL is released while vitq computes; one Model runs one call at a time (a mutex), several
// Models run in parallel.
#include <omp.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <filesystem>
#include <mutex>
#include <set>

#include "vitq/app.h"
#include "vitq/dataset.h"
#include "vitq/image.h"

namespace py = pybind11;

namespace vitq::python {
namespace {

// Raises the Python exception for `status`: FileNotFoundError when the message is about one of
// `paths` (the caller's paths) and that path does not exist, ValueError for bad input or options,
// RuntimeError for internal errors. The message is the CLI's (without its "vitq: error: " prefix).
[[noreturn]] void Raise(const Status& status, const std::vector<std::string>& paths = {}) {
  if (status.code() == StatusCode::kInvalidInput) {
    for (const std::string& p : paths) {
      std::error_code ec;
      if (!p.empty() && !std::filesystem::exists(p, ec) &&
          status.message().find(p) != std::string::npos) {
        PyErr_SetString(PyExc_FileNotFoundError, status.message().c_str());
        throw py::error_already_set();
      }
    }
  }
  if (status.code() == StatusCode::kInternal) throw std::runtime_error(status.message());
  throw py::value_error(status.message());
}

template <typename T>
T Take(Result<T> r, const std::vector<std::string>& paths = {}) {
  if (!r.ok()) Raise(r.status(), paths);
  return std::move(r).value();
}

py::object ToPython(const nlohmann::ordered_json& j) {
  return py::module_::import("json").attr("loads")(DumpJson(j, -1));
}

std::string ShapeText(const py::array& a) {
  std::string s = "[";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + "]";
}

std::string DtypeText(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

QuantPath ParseEngine(const std::string& engine, bool quantized_file, const std::string& path) {
  if (engine == "auto" || engine == "int8") {
    if (engine == "int8" && !quantized_file) {
      throw py::value_error("engine='int8' runs a quantized .vitq file; '" + path +
                            "' is a float checkpoint (use engine='auto')");
    }
    return QuantPath::kInteger;
  }
  if (engine == "simulate" || engine == "fake-quant") {
    if (!quantized_file) {
      throw py::value_error("engine='" + engine + "' applies to a quantized .vitq file; '" + path +
                            "' is a float checkpoint");
    }
    return engine == "simulate" ? QuantPath::kSimulate : QuantPath::kFakeQuant;
  }
  throw py::value_error("engine: expected 'auto', 'int8', 'simulate' or 'fake-quant', found '" +
                        engine + "'");
}

// A loaded model (float or quantized) with its engine.
class Model {
 public:
  // threads > 0 sets the thread count of everything vitq runs (as set_threads); the model runs
  // on the count in force at each call (no adaptive choice, which would pin the count at load).
  // keep_float: activation sites left float on the fake-quant path (`vitq eval --keep-float`).
  Model(std::string path, const std::string& engine, int threads,
        const std::vector<std::string>& keep_float)
      : path_(std::move(path)) {
    std::error_code ec;
    const bool exists = std::filesystem::exists(path_, ec);
    // A missing path gets the loader's message (FileNotFoundError) before any engine check.
    const QuantPath qpath =
        exists ? ParseEngine(engine, IsQuantizedFile(path_), path_) : QuantPath::kInteger;
    if (threads > 0) ApplyThreads(threads);
    Result<std::unique_ptr<Runnable>> r = Status::Internal("unset");
    {
      py::gil_scoped_release release;
      r = OpenRunnableFixed(path_, qpath, keep_float);
    }
    runnable_ = Take(std::move(r), {path_});
  }

  const std::string& path() const { return path_; }
  const std::string& engine() const { return runnable_->engine; }
  const ModelSpec& spec() const { return runnable_->spec; }
  int64_t size_bytes() const { return runnable_->size_bytes; }
  std::vector<std::string> class_names() const { return runnable_->spec.class_names; }

  // images: uint8 [H, W, C] or [N, H, W, C] (C = 1, 3 or 4), a list of uint8 [H, W(, C)] images
  // of any sizes (each preprocessed as the model's config says), or float32 [N, 3, S, S] /
  // [3, S, S] already preprocessed. Returns float32 logits [N, classes].
  py::array_t<float> Predict(const py::object& images, int batch) {
    if (batch < 1) throw py::value_error("batch: expected >= 1, found " + std::to_string(batch));
    std::vector<py::array> raw;  // uint8 images, one each
    py::array floats;            // float32 NCHW
    Collect(images, &raw, &floats);
    const ViTConfig& c = spec().config;
    const int64_t per_image = static_cast<int64_t>(c.in_chans) * c.img_size * c.img_size;
    const bool preprocessed = raw.empty();  // else `floats` is unused
    const int64_t n = preprocessed ? floats.shape(0) : static_cast<int64_t>(raw.size());
    py::array_t<float> logits({n, static_cast<int64_t>(c.num_classes)});
    float* out = logits.mutable_data();
    const float* in = preprocessed ? static_cast<const float*>(floats.data()) : nullptr;
    std::vector<Image> decoded(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) decoded[i] = ToImage(raw[i], i);
    Status status;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex_);
      std::vector<float> buffer;
      for (int64_t b0 = 0; b0 < n && status.ok(); b0 += batch) {
        const int nb = static_cast<int>(std::min<int64_t>(batch, n - b0));
        const float* x = in ? in + b0 * per_image : nullptr;
        if (!in) {
          buffer.resize(static_cast<size_t>(nb) * per_image);
          for (int i = 0; i < nb && status.ok(); ++i) {
            status =
                PreprocessImage(decoded[b0 + i], spec().preprocess, buffer.data() + i * per_image,
                                "images[" + std::to_string(b0 + i) + "]");
          }
          x = buffer.data();
        }
        if (status.ok()) runnable_->forward(x, nb, out + b0 * c.num_classes);
      }
    }
    if (!status.ok()) Raise(status);
    return logits;
  }

  py::object Evaluate(const std::string& data, int limit, int batch, bool skip_bad_images,
                      const std::string& classes, bool quiet) {
    EvalOptions options;
    options.limit = limit;
    options.batch = batch;
    options.skip_bad_images = skip_bad_images;
    options.quiet = quiet;
    if (limit < 0)
      throw py::value_error("limit: expected >= 0 (0: all), found " + std::to_string(limit));
    if (batch < 1) throw py::value_error("batch: expected >= 1, found " + std::to_string(batch));
    Result<EvalResult> r = Status::Internal("unset");
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex_);
      auto dataset = OpenImageFolder(data, classes);
      r = dataset.ok() ? EvaluateDataset(runnable_->forward, spec(), dataset.value(), options)
                       : Result<EvalResult>(dataset.status());
    }
    EvalResult result = Take(std::move(r), {data, classes});
    nlohmann::ordered_json j =
        EvalFigures(result, *runnable_, path_, data, "", batch, omp_get_max_threads());
    j["warnings"] = result.warnings;
    return ToPython(j);
  }

 private:
  // Splits `images` into uint8 images or one float32 NCHW array, checking dtype and shape.
  void Collect(const py::object& images, std::vector<py::array>* raw, py::array* floats) {
    const ViTConfig& c = spec().config;
    const std::string expected = "uint8 [H, W, 3] / [N, H, W, 3] images or float32 [N, " +
                                 std::to_string(c.in_chans) + ", " + std::to_string(c.img_size) +
                                 ", " + std::to_string(c.img_size) + "] preprocessed arrays";
    if (py::isinstance<py::list>(images) || py::isinstance<py::tuple>(images)) {
      size_t i = 0;
      for (const py::handle& item : images) {
        if (!py::isinstance<py::array>(item)) {
          throw py::value_error("images[" + std::to_string(i) + "]: expected a numpy uint8 " +
                                "image, found " + py::str(py::type::of(item)).cast<std::string>());
        }
        py::array a = py::reinterpret_borrow<py::array>(item);
        if (a.dtype().kind() != 'u' || a.itemsize() != 1 || a.ndim() < 2 || a.ndim() > 3) {
          throw py::value_error("images[" + std::to_string(i) + "]: expected uint8 [H, W] or " +
                                "[H, W, C], found " + DtypeText(a) + " " + ShapeText(a));
        }
        raw->push_back(a);
        ++i;
      }
      if (raw->empty()) throw py::value_error("images: the list is empty");
      return;
    }
    if (!py::isinstance<py::array>(images)) {
      throw py::value_error("images: expected " + expected + ", found " +
                            py::str(py::type::of(images)).cast<std::string>());
    }
    py::array a = py::reinterpret_borrow<py::array>(images);
    if (a.dtype().kind() == 'u' && a.itemsize() == 1 && (a.ndim() == 3 || a.ndim() == 4)) {
      if (a.ndim() == 3) {
        raw->push_back(a);
      } else {
        for (py::ssize_t i = 0; i < a.shape(0); ++i)
          raw->push_back(a[py::int_(i)].cast<py::array>());
      }
      if (raw->empty()) throw py::value_error("images: found 0 images " + ShapeText(a));
      return;
    }
    const bool f32 = a.dtype().equal(py::dtype::of<float>());
    const bool shape_ok = (a.ndim() == 4 || a.ndim() == 3) && a.shape(a.ndim() - 3) == c.in_chans &&
                          a.shape(a.ndim() - 2) == c.img_size &&
                          a.shape(a.ndim() - 1) == c.img_size && (a.ndim() == 3 || a.shape(0) > 0);
    if (!f32 || !shape_ok) {
      throw py::value_error("images: expected " + expected + ", found " + DtypeText(a) + " " +
                            ShapeText(a));
    }
    *floats = py::array_t<float, py::array::c_style | py::array::forcecast>(a);  // throws
    if (a.ndim() == 3)
      *floats = floats->reshape({py::ssize_t{1}, a.shape(0), a.shape(1), a.shape(2)});
    const float* p = static_cast<const float*>(floats->data());
    for (py::ssize_t i = 0; i < floats->size(); ++i) {
      if (!std::isfinite(p[i])) {
        const int64_t per = static_cast<int64_t>(c.in_chans) * c.img_size * c.img_size;
        throw py::value_error("images: expected finite values, found " +
                              std::string(std::isnan(p[i]) ? "NaN" : "infinity") + " in image " +
                              std::to_string(i / per));
      }
    }
  }

  // A uint8 [H, W], [H, W, 1|3|4] array as RGB the way PIL's convert("RGB") does (grey
  // replicated, alpha dropped).
  static Image ToImage(const py::array& a, size_t index) {
    const std::string name = "images[" + std::to_string(index) + "]";
    const int64_t h = a.shape(0), w = a.shape(1);
    const int64_t ch = a.ndim() == 3 ? a.shape(2) : 1;
    if (ch != 1 && ch != 3 && ch != 4) {
      throw py::value_error(name + ": expected 1, 3 or 4 channels (grey, RGB, RGBA), found " +
                            std::to_string(ch) + " in " + ShapeText(a));
    }
    if (h < 1 || w < 1 || h * w > kMaxImagePixels) {
      throw py::value_error(name + ": expected 1 to " + std::to_string(kMaxImagePixels) +
                            " pixels, found " + ShapeText(a));
    }
    py::array_t<uint8_t, py::array::c_style | py::array::forcecast> c(a);  // throws
    const uint8_t* p = c.data();
    Image img;
    img.width = static_cast<int>(w);
    img.height = static_cast<int>(h);
    img.rgb.resize(static_cast<size_t>(h * w * 3));
    for (int64_t i = 0; i < h * w; ++i) {
      for (int k = 0; k < 3; ++k) img.rgb[i * 3 + k] = p[i * ch + (ch == 1 ? 0 : k)];
    }
    return img;
  }

  std::string path_;
  std::unique_ptr<Runnable> runnable_;
  std::mutex mutex_;
};

// The keyword options of quantize() beyond the common ones: the CLI's flags under Python names.
// `scope`: 'v' vitq only, 'r' needs reconstruct=True (vitq), 's' the interval search of liu2021
// and the baselines (not vitq).
struct OptionSpec {
  const char* name;
  char scope;
  void (*set)(QuantizeOptions*, const py::handle&);
};

template <typename T>
T Cast(const py::handle& v, const char* name, const char* type) {
  try {
    return v.cast<T>();
  } catch (const py::cast_error&) {
    throw py::type_error(std::string(name) + ": expected " + type + ", found " +
                         py::str(py::type::of(v)).cast<std::string>());
  }
}

#define VITQ_OPT(pyname, scope, field, T, type)                                              \
  OptionSpec {                                                                               \
    pyname, scope,                                                                           \
        [](QuantizeOptions* q, const py::handle& v) { q->field = Cast<T>(v, pyname, type); } \
  }
const OptionSpec kOptions[] = {
    VITQ_OPT("per_channel", 'v', per_channel_weights, bool, "bool"),
    VITQ_OPT("reparam", 'v', ln_reparam, bool, "bool"),
    VITQ_OPT("gptq", 'v', gptq, bool, "bool"),
    VITQ_OPT("asym", 'v', asymmetric, bool, "bool"),
    VITQ_OPT("attn_quantizer", 'v', attn_quantizer, std::string, "str"),
    VITQ_OPT("fc2_input", 'v', fc2_input, std::string, "str"),
    VITQ_OPT("image_bits", 'v', image_bits, int, "int"),
    VITQ_OPT("reconstruct", 'v', reconstruct, bool, "bool"),
    VITQ_OPT("recon_iters", 'r', recon_iters, int, "int"),
    VITQ_OPT("recon_batch", 'r', recon_batch, int, "int"),
    VITQ_OPT("recon_drop", 'r', recon_drop, double, "float"),
    VITQ_OPT("recon_steps", 'r', recon_steps, bool, "bool"),
    VITQ_OPT("recon_round_weight", 'r', recon_round_weight, double, "float"),
    VITQ_OPT("recon_lr", 'r', recon_lr, double, "float"),
    VITQ_OPT("recon_step_lr", 'r', recon_step_lr, double, "float"),
    VITQ_OPT("recon_augment", 'r', recon_augment, int, "int"),
    VITQ_OPT("resume", 'r', resume, bool, "bool"),
    VITQ_OPT("sequential", 's', sequential, bool, "bool"),
    VITQ_OPT("ranking", 's', ranking, bool, "bool"),
    VITQ_OPT("bias_correction", 's', bias_correction, bool, "bool"),
    VITQ_OPT("grid", 's', candidates, int, "int"),
    VITQ_OPT("coarse_to_fine", 's', coarse_to_fine, bool, "bool"),
    VITQ_OPT("max_rounds", 's', max_rounds, int, "int"),
};
#undef VITQ_OPT

// Applies the keyword options, refusing unknown names and options of another method (the CLI's
// CheckMethodFlags rules).
void ApplyOptions(const py::kwargs& kwargs, QuantizeOptions* q) {
  const bool vitq = q->method == "vitq";
  bool reconstruct = false;
  if (kwargs.contains("reconstruct"))
    reconstruct = Cast<bool>(kwargs["reconstruct"], "reconstruct", "bool");
  for (const auto& [key, value] : kwargs) {
    const std::string name = py::str(key).cast<std::string>();
    const OptionSpec* spec = nullptr;
    for (const OptionSpec& o : kOptions) {
      if (name == o.name) spec = &o;
    }
    if (spec == nullptr) {
      std::string known;
      for (const OptionSpec& o : kOptions) known += std::string(known.empty() ? "" : ", ") + o.name;
      throw py::type_error("quantize() got an unexpected keyword argument '" + name +
                           "' (options: " + known + ")");
    }
    if (spec->scope == 'v' && !vitq) {
      throw py::value_error(name + " applies to method='vitq' only, not '" + q->method + "'");
    }
    if (spec->scope == 'r' && !reconstruct) {
      throw py::value_error(name + " configures reconstruct=True, which is not given");
    }
    if (spec->scope == 's' && vitq) {
      throw py::value_error(name + " configures the interval search of liu2021 and the " +
                            "baselines; method='vitq' does not use it");
    }
    spec->set(q, value);
  }
}

py::object Quantize(const std::string& model, const std::string& calib, const std::string& out,
                    const std::string& method, int wbits, int abits, int calib_size, uint64_t seed,
                    const std::string& report, bool mixed_precision, int target_bits,
                    double target_size_mb, const std::vector<int>& candidates,
                    const std::string& omega, bool quiet, const py::kwargs& kwargs) {
  QuantizeJob job;
  job.model = model;
  job.calib = calib;
  job.out = out;
  job.report = report;
  job.options.method = method;
  job.options.wbits = wbits;
  job.options.abits = abits;
  job.options.calib_size = calib_size;
  job.options.seed = seed;
  job.options.quiet = quiet;
  job.mixed = mixed_precision;
  job.mp.target_bits = target_bits;
  job.mp.target_size_mb = target_size_mb;
  job.mp.candidates = candidates;
  job.omega = omega;
  ApplyOptions(kwargs, &job.options);
  Result<QuantizeOutcome> r = Status::Internal("unset");
  {
    py::gil_scoped_release release;
    r = RunQuantizeJob(&job);
  }
  const std::string out_dir = std::filesystem::path(out).parent_path().string();
  const std::string report_dir = std::filesystem::path(report).parent_path().string();
  QuantizeOutcome outcome = Take(std::move(r), {model, calib, out_dir, report_dir});
  nlohmann::ordered_json j = outcome.json;
  j["out"] = job.out;
  j["method"] = job.options.method;
  if (!job.mixed) {
    j["wbits"] = job.options.wbits;
    j["abits"] = job.options.abits;
  }
  j["threads"] = omp_get_max_threads();
  return ToPython(j);
}

py::object Export(const std::string& model, const std::string& out, const std::string& format,
                  bool approximate) {
  ExportJob job;  // RunExportJob checks the format
  job.model = model;
  job.out = out;
  job.format = format;
  job.approximate = approximate;
  Result<nlohmann::ordered_json> r = Status::Internal("unset");
  {
    py::gil_scoped_release release;
    r = RunExportJob(job);
  }
  const std::string out_dir = std::filesystem::path(out).parent_path().string();
  return ToPython(Take(std::move(r), {model, out_dir}));
}

}  // namespace
}  // namespace vitq::python

PYBIND11_MODULE(_vitq, m) {
  using namespace vitq;
  using vitq::python::Model;
  m.doc() = "vitq: post-training quantization and integer inference for Vision Transformers";
  // VITQ_ISA caps the kernels, as for the CLI.
  if (Status isa = ConfigureIsa(); !isa.ok()) throw py::import_error(isa.message());
  ApplyThreads(0);
  m.attr("__version__") = VITQ_VERSION;

  py::class_<Model>(m, "Model", "A float checkpoint or a quantized .vitq file, ready to run.")
      .def(py::init<std::string, const std::string&, int, const std::vector<std::string>&>(),
           py::arg("path"), py::arg("engine") = "auto", py::arg("threads") = 0,
           py::arg("keep_float") = std::vector<std::string>{})
      .def_property_readonly("path", &Model::path)
      .def_property_readonly("engine", &Model::engine,
                             "'fp32', 'int8', 'simulated' or 'fake-quant'")
      .def_property_readonly("num_classes",
                             [](const Model& m) { return m.spec().config.num_classes; })
      .def_property_readonly("input_shape",
                             [](const Model& m) {
                               const ViTConfig& c = m.spec().config;
                               return py::make_tuple(c.in_chans, c.img_size, c.img_size);
                             })
      .def_property_readonly("class_names", &Model::class_names)
      .def_property_readonly("size_bytes", &Model::size_bytes,
                             "bytes of the parameters as stored (fp32 for a float model)")
      .def("predict", &Model::Predict, py::arg("images"), py::arg("batch") = 32,
           "Logits (float32 [N, classes]) of uint8 HWC images (preprocessed as the model's "
           "config says) or float32 NCHW preprocessed arrays.")
      .def(
          "info",
          [](const Model& m) {
            Result<ModelInfo> info = Status::Internal("unset");
            {
              py::gil_scoped_release release;
              info = DescribeModel(m.path());
            }
            return vitq::python::ToPython(vitq::python::Take(std::move(info), {m.path()}).json);
          },
          "What `vitq info --json` prints, as a dict.")
      .def("evaluate", &Model::Evaluate, py::arg("data"), py::arg("limit") = 0,
           py::arg("batch") = 32, py::arg("skip_bad_images") = false, py::arg("classes") = "",
           py::arg("quiet") = false,
           "Top-1/top-5 and speed on an ImageFolder, as `vitq eval --json` prints them.")
      .def("__repr__", [](const Model& m) {
        return "<vitq.Model '" + m.path() + "' engine=" + m.engine() + ">";
      });

  m.def("_quantize", &vitq::python::Quantize, py::arg("model"), py::arg("calib"), py::arg("out"),
        py::arg("method"), py::arg("wbits"), py::arg("abits"), py::arg("calib_size"),
        py::arg("seed"), py::arg("report"), py::arg("mixed_precision"), py::arg("target_bits"),
        py::arg("target_size_mb"), py::arg("candidates"), py::arg("omega"), py::arg("quiet"));
  m.def("_export", &vitq::python::Export, py::arg("model"), py::arg("out"), py::arg("format"),
        py::arg("approximate"));
  m.def(
      "set_threads", [](int n) { return ApplyThreads(n); }, py::arg("threads"),
      "Worker threads for everything vitq runs (<= 0: the CPUs this process may use); returns "
      "the count.");
  m.def(
      "isa", [] { return EffectiveIsa(); }, "The instruction set the int8 kernels use.");
}

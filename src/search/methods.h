// The quantization methods behind one interface (search stage). Each method is a small function
// in its own file; Methods() is the registry (adding a method touches one line there).
#pragma once

#include <string>
#include <vector>

#include "op_search.h"
#include "vitq/quantize.h"

namespace vitq::search {

struct MethodContext {
  int bits_w = 8, bits_x = 8;
  bool ranking = true, bias_correction = true;
  int candidates = 100, max_rounds = 20;
  int coarse_step = 0;  // > 1: coarse-to-fine grid (SearchOptions::coarse_step)
  kernels::DnnlContext* ctx = nullptr;
};

using MethodFn = OpResult (*)(const OpTensors& op, const MethodContext& mc);
// A method that owns the whole model pass (it may transform the model, e.g. fold LayerNorm
// into the next layer, and round weights itself) instead of deciding one operation at a time.
using PipelineFn = Result<QuantPlan> (*)(const ViTModel& model, const CalibrationSet& calib,
                                         const QuantizeOptions& opts, QuantizeReport* report);

// Exactly one of `run` (per operation, inside QuantizeModel's capture loop) and `pipeline`.
struct MethodInfo {
  const char* name;
  MethodFn run;
  const char* description;
  PipelineFn pipeline = nullptr;
  // Its statistics are per image, reduced in image order (op_search.cc): in an MPI job every
  // process takes a block of the calibration images. The others run on rank 0 alone.
  bool distributed = false;
};

const std::vector<MethodInfo>& Methods();
const MethodInfo* FindMethod(const std::string& name);

// The methods (method_*.cc).
OpResult RunMinMax(const OpTensors& op, const MethodContext& mc);
OpResult RunPercentile(const OpTensors& op, const MethodContext& mc);
OpResult RunOmse(const OpTensors& op, const MethodContext& mc);
OpResult RunEasyQuant(const OpTensors& op, const MethodContext& mc);
OpResult RunLiu2021(const OpTensors& op, const MethodContext& mc);

// Shared by the methods: the figures of fixed scales (no search), for the report.
OpResult EvaluateFixed(const OpTensors& op, const MethodContext& mc, float scale_w, float scale_x);
// The tensors of an operation: X (input / first operand) and W (weight / second operand).
struct OperandView {
  const float* data;
  int64_t size;
};
OperandView OperandX(const OpTensors& op);
OperandView OperandW(const OpTensors& op);

}  // namespace vitq::search

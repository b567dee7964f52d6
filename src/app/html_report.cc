// Reports as one self-contained HTML page with inline SVG charts (app): a quantization report
// (per-layer similarity and SQNR, intervals and bits, reconstruction, mixed precision's Ω table
// and Pareto curve) or a compare grid. XHTML-compatible markup (every element closed, attributes
// quoted, text escaped), no scripts, no network.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "vitq/app.h"

namespace vitq {
namespace {
using Json = nlohmann::ordered_json;

// A report's error: a key missing or of the wrong type (caught in ReportHtml).
struct BadReport : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Text for the page: HTML special characters escaped; control characters other than tab and
// newline, and bytes that are not valid UTF-8, replaced by U+FFFD (neither may appear in XML).
std::string Esc(const std::string& s) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  std::string o;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '&': o += "&amp;"; break;
        case '<': o += "&lt;"; break;
        case '>': o += "&gt;"; break;
        case '"': o += "&quot;"; break;
        default: o += (c < 0x20 && c != '\t' && c != '\n') || c == 0x7f ? kReplacement
                                                                        : std::string(1, c);
      }
      ++i;
      continue;
    }
    // A UTF-8 sequence: lead byte, length, continuation bytes, no overlong or surrogate forms.
    const int len = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok && len >= 3) {
      const unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0) || (c == 0xF0 && c1 < 0x90) ||
          (c == 0xF4 && c1 >= 0x90))
        ok = false;
    }
    if (ok) {
      o.append(s, i, len);
      i += len;
    } else {
      o += kReplacement;
      ++i;
    }
  }
  return o;
}

// The array or object at `key`, or BadReport.
const Json& Array(const Json& j, const char* key) {
  const Json& v = j.at(key);
  if (!v.is_array()) throw BadReport(std::string("\"") + key + "\" is not an array");
  return v;
}
const Json& Object(const Json& j, const char* key) {
  const Json& v = j.at(key);
  if (!v.is_object()) throw BadReport(std::string("\"") + key + "\" is not an object");
  return v;
}
// A small integer (a bit-width, a count) at `key`, or BadReport.
int64_t Int(const Json& j, const char* key) {
  const Json& v = j.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < -(int64_t{1} << 53) ||
      v.get<int64_t>() > (int64_t{1} << 53))
    throw BadReport(std::string("\"") + key + "\" is not an integer");
  return v.get<int64_t>();
}

std::string Num(double v, const char* fmt = "%.4g") {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  char b[64];
  const int n = std::snprintf(b, sizeof b, fmt, v);
  if (n < 0 || n >= static_cast<int>(sizeof b)) std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

std::string Text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return Num(v.get<double>(), "%.6g");
  return DumpJson(v, -1);
}

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"};

struct Series {
  std::string name;
  std::vector<double> y;
  std::vector<double> x;  // empty: 0, 1, 2, ...
  bool points = false;    // markers only (a scatter)
  bool bars = false;      // one bar per value (x = 0, 1, 2, ...)
};

Series Line(const std::string& name, std::vector<double> y) {
  Series s;
  s.name = name;
  s.y = std::move(y);
  return s;
}

// An x/y chart: axes with ticks, one polyline (or markers) per series, a legend.
std::string Chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                  const std::vector<Series>& series, const std::vector<std::string>& point_labels = {}) {
  const double W = 860, H = 320, L = 84, R = 20, T = 48, B = 50;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const Series& s : series) {
    for (size_t i = 0; i < s.y.size(); ++i) {
      const double x = s.x.empty() ? static_cast<double>(i) : s.x[i];
      if (!std::isfinite(x) || !std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  }
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\" role=\"img\"><title>" << Esc(title)
    << "</title><text x=\"" << L << "\" y=\"18\" font-weight=\"bold\">" << Esc(title) << "</text>";
  if (x0 > x1) return o.str() + "<text x=\"70\" y=\"60\">no data</text></svg>";
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1e-6 + std::fabs(y0) * 1e-3;
  const double pad = (y1 - y0) * 0.05;
  const bool from_zero = y0 >= 0 && series[0].bars;
  y0 = from_zero ? 0 : (y0 >= 0 && y0 - pad < 0 ? 0 : y0 - pad), y1 += pad;
  bool index_axis = true;  // x values are the integers 0..n-1: integer ticks, bars centred
  for (const Series& s : series) index_axis = index_axis && s.x.empty();
  if (index_axis) x0 -= 0.5, x1 += 0.5;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  o << "<g font-size=\"11\" fill=\"#444\">";
  for (int k = 0; k <= 4; ++k) {
    const double y = y0 + (y1 - y0) * k / 4;
    o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << py(y) << "\" y2=\"" << py(y)
      << "\" stroke=\"#ddd\"/><text x=\"" << L - 6 << "\" y=\"" << py(y) + 4
      << "\" text-anchor=\"end\">" << Num(y) << "</text>";
  }
  for (int k = 0; k <= 4; ++k) {
    double x = x0 + (x1 - x0) * k / 4;
    if (index_axis) x = std::round(std::min(std::max(x, x0 + 0.5), x1 - 0.5));
    o << "<text x=\"" << px(x) << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\">"
      << Num(x) << "</text>";
  }
  o << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 12 << "\" text-anchor=\"middle\">"
    << Esc(xlabel) << "</text><text transform=\"translate(14," << (T + H - B) / 2
    << ") rotate(-90)\" text-anchor=\"middle\">" << Esc(ylabel) << "</text></g>";
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\""
    << H - T - B << "\" fill=\"none\" stroke=\"#888\"/>";
  for (size_t si = 0; si < series.size(); ++si) {
    const Series& s = series[si];
    const char* color = kColors[si % 6];
    std::ostringstream pts;
    for (size_t i = 0; i < s.y.size(); ++i) {
      const double x = s.x.empty() ? static_cast<double>(i) : s.x[i];
      if (!std::isfinite(x) || !std::isfinite(s.y[i])) continue;
      if (s.bars) {
        const double w = std::max(1.0, (px(1) - px(0)) * 0.7);
        o << "<rect x=\"" << px(x) - w / 2 << "\" y=\"" << py(s.y[i]) << "\" width=\"" << w
          << "\" height=\"" << py(y0) - py(s.y[i]) << "\" fill=\"" << color << "\"/>";
      } else if (s.points) {
        o << "<circle cx=\"" << px(x) << "\" cy=\"" << py(s.y[i]) << "\" r=\"4\" fill=\"" << color
          << "\">";
        if (i < point_labels.size()) o << "<title>" << Esc(point_labels[i]) << "</title>";
        o << "</circle>";
        if (i < point_labels.size()) {  // to the left of points near the right edge
          const bool left = px(x) > W - R - 120;
          // Alternately above and below, so labels of neighbouring points do not overlap.
          o << "<text x=\"" << px(x) + (left ? -6 : 6) << "\" y=\"" << py(s.y[i]) + (i % 2 ? 14 : -6)
            << "\" font-size=\"10\" fill=\"#333\"" << (left ? " text-anchor=\"end\"" : "")
            << ">" << Esc(point_labels[i]) << "</text>";
        }
      } else {
        pts << px(x) << "," << py(s.y[i]) << " ";
      }
    }
    if (!s.points && !s.bars) {
      o << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\""
        << pts.str() << "\"/>";
    }
    if (series.size() > 1) {  // the legend, above the plot on the right
      const double lx = W - R - 230 * (series.size() - si);
      o << "<rect x=\"" << lx << "\" y=\"28\" width=\"10\" height=\"10\" fill=\"" << color
        << "\"/><text x=\"" << lx + 14 << "\" y=\"37\" font-size=\"11\">" << Esc(s.name)
        << "</text>";
    }
  }
  return o.str() + "</svg>";
}

std::string Page(const std::string& title, const std::string& body) {
  return "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head>"
         "<meta charset=\"utf-8\"/><title>" +
         Esc(title) +
         "</title><style>body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}"
         "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
         "th{background:#f3f3f3}td.l,th.l{text-align:left}tr.hi td{background:#fff3c4}"
         "td.chosen{background:#cfe8ff;font-weight:bold}svg{display:block;margin:1em 0}"
         "h2{margin-top:1.6em;border-bottom:1px solid #ddd}</style></head><body><h1>" +
         Esc(title) + "</h1>" + body + "<p style=\"color:#888;font-size:12px\">Made by vitq " +
         Esc(VITQ_VERSION_STRING) + ".</p></body></html>\n";
}

// The "run" object (how the report was made) as a two-column table.
std::string RunTable(const Json& j) {
  if (!j.contains("run")) {
    return "<p>How this run was made is not recorded in the report (written by an older vitq).</p>";
  }
  std::string o = "<h2>How it was made</h2><table>";
  for (const auto& [k, v] : Object(j, "run").items()) {
    o += "<tr><th class=\"l\">" + Esc(k) + "</th><td class=\"l\">" + Esc(Text(v)) + "</td></tr>";
  }
  return o + "</table>";
}

std::string QuantizeBody(const Json& j) {
  std::ostringstream o;
  o << RunTable(j);
  const Json& ops = Array(j, "ops");
  std::vector<double> before, after, sqnr;
  double mb = 0, ma = 0;
  for (const Json& op : ops) {
    before.push_back(op.at("similarity_before").get<double>());
    after.push_back(op.at("similarity_after").get<double>());
    sqnr.push_back(op.at("sqnr_db").get<double>());
    mb += before.back(), ma += after.back();
  }
  const double n = std::max<size_t>(1, ops.size());
  o << "<h2>Summary</h2><table><tr><th class=\"l\">operations</th><td>" << ops.size()
    << "</td></tr><tr><th class=\"l\">mean similarity before → after the search</th><td>"
    << Num(mb / n, "%.5f") << " → " << Num(ma / n, "%.5f") << "</td></tr>"
    << "<tr><th class=\"l\">calibration images</th><td>" << Esc(Text(j.at("calib_images")))
    << " (list " << Esc(Text(j.value("calib_hash", Json("")))) << ")</td></tr>";
  if (j.contains("seconds")) {
    o << "<tr><th class=\"l\">time (s)</th><td>";
    for (const auto& [k, v] : Object(j, "seconds").items())
      o << Esc(k) << " " << Num(v.get<double>(), "%.1f") << " ";
    o << "</td></tr>";
  }
  o << "</table>";
  o << "<h2>Per layer</h2>"
    << Chart("Similarity of each operation's output to the float output",
             "operation (in model order, table below)", "similarity",
             {Line("before the search (initial interval)", before), Line("after the search", after)})
    << Chart("SQNR of each operation's output", "operation", "dB", {Line("SQNR after the search", sqnr)});
  o << "<table><tr><th>#</th><th class=\"l\">layer</th><th>W bits</th><th>A bits</th>"
       "<th>Δw</th><th>Δx</th><th>similarity before</th><th>after</th><th>SQNR (dB)</th>"
       "<th>rounds</th><th>s</th></tr>";
  // The worst 10 % by similarity after are highlighted.
  std::vector<double> sorted = after;
  std::sort(sorted.begin(), sorted.end());
  const double worst = sorted.empty() ? 0 : sorted[sorted.size() / 10];
  for (size_t i = 0; i < ops.size(); ++i) {
    const Json& op = ops[i];
    o << "<tr" << (after[i] <= worst ? " class=\"hi\"" : "") << "><td>" << i
      << "</td><td class=\"l\">" << Esc(op.at("layer").get<std::string>()) << "</td><td>"
      << Int(op, "bits_w") << "</td><td>" << Int(op, "bits_x") << "</td><td>"
      << Num(op.at("scale_w").get<double>()) << "</td><td>" << Num(op.at("scale_x").get<double>())
      << "</td><td>" << Num(before[i], "%.5f") << "</td><td>" << Num(after[i], "%.5f")
      << "</td><td>" << Num(sqnr[i], "%.1f") << "</td><td>" << (op.contains("rounds") ? Int(op, "rounds") : 0)
      << "</td><td>" << Num(op.value("seconds", 0.0), "%.2f") << "</td></tr>";
  }
  o << "</table><p>Highlighted: the 10 % of operations with the lowest similarity after the "
       "search.</p>";
  if (j.contains("reconstruction")) {
    o << "<h2>Block reconstruction</h2><table><tr><th class=\"l\">block</th><th>loss, closed "
         "form</th><th>learned</th><th>kept</th><th>s</th></tr>";
    std::vector<double> li, lf;
    for (const Json& r : Array(j, "reconstruction")) {
      li.push_back(r.at("loss_init").get<double>());
      lf.push_back(r.at("loss_final").get<double>());
      o << "<tr><td class=\"l\">" << Esc(r.at("block").get<std::string>()) << "</td><td>"
        << Num(li.back()) << "</td><td>" << Num(r.at("loss_learned").get<double>()) << "</td><td>"
        << Num(lf.back()) << (r.value("kept_init", false) ? " (closed form kept)" : "")
        << "</td><td>" << Num(r.value("seconds", 0.0), "%.1f") << "</td></tr>";
    }
    o << "</table>"
      << Chart("Block output loss", "block", "MSE",
               {Line("closed-form plan", li), Line("after reconstruction", lf)});
  }
  if (j.contains("mixed_precision")) {
    const Json& mp = Object(j, "mixed_precision");
    std::vector<int64_t> cands;
    for (const Json& c : Array(mp, "candidates")) {
      if (!c.is_number_integer()) throw BadReport("\"candidates\" holds a non-integer");
      cands.push_back(c.get<int64_t>());
    }
    o << "<h2>Mixed precision</h2><table><tr><th class=\"l\">Ω criterion</th><td>"
      << Esc(Text(mp.value("omega_criterion", Json("")))) << "</td></tr><tr><th class=\"l\">size"
      << "</th><td>" << Num(mp.at("size_bytes").get<double>() / 1e6, "%.3f") << " MB of a "
      << Num(mp.at("budget_bytes").get<double>() / 1e6, "%.3f") << " MB budget</td></tr>"
      << "<tr><th class=\"l\">Σ Ω</th><td>" << Num(mp.at("total_omega").get<double>())
      << "</td></tr></table>";
    std::vector<double> bits;
    o << "<h3>Ω table (chosen bit-width highlighted)</h3><table><tr><th class=\"l\">module</th>"
         "<th>weights</th><th>nuclear norm</th>";
    for (int64_t c : cands) o << "<th>Ω at " << c << " bits</th>";
    o << "<th>bits</th></tr>";
    for (const Json& m : Array(mp, "modules")) {
      const int64_t chosen = Int(m, "bits");
      bits.push_back(static_cast<double>(chosen));
      o << "<tr><td class=\"l\">" << Esc(m.at("module").get<std::string>()) << "</td><td>"
        << Int(m, "params") << "</td><td>" << Num(m.at("nuclear_norm").get<double>())
        << "</td>";
      const Json& om = m.at("omega");
      for (size_t c = 0; c < cands.size(); ++c) {
        const double v = om.is_array() && c < om.size() ? om[c].get<double>() : NAN;
        o << "<td" << (cands[c] == chosen ? " class=\"chosen\"" : "") << ">" << Num(v) << "</td>";
      }
      o << "<td>" << chosen << "</td></tr>";
    }
    Series bar = Line("bits", bits);
    bar.bars = true;
    o << "</table>" << Chart("Bits per module", "module (in model order, table above)", "bits", {bar});
    Series curve{"least Σ Ω at each size", {}, {}, false};
    for (const Json& p : mp.contains("pareto") ? Array(mp, "pareto") : Json::array()) {
      curve.x.push_back(p.at("size_bytes").get<double>() / 1e6);
      curve.y.push_back(p.at("omega").get<double>());
    }
    Series chosen{"chosen", {mp.at("total_omega").get<double>()},
                  {mp.at("size_bytes").get<double>() / 1e6}, true};
    o << Chart("Pareto curve: model size against Σ Ω", "MB of parameters", "Σ Ω",
               {curve, chosen}, {"chosen"});
  }
  return o.str();
}

std::string CompareBody(const Json& j) {
  std::ostringstream o;
  o << RunTable(j);
  o << "<h2>Results</h2><p>" << Esc(Text(j.value("images", Json(0))))
    << " evaluation images; every quantized row runs on the engine it deploys to (column "
       "\"run on\").</p><table><tr><th class=\"l\">method</th><th>bits</th><th>top-1</th>"
       "<th>top-5</th><th>agreement</th><th>KL</th><th>size (MB)</th><th>calib (s)</th>"
       "<th class=\"l\">run on</th></tr>";
  Series pts{"rows", {}, {}, true};
  std::vector<std::string> labels;
  for (const Json& r : Array(j, "rows")) {
    const std::string label = r.at("method").get<std::string>() + " " + Text(r.at("bits"));
    o << "<tr><td class=\"l\">" << Esc(r.at("method").get<std::string>()) << "</td><td>"
      << Esc(Text(r.at("bits"))) << "</td><td>" << Num(r.at("top1").get<double>(), "%.4f")
      << "</td><td>" << Num(r.at("top5").get<double>(), "%.4f") << "</td><td>"
      << Num(r.at("agreement").get<double>(), "%.4f") << "</td><td>"
      << Num(r.at("kl").get<double>(), "%.5f") << "</td><td>"
      << Num(r.at("size_mb").get<double>(), "%.2f") << "</td><td>"
      << Num(r.at("calib_seconds").get<double>(), "%.1f") << "</td><td class=\"l\">"
      << Esc(Text(r.at("path"))) << "</td></tr>";
    pts.x.push_back(r.at("size_mb").get<double>());
    pts.y.push_back(r.at("top1").get<double>());
    labels.push_back(label);
  }
  o << "</table>" << Chart("Top-1 against model size", "MB of parameters", "top-1", {pts}, labels);
  return o.str();
}
}  // namespace

Result<std::string> ReportHtml(const nlohmann::ordered_json& report, const std::string& title) {
  try {
    if (report.is_object() && report.contains("rows")) {
      return Page("vitq compare: " + title, CompareBody(report));
    }
    if (report.is_object() && report.contains("ops")) {
      return Page("vitq quantization report: " + title, QuantizeBody(report));
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidInput(std::string("not a vitq report as expected: ") + e.what());
  } catch (const BadReport& e) {
    return Status::InvalidInput(std::string("not a vitq report as expected: ") + e.what());
  }
  return Status::InvalidInput(
      "expected a vitq report (an object with \"ops\", from vitq quantize --report) or a "
      "compare result (with \"rows\", from vitq compare --json)");
}

}  // namespace vitq

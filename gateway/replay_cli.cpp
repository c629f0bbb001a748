#include "gateway/replay_cli.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "config/policy_config.h"
#include "config/policy_writer.h"
#include "core/json.h"
#include "gateway/cost_plot.h"
#include "policies/policy.h"
#include "router/calibrate.h"
#include "router/replay_run.h"

namespace frugal::gateway {

namespace {

constexpr const char* kReplayUsage =
    "usage: frugal replay --policy P.yaml --log L.jsonl [--json] [--no-budgets] [--reclassify]\n"
    "  --reclassify  classify every line from its request, even when it records its request_type\n";
constexpr const char* kCalibrateUsage =
    "usage: frugal calibrate --policy P.yaml --log L.jsonl (--target-accuracy X | --max-cost Y)\n"
    "                        [--folds K] [--models a,b,c] [--max-tiers N] [--seed S] [--json]\n"
    "                        [--write OUT.yaml] [--plot OUT.png] [--reclassify]\n"
    "  --target-accuracy X  0.92, 92%, or relative to the reference model: ref, ref-0.5pp\n"
    "  --max-cost Y         mean USD per request (e.g. 0.0004)\n"
    "  --folds K            cross-validation folds (default 5, at least 2)\n"
    "  --models a,b,c       candidate models (default: every model recorded in all of a type's records)\n"
    "  --max-tiers N        longest cascade searched, 1..4 (default 3)\n";

double usd(Money m) { return static_cast<double>(m.picos()) / 1e12; }

std::string pct(std::optional<double> v) {
  if (!v) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f%%", *v * 100);
  return b;
}

std::string ratio(Money a, Money b) {
  if (b == Money{}) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", usd(a) / usd(b));
  return buf;
}

std::string pad(std::string s, size_t n) {
  if (s.size() < n) s.append(n - s.size(), ' ');
  return s;
}

struct Loaded {
  std::shared_ptr<const policies::CompiledPolicy> policy;
  backends::ReplayLog log;
  std::string policy_text;
};

// Loads the policy and the log; prints why not and returns nullopt.
std::optional<Loaded> load(const std::string& policy_path, const std::string& log_path, const char* cmd,
                           std::ostream& err) {
  Loaded l;
  std::ifstream pf(policy_path, std::ios::binary);
  if (!pf) {
    err << "frugal " << cmd << ": cannot open " << policy_path << "\n";
    return std::nullopt;
  }
  std::stringstream ss;
  ss << pf.rdbuf();
  l.policy_text = ss.str();
  auto pc = config::load_policy_text(l.policy_text, policy_path);
  if (!pc) {
    err << "frugal " << cmd << ": " << pc.error().message << "\n";
    return std::nullopt;
  }
  auto compiled = policies::compile_policy(*pc);
  if (!compiled) {
    err << "frugal " << cmd << ": " << compiled.error().message << "\n";
    return std::nullopt;
  }
  l.policy = *compiled;
  auto log = backends::read_replay_log_file(log_path);
  if (!log) {
    err << "frugal " << cmd << ": " << log.error().message << "\n";
    return std::nullopt;
  }
  l.log = std::move(*log);
  return l;
}

void usd_value(JsonWriter& w, Money m) { w.raw(m.to_usd_string()); }

void figures_json(JsonWriter& w, const router::ReplayFigures& f) {
  w.begin_object();
  w.key("requests").value(f.requests);
  w.key("answered").value(f.answered);
  w.key("labelled").value(f.labelled);
  w.key("correct").value(f.correct);
  w.key("accuracy");
  if (auto a = f.accuracy()) w.value(*a);
  else w.null();
  w.key("cost_usd");
  usd_value(w, f.cost);
  w.end_object();
}

void type_json(JsonWriter& w, const router::ReplayTypeReport& t) {
  w.begin_object();
  w.key("requests").value(t.policy.requests);
  w.key("answered").value(t.policy.answered);
  w.key("failed").value(t.failed);
  w.key("denied").value(t.denied);
  w.key("cost_usd");
  usd_value(w, t.policy.cost);
  w.key("baseline_usd");
  usd_value(w, t.baseline);
  w.key("savings_usd");
  usd_value(w, t.baseline - t.policy.cost);
  w.key("labelled").value(t.policy.labelled);
  w.key("accuracy");
  if (auto a = t.policy.accuracy()) w.value(*a);
  else w.null();
  if (!t.request_type.empty() && t.request_type != "overall") {
    w.key("routed").value(t.routed);
    w.key("reference_model").value(t.reference_model);
    w.key("tiers").begin_array();
    for (const auto& s : t.tiers) {
      w.begin_object();
      w.key("model").value(s.model);
      w.key("tried").value(s.tried);
      w.key("accepted").value(s.accepted);
      w.key("escalated").value(s.rejected + s.errors);
      w.key("rejected").value(s.rejected);
      w.key("errors").value(s.errors);
      w.key("cost_usd");
      usd_value(w, s.cost);
      w.end_object();
    }
    w.end_array();
  }
  w.key("reference");
  figures_json(w, t.reference);
  w.key("reference_missing").value(t.reference_missing);
  w.key("pricing_errors").begin_array();
  for (const auto& e : t.pricing_errors) w.value(e);
  w.end_array();
  w.end_object();
}

void type_text(std::ostream& out, const router::ReplayTypeReport& t, bool overall) {
  if (overall) {
    out << "overall\n";
  } else {
    out << "request type " << t.request_type << " (";
    if (t.routed) {
      for (size_t i = 0; i < t.tiers.size(); ++i) out << (i ? " > " : "route: ") << t.tiers[i].model;
    } else {
      out << "no route: the requested model";
    }
    out << "; reference " << t.reference_model << ")\n";
  }
  out << "  " << pad("", 22) << pad("requests", 10) << pad("answered", 10) << pad("accuracy", 10) << pad("cost", 16)
      << pad("baseline", 16) << "savings\n";
  out << "  " << pad("policy", 22) << pad(std::to_string(t.policy.requests), 10)
      << pad(std::to_string(t.policy.answered), 10) << pad(pct(t.policy.accuracy()), 10)
      << pad("$" + t.policy.cost.to_usd_string(), 16) << pad("$" + t.baseline.to_usd_string(), 16) << "$"
      << (t.baseline - t.policy.cost).to_usd_string() << "\n";
  out << "  " << pad(overall ? "always the reference" : "always " + t.reference_model, 22)
      << pad(std::to_string(t.reference.requests), 10) << pad(std::to_string(t.reference.answered), 10)
      << pad(pct(t.reference.accuracy()), 10) << pad("$" + t.reference.cost.to_usd_string(), 16) << "\n";
  out << "  cost vs always the reference: " << ratio(t.policy.cost, t.reference.cost);
  if (t.failed) out << "; " << t.failed << " failed";
  if (t.denied) out << "; " << t.denied << " denied by budgets";
  if (t.reference_missing) out << "; " << t.reference_missing << " without a recorded reference outcome";
  out << "\n";
  for (size_t i = 0; i < t.tiers.size(); ++i) {
    const auto& s = t.tiers[i];
    out << "  tier " << (i + 1) << " " << pad(s.model, 20) << " tried " << s.tried << ", accepted " << s.accepted
        << " (" << pct(s.tried ? std::optional<double>(static_cast<double>(s.accepted) / static_cast<double>(s.tried))
                              : std::nullopt)
        << "), escalated " << (s.rejected + s.errors) << " (rejected " << s.rejected << ", errors " << s.errors
        << "), cost $" << s.cost.to_usd_string() << "\n";
  }
  for (const auto& e : t.pricing_errors) out << "  pricing: " << e << "\n";
}

int report_errors(const std::vector<std::string>& errors, const char* cmd, std::ostream& err) {
  if (errors.empty()) return 0;
  for (const auto& e : errors) err << "frugal " << cmd << ": " << e << "\n";
  err << "frugal " << cmd << ": " << errors.size() << " bad line" << (errors.size() == 1 ? "" : "s") << " in the log\n";
  return 1;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= s.size()) {
    size_t c = s.find(',', at);
    if (c == std::string::npos) c = s.size();
    if (c > at) out.push_back(s.substr(at, c - at));
    at = c + 1;
  }
  return out;
}

bool parse_number(const std::string& s, double& out) {
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return !s.empty() && end && *end == '\0' && std::isfinite(out);
}

// 0.92, 92%, ref, ref-0.5pp, ref-0.005
bool parse_target(const std::string& s, router::CalibrateOptions& o) {
  if (s.rfind("ref", 0) == 0) {
    std::string rest = s.substr(3);
    if (rest.empty()) {
      o.below_reference = 0.0;
      return true;
    }
    if (rest[0] != '-') return false;
    rest = rest.substr(1);
    double v = 0;
    if (rest.size() > 2 && rest.substr(rest.size() - 2) == "pp") {
      if (!parse_number(rest.substr(0, rest.size() - 2), v) || v < 0 || v > 100) return false;
      o.below_reference = v / 100;
    } else {
      if (!parse_number(rest, v) || v < 0 || v > 1) return false;
      o.below_reference = v;
    }
    return true;
  }
  double v = 0;
  if (!s.empty() && s.back() == '%') {
    if (!parse_number(s.substr(0, s.size() - 1), v) || v < 0 || v > 100) return false;
    o.target_accuracy = v / 100;
    return true;
  }
  if (!parse_number(s, v) || v < 0 || v > 1) return false;
  o.target_accuracy = v;
  return true;
}

void cascade_json(JsonWriter& w, const router::CascadeChoice& c) {
  w.begin_array();
  for (size_t i = 0; i < c.models.size(); ++i) {
    w.begin_object().key("model").value(c.models[i]);
    if (i < c.thresholds.size())
      w.key("accept").begin_object().key("confidence").begin_object().key("min").value(c.thresholds[i]).end_object().end_object();
    w.end_object();
  }
  w.end_array();
}

std::string cascade_text(const router::CascadeChoice& c) {
  std::string s;
  for (size_t i = 0; i < c.models.size(); ++i) {
    if (i) s += " > ";
    s += c.models[i];
    if (i < c.thresholds.size()) {
      char b[48];
      std::snprintf(b, sizeof b, " (confidence >= %.4g)", c.thresholds[i]);
      s += b;
    }
  }
  return s;
}

void calib_figures_json(JsonWriter& w, const router::CalibFigures& f) {
  w.begin_object().key("accuracy").value(f.accuracy()).key("cost_usd");
  usd_value(w, f.cost);
  w.end_object();
}

}  // namespace

int replay_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::string policy_path, log_path;
  bool json = false;
  router::ReplayOptions opts;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if ((a == "--policy" || a == "--log") && i + 1 < args.size()) (a == "--policy" ? policy_path : log_path) = args[++i];
    else if (a == "--json") json = true;
    else if (a == "--no-budgets") opts.budgets = false;
    else if (a == "--reclassify") opts.reclassify = true;
    else {
      err << "frugal replay: unknown or incomplete option '" << a << "'\n" << kReplayUsage;
      return 2;
    }
  }
  if (policy_path.empty() || log_path.empty()) {
    err << "frugal replay: --policy and --log are required\n" << kReplayUsage;
    return 2;
  }
  auto l = load(policy_path, log_path, "replay", err);
  if (!l) return 1;
  const router::ReplayReport r = router::run_replay(*l->policy, l->log, opts);
  if (json) {
    std::string s;
    JsonWriter w(s);
    w.begin_object();
    w.key("records").value(static_cast<int64_t>(l->log.records.size()));
    w.key("bad_lines").value(static_cast<int64_t>(r.errors.size()));
    w.key("request_types").begin_object();
    for (const auto& t : r.types) {
      w.key(t.request_type);
      type_json(w, t);
    }
    w.end_object();
    w.key("overall");
    type_json(w, r.overall);
    w.key("errors").begin_array();
    for (const auto& e : r.errors) w.value(e);
    w.end_array();
    w.end_object();
    out << s << "\n";
  } else {
    out << "policy " << policy_path << " over " << log_path << ": " << l->log.records.size() << " records";
    if (!r.errors.empty()) out << ", " << r.errors.size() << " bad lines (listed on stderr)";
    out << "\n\n";
    for (const auto& t : r.types) {
      type_text(out, t, false);
      out << "\n";
    }
    type_text(out, r.overall, true);
  }
  return report_errors(r.errors, "replay", err);
}

int calibrate_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::string policy_path, log_path, write_path, plot_path;
  bool json = false, have_goal = false;
  router::CalibrateOptions o;
  auto usage = [&](const std::string& why) {
    err << "frugal calibrate: " << why << "\n" << kCalibrateUsage;
    return 2;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has_value = i + 1 < args.size();
    if (a == "--json") {
      json = true;
    } else if (a == "--reclassify") {
      o.reclassify = true;
    } else if (!has_value) {
      return usage("unknown or incomplete option '" + a + "'");
    } else if (a == "--policy") {
      policy_path = args[++i];
    } else if (a == "--log") {
      log_path = args[++i];
    } else if (a == "--write") {
      write_path = args[++i];
    } else if (a == "--plot") {
      plot_path = args[++i];
    } else if (a == "--target-accuracy") {
      if (have_goal) return usage("give one of --target-accuracy and --max-cost");
      if (!parse_target(args[++i], o)) return usage("--target-accuracy: expected 0..1, N%, ref or ref-Npp");
      o.goal = router::CalibrateOptions::Goal::kTargetAccuracy;
      have_goal = true;
    } else if (a == "--max-cost") {
      if (have_goal) return usage("give one of --target-accuracy and --max-cost");
      auto m = parse_usd(args[++i]);
      if (!m || *m < Money{}) return usage("--max-cost: expected a USD amount per request, e.g. 0.0004");
      o.max_cost_per_request = *m;
      o.goal = router::CalibrateOptions::Goal::kMaxCost;
      have_goal = true;
    } else if (a == "--folds" || a == "--max-tiers" || a == "--seed") {
      double v = 0;
      if (!parse_number(args[++i], v) || v != std::floor(v) || v < 1 || v > 1e9) return usage(a + ": expected a whole number");
      if (a == "--folds") {
        if (v < 2) return usage("--folds: at least 2 (held-out figures need a held-out fold)");
        o.folds = static_cast<int>(v);
      } else if (a == "--max-tiers") {
        if (v > 4) return usage("--max-tiers: 1..4");
        o.max_tiers = static_cast<int>(v);
      } else {
        o.seed = static_cast<uint64_t>(v);
      }
    } else if (a == "--models") {
      o.models = split_list(args[++i]);
      if (o.models.empty()) return usage("--models: expected a,b,c");
    } else {
      return usage("unknown option '" + a + "'");
    }
  }
  if (policy_path.empty() || log_path.empty()) return usage("--policy and --log are required");
  if (!have_goal) return usage("give --target-accuracy or --max-cost");
  o.keep_points = !plot_path.empty();
  auto l = load(policy_path, log_path, "calibrate", err);
  if (!l) return 1;
  const router::CalibrateResult r = router::calibrate(*l->policy, l->log, o);

  std::string common_ref;
  bool one_ref = true;
  for (const auto& t : r.types) {
    if (!t.skipped.empty()) continue;
    if (common_ref.empty()) common_ref = t.reference_model;
    else if (common_ref != t.reference_model) one_ref = false;
  }
  if (json) {
    std::string s;
    JsonWriter w(s);
    w.begin_object();
    w.key("heldout");
    calib_figures_json(w, r.heldout);
    w.key("reference").begin_object();
    w.key("model");
    if (one_ref && !common_ref.empty()) w.value(common_ref);
    else w.null();
    w.key("accuracy").value(r.reference.accuracy()).key("cost_usd");
    usd_value(w, r.reference.cost);
    w.end_object();
    w.key("cost_ratio");
    if (r.reference.cost == Money{}) w.null();
    else w.value(usd(r.heldout.cost) / usd(r.reference.cost));
    w.key("policy").begin_object().key("routes").begin_object();
    for (const auto& t : r.types) {
      if (!t.skipped.empty()) continue;
      w.key(t.request_type).begin_object().key("reference_model").value(t.reference_model).key("cascade");
      cascade_json(w, t.chosen);
      w.end_object();
    }
    w.end_object().end_object();
    w.key("request_types").begin_object();
    for (const auto& t : r.types) {
      w.key(t.request_type).begin_object();
      if (!t.skipped.empty()) {
        w.key("skipped").value(t.skipped).end_object();
        continue;
      }
      w.key("heldout");
      calib_figures_json(w, t.heldout);
      w.key("reference").begin_object().key("model").value(t.reference_model);
      w.key("accuracy").value(t.reference.accuracy()).key("cost_usd");
      usd_value(w, t.reference.cost);
      w.end_object();
      w.key("cost_ratio");
      if (t.reference.cost == Money{}) w.null();
      else w.value(usd(t.heldout.cost) / usd(t.reference.cost));
      w.key("policy").begin_object().key("reference_model").value(t.reference_model).key("cascade");
      cascade_json(w, t.chosen);
      w.end_object();
      w.key("insample");
      calib_figures_json(w, t.insample);
      w.key("rows").value(t.insample.rows).key("excluded").value(t.excluded).key("folds").value(t.folds);
      if (o.goal == router::CalibrateOptions::Goal::kTargetAccuracy) w.key("target_accuracy").value(t.target);
      w.key("goal_met").value(t.goal_met);
      w.end_object();
    }
    w.end_object();
    w.end_object();
    out << s << "\n";
  } else {
    for (const auto& t : r.types) {
      out << "request type " << t.request_type;
      if (!t.skipped.empty()) {
        out << ": skipped, " << t.skipped << "\n\n";
        continue;
      }
      out << ": " << t.insample.rows << " records (" << t.excluded << " excluded), " << t.folds << " folds, ";
      if (o.goal == router::CalibrateOptions::Goal::kTargetAccuracy) {
        out << "target accuracy " << pct(t.target);
        if (o.below_reference) {
          char b[32];
          std::snprintf(b, sizeof b, "%.2g", *o.below_reference * 100);
          out << " (reference " << pct(t.reference.accuracy()) << " - " << b << "pp)";
        }
      } else {
        out << "max cost $" << o.max_cost_per_request.to_usd_string() << " per request";
      }
      out << "\n  chosen:    " << cascade_text(t.chosen) << (t.goal_met ? "" : "  (goal not met: the best there is)")
          << "\n  held-out:  accuracy " << pct(t.heldout.accuracy()) << ", cost $" << t.heldout.cost.to_usd_string()
          << " (" << ratio(t.heldout.cost, t.reference.cost) << " x the reference)"
          << "\n  in-sample: accuracy " << pct(t.insample.accuracy()) << ", cost $" << t.insample.cost.to_usd_string()
          << "\n  reference: " << t.reference_model << ", accuracy " << pct(t.reference.accuracy()) << ", cost $"
          << t.reference.cost.to_usd_string() << "\n\n";
    }
    out << "overall held-out: accuracy " << pct(r.heldout.accuracy()) << ", cost $" << r.heldout.cost.to_usd_string()
        << " (" << ratio(r.heldout.cost, r.reference.cost) << " x always the reference: accuracy "
        << pct(r.reference.accuracy()) << ", cost $" << r.reference.cost.to_usd_string() << ")\n";
  }

  int rc = report_errors(r.errors, "calibrate", err);
  if (!write_path.empty()) {
    std::vector<config::RouteRewrite> routes;
    for (const auto& t : r.types) {
      if (!t.skipped.empty()) continue;
      config::RouteRewrite rw;
      rw.request_type = t.request_type;
      for (size_t i = 0; i < t.chosen.models.size(); ++i)
        rw.cascade.push_back({t.chosen.models[i], i < t.chosen.thresholds.size()
                                                      ? std::optional<double>(t.chosen.thresholds[i])
                                                      : std::nullopt});
      routes.push_back(std::move(rw));
    }
    auto text = config::rewrite_policy_routes(l->policy_text, policy_path, routes);
    std::ofstream f(write_path, std::ios::binary | std::ios::trunc);
    if (!text || !f || !(f << *text)) {
      err << "frugal calibrate: cannot write " << write_path << (text ? "" : ": " + text.error().message) << "\n";
      return 1;
    }
    err << "frugal calibrate: wrote " << write_path << "\n";
  }
  if (!plot_path.empty()) {
    std::vector<PlotPanel> panels;
    for (const auto& t : r.types) {
      if (!t.skipped.empty()) continue;
      PlotPanel p;
      const double n = static_cast<double>(t.insample.rows);
      p.title = "REQUEST TYPE " + t.request_type + ": " + std::to_string(t.points.size()) + " CASCADES, " +
                std::to_string(t.insample.rows) + " REQUESTS";
      for (const auto& pt : t.points) p.points.emplace_back(usd(pt.figures.cost) / n, pt.figures.accuracy());
      p.chosen = {usd(t.insample.cost) / n, t.insample.accuracy()};
      p.reference = std::make_pair(usd(t.reference.cost) / n, t.reference.accuracy());
      panels.push_back(std::move(p));
    }
    const std::string png = render_cost_plot_png(panels);
    std::ofstream f(plot_path, std::ios::binary | std::ios::trunc);
    if (!f || !(f << png)) {
      err << "frugal calibrate: cannot write " << plot_path << "\n";
      return 1;
    }
    err << "frugal calibrate: plotted " << plot_path << "\n";
  }
  return rc;
}

}  // namespace frugal::gateway

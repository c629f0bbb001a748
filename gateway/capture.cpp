#include "gateway/capture.h"

#include "cache/hash.h"
#include "core/json.h"

namespace frugal::gateway {

namespace {

constexpr uint64_t kRedactSeed = 0x6361707475726531ull;

void usage_json(JsonWriter& w, const Usage& u) {
  w.begin_object();
  w.key("input_tokens").value(u.input_tokens);
  w.key("output_tokens").value(u.output_tokens);
  w.key("cached_input_tokens").value(u.cached_input_tokens);
  w.end_object();
}

std::string normalised(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

}  // namespace

std::string redact_text(std::string_view text, config::CaptureRedact redact) {
  switch (redact) {
    case config::CaptureRedact::kNone: return std::string(text);
    case config::CaptureRedact::kDrop: return {};
    case config::CaptureRedact::kHash: return "hash128:" + cache::hash128(text, kRedactSeed).to_hex();
  }
  return {};
}

std::string capture_request_json(const ChatRequest& req, config::CaptureRedact redact) {
  if (redact == config::CaptureRedact::kDrop) return {};
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("model").value(req.model);
  w.key("messages").begin_array();
  for (const auto& m : req.messages)
    w.begin_object().key("role").value(m.role).key("content").value(redact_text(m.text(), redact)).end_object();
  w.end_array();
  if (!req.response_format_json.empty()) w.key("response_format").raw(req.response_format_json);
  w.end_object();
  return out;
}

bool answers_agree(std::string_view a, std::string_view b) { return normalised(a) == normalised(b); }

std::string capture_line(const router::RequestTrace& t, config::CaptureRedact redact, std::string_view request_json,
                         std::string_view answer_text, const ShadowOutcome* shadow) {
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("id").value(t.request_id);
  w.key("ts").value(static_cast<double>(t.wall_start_us) / 1e6);
  w.key("request_type").value(t.request_type);
  if (!t.team.empty()) w.key("team").value(t.team);
  if (!t.key_id.empty()) w.key("api_key_id").value(t.key_id);
  if (!t.answer_model.empty()) w.key("answered_by").value(t.answer_model);
  if (!request_json.empty()) w.key("request").raw(request_json);
  w.key("candidates").begin_object();
  for (const auto& a : t.tiers) {
    if (a.status == router::TierStatus::kVerifier) continue;
    if (shadow && a.model == shadow->model) continue;  // the shadow's full answer stands for it
    const bool answered = a.model == t.answer_model && a.status == router::TierStatus::kAccepted;
    w.key(a.model).begin_object();
    if (answered && redact != config::CaptureRedact::kDrop) w.key("answer").value(redact_text(answer_text, redact));
    w.key("correct");
    if (answered && shadow) w.value(answers_agree(answer_text, shadow->answer));
    else w.null();
    w.key("usage");
    usage_json(w, a.usage);
    w.key("cost_usd").raw(a.cost.to_usd_string());
    if (a.last_byte_us > a.started_us) w.key("latency_ms").value((a.last_byte_us - a.started_us) / 1000);
    if (a.score) w.key("score").value(*a.score);
    w.key("status").value(a.status == router::TierStatus::kAccepted   ? "accepted"
                          : a.status == router::TierStatus::kRejected ? "rejected"
                                                                      : "error");
    w.end_object();
  }
  if (shadow) {
    w.key(shadow->model).begin_object();
    if (redact != config::CaptureRedact::kDrop) w.key("answer").value(redact_text(shadow->answer, redact));
    w.key("correct").value(true);  // the reference labels the others
    w.key("usage");
    usage_json(w, shadow->usage);
    w.key("cost_usd").raw(shadow->cost.to_usd_string());
    w.key("latency_ms").value(shadow->latency_ms);
    w.key("shadow").value(true);
    w.end_object();
  }
  w.end_object();
  w.end_object();
  return out;
}

std::string feedback_line(std::string_view request_id, std::optional<bool> correct, std::optional<double> score) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("id").value(request_id).key("feedback").begin_object();
  if (correct) w.key("correct").value(*correct);
  if (score) w.key("score").value(*score);
  w.end_object().end_object();
  return out;
}

}  // namespace frugal::gateway

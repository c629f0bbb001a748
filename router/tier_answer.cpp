#include "router/tier_answer.h"

#include <simdjson.h>

#include <algorithm>
#include <limits>

#include "backends/dialect/openai_stream_assembly.h"

namespace frugal::router {
namespace {

Error not_an_answer(std::string what) {
  return make_error(ErrorKind::kUpstream, "the tier's answer is not a usable chat.completion: " + std::move(what));
}

void read_logprobs(simdjson::dom::element lp, TierAnswer& a) {
  simdjson::dom::array content;
  if (lp.is_null() || lp["content"].get_array().get(content)) return;
  a.has_logprobs = true;
  bool all_have_two = true;
  bool first = true;
  for (simdjson::dom::element tok : content) {
    double lpv = 0;  // get_double() also converts integral numbers (a log-prob of 0)
    if (tok["logprob"].get_double().get(lpv)) lpv = -std::numeric_limits<double>::infinity();
    a.token_logprobs.push_back(lpv);
    double best = -std::numeric_limits<double>::infinity(), second = best;
    size_t n = 0;
    simdjson::dom::array top;
    if (!tok["top_logprobs"].get_array().get(top)) {
      for (simdjson::dom::element alt : top) {
        double v;
        if (alt["logprob"].get_double().get(v)) continue;
        ++n;
        if (v > best) {
          second = best;
          best = v;
        } else if (v > second) {
          second = v;
        }
        if (first) {
          std::string_view t;
          if (!alt["token"].get_string().get(t)) a.first_token_top.emplace_back(std::string(t), v);
        }
      }
    }
    if (first && a.first_token_top.empty()) {
      std::string_view t;
      if (!tok["token"].get_string().get(t)) a.first_token_top.emplace_back(std::string(t), lpv);
    }
    first = false;
    if (n >= 2) a.top2.push_back(policies::TopTwo{best, second});
    else all_have_two = false;
  }
  if (!all_have_two) a.top2.clear();
}

}  // namespace

policies::AnswerView TierAnswer::view(std::string_view response_schema_json,
                                      std::optional<double> verifier_p_yes) const {
  policies::AnswerView v;
  v.text = text;
  v.tool_calls = tool_calls;
  v.finish_reason = finish_reason;
  v.has_logprobs = has_logprobs;
  v.token_logprobs = token_logprobs;
  v.top2 = top2;
  v.verifier_p_yes = verifier_p_yes;
  v.recorded_confidence = recorded_confidence;
  v.response_schema_json = response_schema_json;
  return v;
}

Result<TierAnswer> parse_tier_answer(std::string_view body) {
  thread_local simdjson::dom::parser parser;  // keeps its buffers between answers
  simdjson::dom::element root;
  if (auto err = parser.parse(body.data(), body.size()).get(root))
    return not_an_answer(std::string("not JSON (") + simdjson::error_message(err) + ")");
  return tier_answer_of(root);
}

Result<TierAnswer> tier_answer_of(const simdjson::dom::element& root) {
  simdjson::dom::array choices;
  if (root["choices"].get_array().get(choices) || choices.size() == 0) return not_an_answer("no choices");
  simdjson::dom::element c0 = choices.at(0);
  TierAnswer a;
  simdjson::dom::element msg;
  if (!c0["message"].get(msg) && msg.is_object()) {
    std::string_view s;
    if (!msg["content"].get_string().get(s)) a.text = s;
    simdjson::dom::array calls;
    if (!msg["tool_calls"].get_array().get(calls)) {
      for (simdjson::dom::element tc : calls) {
        ToolCall call;
        if (!tc["id"].get_string().get(s)) call.id = s;
        if (!tc["function"]["name"].get_string().get(s)) call.name = s;
        if (!tc["function"]["arguments"].get_string().get(s)) call.arguments = s;
        a.tool_calls.push_back(std::move(call));
      }
    }
  }
  std::string_view fr;
  if (!c0["finish_reason"].get_string().get(fr)) a.finish_reason = fr;
  simdjson::dom::element lp;
  if (!c0["logprobs"].get(lp)) read_logprobs(lp, a);
  simdjson::dom::element u;
  if (!root["usage"].get(u) && u.is_object()) a.usage = usage_from_openai(u);
  double conf;
  if (!root["frugal_confidence"].get_double().get(conf)) a.recorded_confidence = conf;
  return a;
}

Result<TierAnswer> parse_tier_stream(const std::vector<std::string>& chunks, std::string* completion_json) {
  auto body = assemble_completion_from_chunks(chunks);
  if (!body) return not_an_answer(body.error().message);
  auto a = parse_tier_answer(*body);
  if (completion_json) *completion_json = std::move(*body);
  return a;
}

}  // namespace frugal::router

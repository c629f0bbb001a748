#include "router/output_shaping.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "core/json.h"

namespace frugal::router {

namespace {

using simdjson::dom::element;

struct MaxTokens {
  std::optional<int64_t> value;  // after shaping
  uint8_t bit = 0;               // what changed it
};

MaxTokens decide_max_tokens(std::optional<int64_t> client, const config::OutputShapingSpec& s) {
  if (client) {
    if (s.max_tokens_cap && *client > *s.max_tokens_cap) return {s.max_tokens_cap, kShapedMaxTokensCap};
    return {client, 0};
  }
  if (s.max_tokens)
    return {s.max_tokens_cap ? std::min(*s.max_tokens, *s.max_tokens_cap) : *s.max_tokens, kShapedMaxTokensDefault};
  if (s.max_tokens_cap) return {s.max_tokens_cap, kShapedMaxTokensCap};  // a cap holds without the client's value
  return {};
}

// The client's stop sequences, then the route's that are not there yet, at most 4 in all
// (OpenAI's limit; Anthropic gets the same list).
std::vector<std::string> merge_stop(const std::vector<std::string>& client, const config::OutputShapingSpec& s,
                                    bool& added) {
  std::vector<std::string> out = client;
  added = false;
  for (const auto& x : s.stop) {
    if (out.size() >= 4) break;
    if (std::find(out.begin(), out.end(), x) != out.end()) continue;
    out.push_back(x);
    added = true;
  }
  return out;
}

void write_strings(JsonWriter& w, const std::vector<std::string>& v) {
  w.begin_array();
  for (const auto& x : v) w.value(x);
  w.end_array();
}

std::string appended(std::string_view text, std::string_view instruction) {
  std::string out(text);
  if (!out.empty()) out += "\n\n";
  out.append(instruction);
  return out;
}

// A system prompt (a string, or an array of content blocks/parts) with the instruction
// appended; null/absent becomes the instruction alone.
void write_system_content(JsonWriter& w, element content, std::string_view instruction) {
  std::string_view text;
  simdjson::dom::array parts;
  if (!content.get(text)) {
    w.value(appended(text, instruction));
  } else if (!content.get(parts)) {
    w.begin_array();
    for (element p : parts) w.raw(simdjson::minify(p));
    w.begin_object().key("type").value("text").key("text").value(instruction).end_object();
    w.end_array();
  } else {
    w.value(instruction);
  }
}

Error internal(const std::string& what) {
  return make_error(ErrorKind::kInternal, "output shaping: " + what);
}

}  // namespace

Result<std::string> shape_openai_body(const ChatRequest& req,
                                      const config::OutputShapingSpec& spec, ShapingRecord& record) {
  if (!req.has_root) return internal("the request has no parsed body");
  const MaxTokens mt = decide_max_tokens(req.sampling.max_tokens, spec);
  bool stop_added = false;
  const std::vector<std::string> stop = merge_stop(req.sampling.stop, spec, stop_added);
  bool has_effort = false;
  element e;
  if (!req.root["reasoning_effort"].get(e) && !e.is_null()) has_effort = true;
  const bool set_effort = !spec.reasoning_effort.empty() && !has_effort;

  std::string out;
  out.reserve(req.openai_body.size() + spec.concise.size() + 96);
  JsonWriter w(out);
  w.begin_object();
  bool wrote_max = false, wrote_stop = false, concise_done = spec.concise.empty();
  for (auto field : req.root) {
    const std::string_view k = field.key;
    if ((k == "max_tokens" || k == "max_completion_tokens") && mt.bit) {
      if (field.value.is_null()) continue;  // as absent: written below
      w.key(k).value(*mt.value);            // the client's own key, capped
      wrote_max = true;
      continue;
    } else if (k == "stop" && stop_added) {
      w.key(k);
      write_strings(w, stop);
      wrote_stop = true;
      continue;
    } else if (k == "reasoning_effort" && set_effort) {
      continue;  // null: written below
    } else if (k == "messages" && !concise_done && field.value.is_array()) {
      w.key(k).begin_array();
      const simdjson::dom::array msgs = field.value.get_array().value_unsafe();
      size_t system_at = msgs.size();
      size_t i = 0;
      for (element m : msgs) {
        std::string_view role;
        if (system_at == msgs.size() && !m["role"].get(role) && (role == "system" || role == "developer"))
          system_at = i;
        ++i;
      }
      if (system_at == msgs.size())
        w.begin_object().key("role").value("system").key("content").value(spec.concise).end_object();
      i = 0;
      for (element m : msgs) {
        if (i++ != system_at || !m.is_object()) {
          w.raw(simdjson::minify(m));
          continue;
        }
        w.begin_object();
        bool wrote_content = false;
        for (auto mf : simdjson::dom::object(m.get_object().value_unsafe())) {
          w.key(mf.key);
          if (mf.key == "content") {
            write_system_content(w, mf.value, spec.concise);
            wrote_content = true;
          } else {
            w.raw(simdjson::minify(mf.value));
          }
        }
        if (!wrote_content) w.key("content").value(spec.concise);
        w.end_object();
      }
      w.end_array();
      concise_done = true;
      record.applied |= kShapedConcise;
      continue;
    }
    w.key(k).raw(simdjson::minify(field.value));
  }
  if (mt.bit) {
    // The client gave none: set as max_completion_tokens, OpenAI's current name (its
    // reasoning models refuse max_tokens).
    if (!wrote_max) w.key("max_completion_tokens").value(*mt.value);
    record.applied |= mt.bit;
  }
  if (stop_added) {
    if (!wrote_stop) {
      w.key("stop");
      write_strings(w, stop);
    }
    record.applied |= kShapedStop;
  }
  if (set_effort) {
    w.key("reasoning_effort").value(spec.reasoning_effort);
    record.applied |= kShapedReasoningEffort;
  }
  w.end_object();
  record.max_tokens = mt.value.value_or(0);
  return out;
}

Result<std::string> shape_anthropic_body(std::string_view body, const config::OutputShapingSpec& spec,
                                         ShapingRecord& record) {
  simdjson::dom::parser parser;
  simdjson::dom::object root;
  if (parser.parse(body.data(), body.size()).get(root)) return internal("the Anthropic body is not a JSON object");
  std::optional<int64_t> client_max;
  int64_t v = 0;
  if (!root["max_tokens"].get(v)) client_max = v;
  const MaxTokens mt = decide_max_tokens(client_max, spec);
  std::vector<std::string> client_stop;
  simdjson::dom::array ss;
  if (!root["stop_sequences"].get(ss))
    for (element x : ss) {
      std::string_view t;
      if (!x.get(t)) client_stop.emplace_back(t);
    }
  bool stop_added = false;
  const std::vector<std::string> stop = merge_stop(client_stop, spec, stop_added);

  std::string out;
  out.reserve(body.size() + spec.concise.size() + 96);
  JsonWriter w(out);
  w.begin_object();
  bool wrote_max = false, wrote_stop = false, wrote_system = false;
  for (auto field : root) {
    const std::string_view k = field.key;
    if (k == "max_tokens" && mt.bit) {
      w.key(k).value(*mt.value);
      wrote_max = true;
    } else if (k == "stop_sequences" && stop_added) {
      w.key(k);
      write_strings(w, stop);
      wrote_stop = true;
    } else if (k == "system" && !spec.concise.empty()) {
      w.key(k);
      write_system_content(w, field.value, spec.concise);
      wrote_system = true;
    } else {
      w.key(k).raw(simdjson::minify(field.value));
    }
  }
  if (mt.bit && !wrote_max) w.key("max_tokens").value(*mt.value);
  if (stop_added && !wrote_stop) {
    w.key("stop_sequences");
    write_strings(w, stop);
  }
  if (!spec.concise.empty() && !wrote_system) w.key("system").value(spec.concise);
  w.end_object();
  record.applied |= mt.bit;
  if (stop_added) record.applied |= kShapedStop;
  if (!spec.concise.empty()) record.applied |= kShapedConcise;
  record.max_tokens = mt.value.value_or(0);
  return out;
}

Result<ShapingRecord> shape_request(ChatRequest& req, const config::OutputShapingSpec& spec, ShapedBodies& keep) {
  ShapingRecord rec;
  if (!spec.any()) return rec;
  const bool openai_form = req.has_root && !req.openai_body.empty();
  if (openai_form) {
    auto body = shape_openai_body(req, spec, rec);
    if (!body) return std::move(body).error();
    if (rec.applied) {
      keep.openai_body = std::move(*body);
      auto parsed = parse_chat_body(keep.parser, keep.openai_body);
      if (!parsed) return internal("the shaped request does not parse: " + parsed.error().message);
      // Only what shaping changes: the rest of the request (tools, headers, the
      // Anthropic body, ...) stays as it is.
      req.messages = std::move(parsed->messages);
      req.sampling = std::move(parsed->sampling);
      req.root = parsed->root;
      req.openai_body = keep.openai_body;
      if (rec.applied & kShapedReasoningEffort) req.route_reasoning_effort = true;
    }
  } else {
    // No OpenAI form (an Anthropic request only Anthropic providers can take): the
    // canonical fields routing reads.
    const MaxTokens mt = decide_max_tokens(req.sampling.max_tokens, spec);
    if (mt.bit) req.sampling.max_tokens = mt.value;
    bool added = false;
    req.sampling.stop = merge_stop(req.sampling.stop, spec, added);
  }
  if (!req.anthropic_body.empty()) {
    ShapingRecord ra;
    auto body = shape_anthropic_body(req.anthropic_body, spec, ra);
    if (!body) return std::move(body).error();
    if (ra.applied) {
      keep.anthropic_body = std::move(*body);
      req.anthropic_body = keep.anthropic_body;
    }
    rec.applied |= ra.applied;
    if (!openai_form) rec.max_tokens = ra.max_tokens;
  }
  return rec;
}

}  // namespace frugal::router

#include "backends/dialect/openai_stream_assembly.h"

#include <simdjson.h>

#include <algorithm>
#include <map>
#include <optional>

#include "core/json.h"

namespace frugal {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

constexpr size_t kPiecesPerText = 4;
constexpr size_t kMinPieceBytes = 16;

Error bad_upstream(std::string message) {
  return make_error(ErrorKind::kUpstream, std::move(message));
}

std::string minify(element e) { return simdjson::minify(e); }

std::optional<std::string_view> get_str(object o, const char* key) {
  std::string_view s;
  if (o[key].get_string().get(s)) return std::nullopt;
  return s;
}

// ---- assembling -----------------------------------------------------------------

struct ToolCallAcc {
  std::string id;
  std::string type;
  std::string name;
  std::string arguments;
};

struct LogprobsAcc {
  bool present = false;  // some chunk carried a non-null logprobs object
  bool has_content = false;
  bool has_refusal = false;
  std::vector<std::string> content;  // minified token entries
  std::vector<std::string> refusal;
};

struct ChoiceAcc {
  std::string role;
  std::optional<std::string> content;
  std::optional<std::string> refusal;
  std::map<int64_t, ToolCallAcc> tool_calls;  // by delta index
  std::optional<std::string> finish_reason;
  LogprobsAcc logprobs;
};

void merge_logprob_list(element v, bool& has, std::vector<std::string>& out) {
  simdjson::dom::array arr;
  if (v.get_array().get(arr)) return;
  has = true;
  for (element t : arr) out.push_back(minify(t));
}

void merge_choice(object choice, ChoiceAcc& acc) {
  object delta;
  if (!choice["delta"].get_object().get(delta)) {
    if (auto s = get_str(delta, "role")) acc.role = std::string(*s);
    if (auto s = get_str(delta, "content")) {
      if (!acc.content) acc.content.emplace();
      acc.content->append(*s);
    }
    if (auto s = get_str(delta, "refusal")) {
      if (!acc.refusal) acc.refusal.emplace();
      acc.refusal->append(*s);
    }
    simdjson::dom::array calls;
    if (!delta["tool_calls"].get_array().get(calls)) {
      int64_t fallback_index = 0;
      for (element c : calls) {
        object co;
        if (c.get_object().get(co)) continue;
        int64_t index = fallback_index++;
        int64_t idx;
        if (!co["index"].get_int64().get(idx)) index = idx;
        auto& tc = acc.tool_calls[index];
        if (auto s = get_str(co, "id"); s && tc.id.empty()) tc.id = std::string(*s);
        if (auto s = get_str(co, "type"); s && tc.type.empty()) tc.type = std::string(*s);
        object fn;
        if (!co["function"].get_object().get(fn)) {
          if (auto s = get_str(fn, "name")) tc.name.append(*s);
          if (auto s = get_str(fn, "arguments")) tc.arguments.append(*s);
        }
      }
    }
  }
  if (auto s = get_str(choice, "finish_reason")) acc.finish_reason = std::string(*s);
  object lp;
  if (!choice["logprobs"].get_object().get(lp)) {
    acc.logprobs.present = true;
    element v;
    if (!lp["content"].get(v)) merge_logprob_list(v, acc.logprobs.has_content, acc.logprobs.content);
    if (!lp["refusal"].get(v)) merge_logprob_list(v, acc.logprobs.has_refusal, acc.logprobs.refusal);
  }
}

void write_nullable(JsonWriter& w, const std::optional<std::string>& s) {
  if (s) w.value(*s);
  else w.null();
}

void write_list_or_null(JsonWriter& w, bool has, const std::vector<std::string>& items) {
  if (!has) {
    w.null();
    return;
  }
  w.begin_array();
  for (const auto& t : items) w.raw(t);
  w.end_array();
}

// ---- splitting ------------------------------------------------------------------

// Splits `s` into up to kPiecesPerText pieces, never inside a UTF-8 sequence.
std::vector<std::string_view> pieces(std::string_view s) {
  std::vector<std::string_view> out;
  if (s.empty()) return out;
  const size_t target = std::max(kMinPieceBytes, (s.size() + kPiecesPerText - 1) / kPiecesPerText);
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = std::min(s.size(), pos + target);
    while (end < s.size() && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) ++end;
    out.push_back(s.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

struct ChunkHeader {
  std::string id;
  int64_t created = 0;
  std::string model;
  std::optional<std::string> system_fingerprint;
  std::optional<std::string> service_tier;
};

class ChunkSink {
 public:
  explicit ChunkSink(const ChunkHeader& h) : h_(h) {}
  // Emits one chunk whose single choice is written by `body(JsonWriter&)` (the
  // members of the choice object after "index").
  template <class Body>
  void choice(int64_t index, Body body) {
    std::string s;
    JsonWriter w(s);
    begin(w);
    w.key("choices").begin_array().begin_object().key("index").value(index);
    body(w);
    w.end_object().end_array().end_object();
    out.push_back(std::move(s));
  }
  void usage(std::string_view usage_json) {
    std::string s;
    JsonWriter w(s);
    begin(w);
    w.key("choices").begin_array().end_array();
    w.key("usage").raw(usage_json);
    w.end_object();
    out.push_back(std::move(s));
  }
  std::vector<std::string> out;

 private:
  void begin(JsonWriter& w) {
    w.begin_object().key("id").value(h_.id).key("object").value("chat.completion.chunk");
    w.key("created").value(h_.created).key("model").value(h_.model);
    if (h_.system_fingerprint) w.key("system_fingerprint").value(*h_.system_fingerprint);
    if (h_.service_tier) w.key("service_tier").value(*h_.service_tier);
  }
  const ChunkHeader& h_;
};

}  // namespace

Result<std::string> assemble_completion_from_chunks(const std::vector<std::string>& chunks) {
  simdjson::dom::parser parser;
  ChunkHeader h;
  bool have_id = false, have_created = false, have_model = false;
  std::optional<std::string> usage;
  std::map<int64_t, ChoiceAcc> choices;
  size_t parsed = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (chunks[i] == "[DONE]") continue;
    object o;
    if (parser.parse(chunks[i]).get_object().get(o))
      return bad_upstream("stream chunk " + std::to_string(i) + " is not a JSON object");
    ++parsed;
    if (auto s = get_str(o, "id"); s && !have_id) { h.id = std::string(*s); have_id = true; }
    if (auto s = get_str(o, "model"); s && !have_model) { h.model = std::string(*s); have_model = true; }
    int64_t created;
    if (!have_created && !o["created"].get_int64().get(created)) { h.created = created; have_created = true; }
    if (auto s = get_str(o, "system_fingerprint"); s && !h.system_fingerprint) h.system_fingerprint = std::string(*s);
    if (auto s = get_str(o, "service_tier"); s && !h.service_tier) h.service_tier = std::string(*s);
    element u;
    if (!o["usage"].get(u) && u.is_object()) usage = minify(u);
    simdjson::dom::array arr;
    if (!o["choices"].get_array().get(arr)) {
      int64_t fallback_index = 0;
      for (element c : arr) {
        object co;
        if (c.get_object().get(co)) continue;
        int64_t index = fallback_index++;
        int64_t idx;
        if (!co["index"].get_int64().get(idx)) index = idx;
        merge_choice(co, choices[index]);
      }
    }
  }
  if (parsed == 0) return bad_upstream("no stream chunks to assemble");

  std::string out;
  JsonWriter w(out);
  w.begin_object().key("id").value(h.id).key("object").value("chat.completion");
  w.key("created").value(h.created).key("model").value(h.model);
  if (h.system_fingerprint) w.key("system_fingerprint").value(*h.system_fingerprint);
  if (h.service_tier) w.key("service_tier").value(*h.service_tier);
  w.key("choices").begin_array();
  for (const auto& [index, c] : choices) {
    w.begin_object().key("index").value(index);
    w.key("message").begin_object().key("role").value(c.role.empty() ? "assistant" : c.role);
    w.key("content");
    write_nullable(w, c.content);
    w.key("refusal");
    write_nullable(w, c.refusal);
    if (!c.tool_calls.empty()) {
      w.key("tool_calls").begin_array();
      for (const auto& [ti, tc] : c.tool_calls) {
        w.begin_object().key("id").value(tc.id).key("type").value(tc.type.empty() ? "function" : tc.type);
        w.key("function").begin_object().key("name").value(tc.name).key("arguments").value(tc.arguments);
        w.end_object().end_object();
      }
      w.end_array();
    }
    w.end_object();
    w.key("logprobs");
    if (c.logprobs.present) {
      w.begin_object().key("content");
      write_list_or_null(w, c.logprobs.has_content, c.logprobs.content);
      w.key("refusal");
      write_list_or_null(w, c.logprobs.has_refusal, c.logprobs.refusal);
      w.end_object();
    } else {
      w.null();
    }
    w.key("finish_reason");
    write_nullable(w, c.finish_reason);
    w.end_object();
  }
  w.end_array();
  if (usage) w.key("usage").raw(*usage);
  w.end_object();
  return out;
}

Result<std::vector<std::string>> chunks_from_completion(std::string_view completion_json) {
  simdjson::dom::parser parser;
  object o;
  if (parser.parse(completion_json.data(), completion_json.size()).get_object().get(o))
    return bad_upstream("cached completion is not a JSON object");
  simdjson::dom::array choices;
  if (o["choices"].get_array().get(choices)) return bad_upstream("cached completion has no choices");
  ChunkHeader h;
  if (auto s = get_str(o, "id")) h.id = std::string(*s);
  if (auto s = get_str(o, "model")) h.model = std::string(*s);
  if (o["created"].get_int64().get(h.created)) h.created = 0;
  if (auto s = get_str(o, "system_fingerprint")) h.system_fingerprint = std::string(*s);
  if (auto s = get_str(o, "service_tier")) h.service_tier = std::string(*s);

  ChunkSink sink(h);
  int64_t fallback_index = 0;
  for (element ce : choices) {
    object c;
    if (ce.get_object().get(c)) return bad_upstream("cached completion choice is not an object");
    int64_t index = fallback_index++;
    int64_t idx;
    if (!c["index"].get_int64().get(idx)) index = idx;
    object msg;
    if (c["message"].get_object().get(msg)) return bad_upstream("cached completion choice has no message");
    const std::string role(get_str(msg, "role").value_or("assistant"));
    const auto content = get_str(msg, "content");
    const auto refusal = get_str(msg, "refusal");
    element logprobs;
    std::optional<std::string> logprobs_json;
    if (!c["logprobs"].get(logprobs) && logprobs.is_object()) logprobs_json = minify(logprobs);

    sink.choice(index, [&](JsonWriter& w) {
      w.key("delta").begin_object().key("role").value(role).key("content");
      if (content) w.value("");
      else w.null();
      w.end_object().key("logprobs").null().key("finish_reason").null();
    });
    auto emit_text = [&](const char* field, std::string_view text) {
      for (auto piece : pieces(text)) {
        sink.choice(index, [&](JsonWriter& w) {
          w.key("delta").begin_object().key(field).value(piece).end_object();
          w.key("logprobs");
          if (logprobs_json) {
            w.raw(*logprobs_json);
            logprobs_json.reset();
          } else {
            w.null();
          }
          w.key("finish_reason").null();
        });
      }
    };
    if (content) emit_text("content", *content);
    if (refusal) emit_text("refusal", *refusal);

    simdjson::dom::array calls;
    if (!msg["tool_calls"].get_array().get(calls)) {
      int64_t ti = 0;
      for (element call : calls) {
        object co;
        if (call.get_object().get(co)) return bad_upstream("cached tool call is not an object");
        const std::string id(get_str(co, "id").value_or(""));
        const std::string type(get_str(co, "type").value_or("function"));
        object fn;
        std::string name, args;
        if (!co["function"].get_object().get(fn)) {
          name = std::string(get_str(fn, "name").value_or(""));
          args = std::string(get_str(fn, "arguments").value_or(""));
        }
        auto open_call = [&](JsonWriter& w) {
          w.key("delta").begin_object().key("tool_calls").begin_array().begin_object();
          w.key("index").value(ti).key("id").value(id).key("type").value(type);
          w.key("function").begin_object().key("name").value(name).key("arguments").value("");
          w.end_object().end_object().end_array().end_object();
          w.key("logprobs").null().key("finish_reason").null();
        };
        sink.choice(index, open_call);
        for (auto piece : pieces(args)) {
          sink.choice(index, [&](JsonWriter& w) {
            w.key("delta").begin_object().key("tool_calls").begin_array().begin_object();
            w.key("index").value(ti).key("function").begin_object().key("arguments").value(piece);
            w.end_object().end_object().end_array().end_object();
            w.key("logprobs").null().key("finish_reason").null();
          });
        }
        ++ti;
      }
    }
    const auto finish = get_str(c, "finish_reason");
    sink.choice(index, [&](JsonWriter& w) {
      w.key("delta").begin_object().end_object();
      w.key("logprobs");
      if (logprobs_json) w.raw(*logprobs_json);  // a choice without text still keeps them
      else w.null();
      w.key("finish_reason");
      if (finish) w.value(*finish);
      else w.null();
    });
  }
  element usage;
  if (!o["usage"].get(usage) && usage.is_object()) sink.usage(minify(usage));
  return std::move(sink.out);
}

void append_finish_reasons(std::string_view chunk, std::vector<std::string>& out, size_t max) {
  static constexpr std::string_view kKey = "\"finish_reason\"";
  for (size_t at = chunk.find(kKey); at != std::string_view::npos && out.size() < max;
       at = chunk.find(kKey, at + kKey.size())) {
    if (at > 0 && chunk[at - 1] == '\\') continue;
    size_t i = at + kKey.size();
    auto skip_space = [&] {
      while (i < chunk.size() && (chunk[i] == ' ' || chunk[i] == '\t' || chunk[i] == '\n' || chunk[i] == '\r')) ++i;
    };
    skip_space();
    if (i >= chunk.size() || chunk[i] != ':') continue;
    ++i;
    skip_space();
    if (i >= chunk.size() || chunk[i] != '"') continue;  // null: not finished yet
    const size_t end = chunk.find('"', i + 1);  // finish reasons are plain words
    if (end == std::string_view::npos) return;
    out.emplace_back(chunk.substr(i + 1, end - i - 1));
  }
}

}  // namespace frugal

#include "backends/engine/openai_output.h"

#include "core/json.h"
#include "core/sse_writer.h"

namespace frugal::engine {

std::string sanitize_utf8(std::string_view s) {
  // Replaces each maximal ill-formed subpart with one U+FFFD, as the WHATWG decoder
  // (and so every browser and Node's TextDecoder) does, so clients see the same text.
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // no overlong forms
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
    }
    size_t n = 1;  // bytes of the (possibly partial) sequence that are well-formed so far
    while (len != 0 && n < len && i + n < s.size()) {
      const auto cc = static_cast<unsigned char>(s[i + n]);
      if (n == 1 ? (cc < lo || cc > hi) : (cc & 0xC0) != 0x80) break;
      ++n;
    }
    if (len != 0 && n == len) out.append(s.substr(i, len));
    else out += kReplacement;
    i += n;
  }
  return out;
}

ToolCallSplitter::Delta ToolCallSplitter::feed(std::string_view bytes) {
  Delta d;
  pending_.append(bytes);
  step(d);
  return d;
}

void ToolCallSplitter::step(Delta& d) {
  if (mode_ == Mode::kUndecided) {
    const size_t at = pending_.find_first_not_of(" \t\n\r");
    if (at == std::string::npos) return;
    if (allow_text_ && pending_[at] != '{') {
      mode_ = Mode::kText;
    } else {
      mode_ = Mode::kName;
      pending_.erase(0, at);
    }
  }
  if (mode_ == Mode::kText) {
    d.text += pending_;
    pending_.clear();
    return;
  }
  if (mode_ == Mode::kName) {
    constexpr std::string_view kOpen = "{\"name\":\"", kClose = "\",\"arguments\":";
    const size_t end = pending_.find(kClose);
    if (end == std::string::npos || pending_.compare(0, kOpen.size(), kOpen) != 0) return;
    d.call_started = true;
    d.name = pending_.substr(kOpen.size(), end - kOpen.size());
    pending_.erase(0, end + kClose.size());
    mode_ = Mode::kArguments;
  }
  if (mode_ == Mode::kArguments && pending_.size() > 1) {
    // Hold back the last character (whole, so no chunk ends inside a UTF-8 sequence):
    // in a complete call it is the closing brace.
    size_t keep = pending_.size() - 1;
    while (keep > 0 && (static_cast<unsigned char>(pending_[keep]) & 0xC0) == 0x80) --keep;
    d.arguments += pending_.substr(0, keep);
    pending_.erase(0, keep);
  }
}

ToolCallSplitter::Delta ToolCallSplitter::finish(bool complete) {
  Delta d;
  step(d);
  if (mode_ == Mode::kArguments) {
    if (complete && !pending_.empty() && pending_.back() == '}') pending_.pop_back();
    d.arguments += pending_;
  } else {
    d.text += pending_;  // undecided or a call cut before its name: text as it came
  }
  pending_.clear();
  return d;
}

void OpenAiWriter::head(std::string& out, const char* object) const {
  JsonWriter w(out);
  w.key("id").value(id_).key("object").value(object).key("created").value(created_).key("model").value(model_);
}

void OpenAiWriter::logprobs_json(std::string& out, std::span<const LogprobRecord> records) const {
  JsonWriter w(out);
  auto entry = [&](int32_t token, float logprob) {
    const std::string piece = text_.piece(token);
    w.key("token").value(sanitize_utf8(piece)).key("logprob").value(static_cast<double>(logprob));
    w.key("bytes").begin_array();
    for (unsigned char b : piece) w.value(static_cast<int64_t>(b));
    w.end_array();
  };
  w.begin_object().key("content").begin_array();
  for (const LogprobRecord& r : records) {
    w.begin_object();
    entry(r.token, r.logprob);
    w.key("top_logprobs").begin_array();
    for (const TokenLogprob& t : r.top) {
      w.begin_object();
      entry(t.token, t.logprob);
      w.end_object();
    }
    w.end_array().end_object();
  }
  w.end_array().key("refusal").null().end_object();
}

void OpenAiWriter::usage_json(std::string& out, const GenerateUsage& u, const Confidence& c) const {
  JsonWriter w(out);
  w.key("usage").begin_object();
  w.key("prompt_tokens").value(u.prompt_tokens).key("completion_tokens").value(u.completion_tokens);
  w.key("total_tokens").value(u.prompt_tokens + u.completion_tokens);
  w.key("prompt_tokens_details").begin_object().key("cached_tokens").value(u.cached_prompt_tokens).end_object();
  w.key("completion_tokens_details").begin_object().key("reasoning_tokens").value(0).end_object();
  w.end_object();
  w.key("x_frugal").begin_object().key("confidence").begin_object();
  w.key("mean_logprob").value(static_cast<double>(c.mean_logprob));
  w.key("min_logprob").value(static_cast<double>(c.min_logprob));
  w.key("p10_logprob").value(static_cast<double>(c.p10_logprob));
  w.key("mean_margin").value(static_cast<double>(c.mean_margin));
  w.key("min_margin").value(static_cast<double>(c.min_margin));
  w.end_object().end_object();
}

std::string OpenAiWriter::role_event() const {
  std::string out;
  const size_t at = begin_sse_data(out);
  out += '{';
  head(out, "chat.completion.chunk");
  out += R"(,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]})";
  end_sse_data(out, at);
  return out;
}

std::string OpenAiWriter::content_event(std::string_view content, std::span<const LogprobRecord> logprobs,
                                        bool with_logprobs) const {
  std::string out;
  const size_t at = begin_sse_data(out);
  out += '{';
  head(out, "chat.completion.chunk");
  out += R"(,"choices":[{"index":0,"delta":{"content":)";
  out += json_quote(content);
  out += R"(},"logprobs":)";
  if (with_logprobs) logprobs_json(out, logprobs);
  else out += "null";
  out += R"(,"finish_reason":null}]})";
  end_sse_data(out, at);
  return out;
}

std::string OpenAiWriter::finish_event(std::string_view finish_reason) const {
  std::string out;
  const size_t at = begin_sse_data(out);
  out += '{';
  head(out, "chat.completion.chunk");
  out += R"(,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":)";
  out += json_quote(finish_reason);
  out += "}]}";
  end_sse_data(out, at);
  return out;
}

std::string OpenAiWriter::tool_call_start_event(std::string_view id, std::string_view name) const {
  std::string out;
  const size_t at = begin_sse_data(out);
  out += '{';
  head(out, "chat.completion.chunk");
  out += R"(,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":)";
  out += json_quote(id);
  out += R"(,"type":"function","function":{"name":)";
  out += json_quote(name);
  out += R"(,"arguments":""}}]},"logprobs":null,"finish_reason":null}]})";
  end_sse_data(out, at);
  return out;
}

std::string OpenAiWriter::tool_call_arguments_event(std::string_view arguments) const {
  std::string out;
  const size_t at = begin_sse_data(out);
  out += '{';
  head(out, "chat.completion.chunk");
  out += R"(,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":)";
  out += json_quote(arguments);
  out += R"(}}]},"logprobs":null,"finish_reason":null}]})";
  end_sse_data(out, at);
  return out;
}

std::string OpenAiWriter::usage_event(const GenerateUsage& usage, const Confidence& confidence) const {
  std::string out;
  const size_t at = begin_sse_data(out);
  out += '{';
  head(out, "chat.completion.chunk");
  out += R"(,"choices":[],)";
  usage_json(out, usage, confidence);
  out += '}';
  end_sse_data(out, at);
  return out;
}

std::string OpenAiWriter::completion_body(std::string_view content, std::span<const LogprobRecord> logprobs,
                                          bool with_logprobs, std::string_view finish_reason,
                                          const GenerateUsage& usage, const Confidence& confidence,
                                          const ToolCallOut* tool_call) const {
  std::string out = "{";
  head(out, "chat.completion");
  out += R"(,"choices":[{"index":0,"message":{"role":"assistant","content":)";
  if (tool_call != nullptr && content.empty()) out += "null";
  else out += json_quote(content);
  if (tool_call != nullptr) {
    out += ',';
    JsonWriter w(out);
    w.key("tool_calls").begin_array().begin_object();
    w.key("id").value(tool_call->id).key("type").value("function");
    w.key("function").begin_object().key("name").value(tool_call->name);
    w.key("arguments").value(tool_call->arguments).end_object();
    w.end_object().end_array();
  }
  out += R"(,"refusal":null},"logprobs":)";
  if (with_logprobs) logprobs_json(out, logprobs);
  else out += "null";
  out += R"(,"finish_reason":)";
  out += json_quote(finish_reason);
  out += "}],";
  usage_json(out, usage, confidence);
  out += "}";
  return out;
}

std::string OpenAiWriter::error_body(const Error& e) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().key("error").begin_object();
  w.key("message").value(e.message).key("type").value(e.openai_type());
  w.key("param");
  if (e.param.empty()) w.null(); else w.value(e.param);
  w.key("code");
  if (e.code.empty()) w.null(); else w.value(e.code);
  w.end_object().end_object();
  return out;
}

}  // namespace frugal::engine

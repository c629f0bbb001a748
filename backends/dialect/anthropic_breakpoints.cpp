#include "backends/dialect/anthropic_breakpoints.h"

#include <simdjson.h>

#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"

namespace frugal {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

bool has_cache_control(element block) {
  element cc;
  return block.is_object() && !block["cache_control"].get(cc) && !cc.is_null();
}

bool markable_block(element block) {
  if (!block.is_object()) return false;
  std::string_view type;
  if (!block["type"].get_string().get(type) && (type == "thinking" || type == "redacted_thinking"))
    return false;
  return true;
}

int count_in_blocks(element content) {
  array arr;
  if (content.get_array().get(arr)) return 0;
  int n = 0;
  for (element b : arr) n += has_cache_control(b) ? 1 : 0;
  return n;
}

size_t json_size(element e) { return simdjson::minify(e).size(); }

// Where a breakpoint would go in a string-or-array content.
enum class Mark { kNone, kString, kLastBlock };

Mark mark_for(element content) {
  if (content.is_string()) return content.get_string().value_unsafe().empty() ? Mark::kNone : Mark::kString;
  array arr;
  if (content.get_array().get(arr) || arr.size() == 0) return Mark::kNone;
  element last = arr.at(arr.size() - 1).value_unsafe();
  if (has_cache_control(last) || !markable_block(last)) return Mark::kNone;
  return Mark::kLastBlock;
}

class Rewriter {
 public:
  Rewriter(std::string& out, const BreakpointOptions& o) : w_(out), opts_(o) {}

  void cache_control() {
    w_.key("cache_control").begin_object().key("type").value("ephemeral");
    if (!opts_.ttl.empty()) w_.key("ttl").value(opts_.ttl);
    w_.end_object();
  }

  // An object, minus a null cache_control, plus ours.
  void marked_block(object block) {
    w_.begin_object();
    for (auto field : block) {
      if (field.key == "cache_control") continue;  // only null ones reach here
      w_.key(field.key).raw(simdjson::minify(field.value));
    }
    cache_control();
    w_.end_object();
  }

  // String or block-array content with the last block marked.
  void marked_content(element content) {
    if (content.is_string()) {
      w_.begin_array().begin_object().key("type").value("text");
      w_.key("text").value(content.get_string().value_unsafe());
      cache_control();
      w_.end_object().end_array();
      return;
    }
    array arr = content.get_array().value_unsafe();
    const size_t n = arr.size();
    size_t i = 0;
    w_.begin_array();
    for (element b : arr) {
      if (++i == n) marked_block(b.get_object().value_unsafe());
      else w_.raw(simdjson::minify(b));
    }
    w_.end_array();
  }

  JsonWriter& w() { return w_; }

 private:
  JsonWriter w_;
  const BreakpointOptions& opts_;
};

}  // namespace

Result<int> add_anthropic_cache_breakpoints(std::string& body, const BreakpointOptions& opts) {
  simdjson::dom::parser parser;
  object root;
  if (auto err = parser.parse(body).get_object().get(root))
    return make_error(ErrorKind::kInvalidRequest,
                      std::string("anthropic request is not a JSON object: ") + simdjson::error_message(err));

  std::string_view model;
  if (root["model"].get_string().get(model)) model = {};
  const int64_t min_tokens =
      model.find("haiku") != std::string_view::npos ? opts.min_tokens_haiku : opts.min_tokens;
  const size_t min_chars = static_cast<size_t>(std::max<int64_t>(0, min_tokens * opts.chars_per_token));

  element tools, system, messages;
  const bool have_tools = !root["tools"].get(tools) && tools.is_array() && tools.get_array().value_unsafe().size() > 0;
  const bool have_system = !root["system"].get(system) && (system.is_string() || system.is_array());
  const bool have_messages = !root["messages"].get(messages) && messages.is_array();

  // Existing breakpoints and prefix lengths, in render order: tools, system, messages.
  int existing = 0;
  size_t chars = 0;
  std::optional<size_t> tools_end, system_end;
  bool tool_markable = false;
  if (have_tools) {
    array arr = tools.get_array().value_unsafe();
    for (element t : arr) {
      existing += has_cache_control(t) ? 1 : 0;
      chars += json_size(t);
    }
    element last = arr.at(arr.size() - 1).value_unsafe();
    tool_markable = last.is_object() && !has_cache_control(last);
    tools_end = chars;
  }
  Mark system_mark = Mark::kNone;
  if (have_system) {
    existing += count_in_blocks(system);
    chars += system.is_string() ? system.get_string().value_unsafe().size() : json_size(system);
    system_mark = mark_for(system);
    system_end = chars;
  }
  // The message breakpoint: the last message of the stable prefix with a markable
  // last block.
  std::optional<size_t> message_index;
  size_t message_end = 0;
  if (have_messages) {
    array msgs = messages.get_array().value_unsafe();
    std::vector<element> list;
    for (element m : msgs) list.push_back(m);
    size_t stable = list.size();
    if (!opts.include_final_user_message) {
      for (size_t i = list.size(); i > 0; --i) {
        std::string_view role;
        if (!list[i - 1]["role"].get_string().get(role) && role == "user") {
          stable = i - 1;
          break;
        }
      }
    }
    std::vector<size_t> ends(list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      element content;
      if (!list[i]["content"].get(content)) {
        existing += count_in_blocks(content);
        chars += content.is_string() ? content.get_string().value_unsafe().size() : json_size(content);
      }
      ends[i] = chars;
    }
    for (size_t i = stable; i > 0; --i) {
      element content;
      if (list[i - 1]["content"].get(content)) continue;
      const Mark m = mark_for(content);
      if (m == Mark::kNone) {
        // A client breakpoint already closes this prefix: nothing to add for messages.
        array arr;
        if (!content.get_array().get(arr) && arr.size() > 0 &&
            has_cache_control(arr.at(arr.size() - 1).value_unsafe()))
          break;
        continue;
      }
      message_index = i - 1;
      message_end = ends[i - 1];
      break;
    }
  }

  int budget = opts.max_breakpoints - existing;
  bool mark_messages = false, mark_system = false, mark_tool = false;
  if (budget > 0 && message_index && message_end >= min_chars) { mark_messages = true; --budget; }
  if (budget > 0 && system_mark != Mark::kNone && system_end && *system_end >= min_chars) { mark_system = true; --budget; }
  if (budget > 0 && tool_markable && tools_end && *tools_end >= min_chars) { mark_tool = true; --budget; }
  const int added = int{mark_messages} + int{mark_system} + int{mark_tool};
  if (added == 0) return 0;

  std::string out;
  out.reserve(body.size() + 64 * static_cast<size_t>(added));
  Rewriter rw(out, opts);
  JsonWriter& w = rw.w();
  w.begin_object();
  // Only the first member of a name was analysed above (root["tools"] finds the first);
  // a duplicate may have any type, and is copied as it is.
  bool seen_tools = false, seen_system = false, seen_messages = false;
  for (auto field : root) {
    w.key(field.key);
    if (field.key == "tools" && mark_tool && !std::exchange(seen_tools, true)) {
      array arr = field.value.get_array().value_unsafe();
      const size_t n = arr.size();
      size_t i = 0;
      w.begin_array();
      for (element t : arr) {
        if (++i == n) rw.marked_block(t.get_object().value_unsafe());
        else w.raw(simdjson::minify(t));
      }
      w.end_array();
    } else if (field.key == "system" && mark_system && !std::exchange(seen_system, true)) {
      rw.marked_content(field.value);
    } else if (field.key == "messages" && mark_messages && !std::exchange(seen_messages, true)) {
      w.begin_array();
      size_t i = 0;
      const array msgs = field.value.get_array().value_unsafe();
      for (element m : msgs) {
        if (i++ != *message_index) {
          w.raw(simdjson::minify(m));
          continue;
        }
        w.begin_object();
        const object mo = m.get_object().value_unsafe();
        for (auto mf : mo) {
          w.key(mf.key);
          if (mf.key == "content") rw.marked_content(mf.value);
          else w.raw(simdjson::minify(mf.value));
        }
        w.end_object();
      }
      w.end_array();
    } else {
      w.raw(simdjson::minify(field.value));
    }
  }
  w.end_object();
  body = std::move(out);
  return added;
}

}  // namespace frugal

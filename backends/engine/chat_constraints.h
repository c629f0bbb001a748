#pragma once
// What an OpenAI chat request asks the engine's output to be — response_format
// (json_object, json_schema), tools and tool_choice — compiled into a Grammar for
// constrained decoding, and the conversation with tool calls and tool results rendered
// as text the chat templates can carry.
//
// Tool calls: the model is told about the tools in a system message and, when it calls
// one, writes `{"name":"<tool>","arguments":{...}}` (json_schema_grammar.h). tool_choice
// `required` constrains the output to a call of one of the tools, a named function to a
// call of that one, `auto` (the default with tools) to either a call or text that does not
// start with '{', `none` leaves the output free (the tools are not described). One call
// per answer (parallel_tool_calls is not honoured).
//
// Pure functions; any thread.
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "backends/engine/format/chat_template.h"
#include "backends/engine/grammar.h"
#include "core/chat.h"
#include "core/error.h"

namespace frugal::engine {

// How the output is read back: text (JSON text for response_format), always a tool call,
// or either (auto: a tool call when the first non-whitespace byte is '{').
enum class ToolOutput { kNone, kRequired, kAuto };

struct OutputConstraint {
  std::shared_ptr<Grammar> grammar;  // null: free text
  ToolOutput tools = ToolOutput::kNone;
  std::string tools_prompt;          // system text describing the tools; "" without tools
};

// Compiled grammars by their source (the schema text; the tools, their parameters and
// whether text is allowed), so that requests asking for the same output share a Grammar
// and the token masks it has computed. At most kEntries, the oldest dropped first.
// find/insert from any thread; a cached Grammar is used only on the engine thread of the
// service that owns the cache (Grammar is not thread-safe), so one cache per engine.
class GrammarCache {
 public:
  static constexpr size_t kEntries = 16;
  std::shared_ptr<Grammar> find(const std::string& key);
  void insert(const std::string& key, std::shared_ptr<Grammar> grammar);
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::deque<std::pair<std::string, std::shared_ptr<Grammar>>> entries_;
};

// Errors are kInvalidRequest (400) naming the field: malformed response_format, tools or
// tool_choice; a schema outside the supported subset; a tool_choice naming no tool;
// response_format json together with tool_choice auto (the two grammars would overlap).
// `cache` (may be null) supplies and keeps the compiled grammars.
Result<OutputConstraint> output_constraint(const ChatRequest& req, std::shared_ptr<const VocabTrie> vocab,
                                           GrammarCache* cache = nullptr);

// The messages for the chat template: developer -> system; the tools prompt appended to
// the first system message (or a system message of its own); an assistant's tool calls
// as the JSON it would write; tool results as user messages ("Result of <tool>: ...").
// Consecutive user messages are merged (llama-2 needs alternating turns).
Result<std::vector<ChatMessage>> chat_messages(const ChatRequest& req, const std::string& tools_prompt);

}  // namespace frugal::engine

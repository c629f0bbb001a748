#pragma once
// The OpenAI Responses API (POST /v1/responses) as a third client dialect over the
// canonical chat-completions form:
//  - responses_to_chat_request: a Responses request → an OpenAI /v1/chat/completions
//    body, which then goes wherever a chat request goes (OpenAI-compatible providers,
//    Anthropic through its own translation, the local engine);
//  - chat_to_responses_body / ChatToResponsesStream: the canonical answer (a
//    chat.completion body, or chat.completion.chunk events) → a Response object, or
//    the Responses event sequence with a sequence_number on every event.
// Every decision (what is mapped, ignored, refused) is listed in docs/dialects.md.
#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "core/sse.h"
#include "core/usage.h"
#include "backends/dialect/responses.h"
#include "backends/dialect/streams.h"

namespace frugal {

// The request fields a Response object repeats back (instructions, tools, text, ...),
// as compact JSON values in the order they are written.
using ResponsesEcho = std::vector<std::pair<std::string, std::string>>;

struct ResponsesRequest {
  std::string model;
  bool stream = false;
  std::string chat_body;  // the /v1/chat/completions translation
  ResponsesEcho echo;
  // `metadata`, which chat_body leaves out (chat completions refuse it without `store`);
  // in the caller's document.
  std::optional<simdjson::dom::object> metadata;
};

// Validates and translates a Responses request. Errors are kInvalidRequest with
// `param` naming the field ("input[2].type", "tools[0].type"), as OpenAI phrases them;
// unknown top-level parameters are refused (code unknown_parameter). `store: true`,
// `previous_response_id`, `conversation`, `background` and `item_reference` input items
// are refused: frugal keeps no responses (docs/dialects.md).
Result<ResponsesRequest> responses_to_chat_request(simdjson::dom::element body);

// What every Response object of one request shares.
struct ResponsesFrame {
  std::string id;  // "resp_..."; item ids derive from it (msg_, rs_, fc_)
  int64_t created_at = 0;
  std::string model;  // the model name the client sees, unless the answer names one
  const ResponsesEcho* echo = nullptr;
};

// A chat.completion body (choice 0) → a Response object. TranslatedResponse::stop_reason
// is the Response's status (completed | incomplete).
Result<TranslatedResponse> chat_to_responses_body(std::string_view chat_json, const ResponsesFrame& frame);

// The error event a Responses stream ends with when it breaks:
// `event: error` / `{"type":"error","code":..,"message":..,"param":..,"sequence_number":n}`.
std::string render_responses_error_event(const Error& e, int64_t sequence_number);

// chat.completion.chunk events → the Responses event sequence:
//   response.created, response.in_progress (first chunk)
//   reasoning_content → a reasoning item (reasoning_summary_part/_text events)
//   content / refusal → a message item: output_item.added, content_part.added,
//                       output_text.delta ... output_text.done, content_part.done,
//                       output_item.done
//   tool_calls        → one function_call item per call: output_item.added,
//                       function_call_arguments.delta ... .done, output_item.done
//   finish_reason     → every open item is closed
//   [DONE]            → saw_done(); complete() then writes response.completed (or
//                       response.incomplete for length / content_filter) with usage.
// complete() is separate so the caller can write it after the request's ledger row is
// durable. Contract otherwise as the translators of streams.h.
class ChatToResponsesStream {
 public:
  explicit ChatToResponsesStream(ResponsesFrame frame);

  Result<void> feed(const SseEvent& event, std::string& out);
  Result<void> feed(std::string_view data, std::string& out);
  // Writes the final event; only after saw_done().
  void complete(std::string& out);
  // Appends the error event unless the stream already completed or failed.
  void abort(const Error& error, std::string& out);

  bool saw_done() const { return saw_done_; }
  StreamState state() const { return state_; }
  Usage current_usage() const { return usage_; }

 private:
  enum class Kind { kMessage, kReasoning, kFunctionCall };
  struct Item {
    Kind kind;
    std::string id;
    std::string text;  // output text, reasoning summary or call arguments so far
    std::string call_id, name;
    bool open = true;
  };
  Result<void> on_chunk(simdjson::dom::element chunk, std::string& out);
  void start(std::string& out);
  size_t open_item(Kind kind, std::string& out, std::string call_id = {}, std::string name = {});
  void close_item(size_t index, std::string& out);
  void close_all(std::string& out);
  void text_delta(Kind kind, std::string_view delta, std::string& out);
  // Appends `event: <type>` with data {"type":..., <fields(w)>, "sequence_number":n}.
  template <class Fields>
  void emit(std::string_view type, const Fields& fields, std::string& out);
  std::string item_json(const Item& item, bool done) const;
  void fail(Error e, std::string& out);

  ResponsesFrame frame_;
  simdjson::dom::parser parser_;
  StreamState state_ = StreamState::kOpen;
  std::optional<Error> error_;
  Usage usage_;
  std::string finish_reason_;
  std::vector<Item> items_;
  std::optional<size_t> current_;           // the open message or reasoning item
  std::vector<std::pair<int64_t, size_t>> tool_items_;  // chat tool index → item
  int64_t seq_ = 0;
  bool started_ = false;
  bool saw_done_ = false;
};

}  // namespace frugal

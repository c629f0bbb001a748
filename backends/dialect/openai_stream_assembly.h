#pragma once
// OpenAI Chat Completions: one answer in its two shapes, the chat.completion body and
// the ordered chat.completion.chunk payloads of a stream (the JSON after "data: ",
// "[DONE]" skipped), each built from the other. The exact cache replays a stored
// answer in the shape the client asked for, and the cascade scores a streamed tier
// from its assembled body; both use these.
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace frugal {

// Merges OpenAI stream chunks into one chat.completion body: per choice index the
// role, content and refusal deltas are concatenated, tool calls are merged by their
// index (id/type/name from the first delta that has them, arguments concatenated),
// logprobs.content/refusal arrays are concatenated, and the last non-null
// finish_reason wins. id, created, model and system_fingerprint come from the first
// chunk that has them; usage is the last non-null usage object, passed through.
// Fails (kUpstream) on a chunk that is not a JSON object or on no chunks.
Result<std::string> assemble_completion_from_chunks(const std::vector<std::string>& chunks);

// Synthesises a chunk sequence equivalent to a chat.completion body: per choice a
// role chunk, content (and refusal) in a few pieces split on UTF-8 boundaries with
// the choice's logprobs attached to the first content piece, one chunk opening each
// tool call followed by its arguments in pieces, a finish chunk; then one usage chunk
// (empty choices) when the body has usage. Fails (kUpstream) on a body that is not a
// chat.completion object.
Result<std::vector<std::string>> chunks_from_completion(std::string_view completion_json);

// Appends each non-null "finish_reason" string of one chunk payload to `out` (up to `max`
// in all) without parsing the chunk: a relay calls it on every chunk it passes on. A
// quoted `"finish_reason"` inside a string value is escaped there, so never matches.
void append_finish_reasons(std::string_view chunk_json, std::vector<std::string>& out, size_t max);

}  // namespace frugal

// Text streaming without split characters or stop strings (see text_stream.h).
#include "llmkit/infer/text_stream.h"

#include <algorithm>
#include <cstdint>

namespace llmkit::infer {
namespace {

// Where to cut `s` so that the first part does not end inside a UTF-8 character: moves `cut`
// back to the lead byte of a character that starts before it and would end after it.
size_t char_boundary(std::string_view s, size_t cut) {
  for (size_t i = cut; i > 0 && cut - i < 3;) {
    const auto b = static_cast<uint8_t>(s[--i]);
    if ((b & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    if (b < 0xC0) return cut;          // ASCII (or a stray byte): nothing is split
    const size_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
    return i + len > cut ? i : cut;
  }
  return cut;
}

}  // namespace

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (std::string& s : stops) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

std::string StopMatcher::push(std::string_view text) {
  if (stopped_) return {};
  held_.append(text);
  size_t at = std::string::npos;
  size_t longest = 0;
  for (const std::string& s : stops_) {
    at = std::min(at, held_.find(s));
    longest = std::max(longest, s.size());
  }
  if (at != std::string::npos) {
    std::string out = held_.substr(0, at);
    held_.clear();
    stopped_ = true;
    return out;
  }
  // Hold back the longest tail that is the start of a stop string (no whole one is present, so
  // such a tail is shorter than the stop string).
  const std::string_view view = held_;
  size_t cut = held_.size();
  for (size_t start = held_.size() - std::min(held_.size(), longest); start < held_.size();
       ++start) {
    const std::string_view tail = view.substr(start);
    const bool starts_stop = std::any_of(stops_.begin(), stops_.end(),
                                         [&](const std::string& s) { return s.starts_with(tail); });
    if (starts_stop) {
      cut = start;
      break;
    }
  }
  cut = char_boundary(view, cut);
  std::string out = held_.substr(0, cut);
  held_.erase(0, cut);
  return out;
}

std::string StopMatcher::finish() {
  if (stopped_) return {};
  std::string out = std::move(held_);
  held_.clear();
  return out;
}

std::string TokenTextStream::push(int32_t id) {
  ids_.push_back(id);
  const std::string text = tok_.decode(ids_);
  // decode() turns a character cut off at the end into U+FFFD: hold those back until the next
  // token completes them (a real U+FFFD waits one token, or until finish()).
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  size_t end = text.size();
  while (end >= sent_ + kReplacement.size() &&
         std::string_view(text).substr(end - kReplacement.size(), kReplacement.size()) ==
             kReplacement) {
    end -= kReplacement.size();
  }
  if (end <= sent_) return {};
  std::string out = text.substr(sent_, end - sent_);
  sent_ = end;
  return out;
}

std::string TokenTextStream::finish() {
  const std::string text = tok_.decode(ids_);
  if (text.size() <= sent_) return {};
  std::string out = text.substr(sent_);
  sent_ = text.size();
  return out;
}

}  // namespace llmkit::infer

// SPDX-License-Identifier: MIT
// A window's save and restore of the slots, compiled with optimisation and strict aliasing
// whatever the build (see tests/CMakeLists.txt): the copy must be visible to the slots' own
// fields, which a copy through another type is not (g++ -O2 then returned the window's frame
// after its close, with the slots reached through a pointer as slots_after_resume gives them).
#include <catch2/catch.hpp>

#include <cstdint>

#include "ucm/ucm.hpp"

namespace {

using ucm::detail::FrameData;
using ucm::detail::SavedSlots;
using ucm::detail::Slots;

alignas(64) unsigned char fake_frame[64];

FrameData* fake() { return reinterpret_cast<FrameData*>(fake_frame); }

[[gnu::noinline]] FrameData* current_after_window(FrameData* f) {
  Slots& s = ucm::detail::slots_after_resume();
  SavedSlots saved;
  ucm::detail::open_call(s, saved, f);
  ucm::detail::close_window<ucm::detail::release_window_frame>(s, saved, nullptr, nullptr);
  return s.current;
}

[[gnu::noinline]] FrameData* current_after_copies(Slots& s, Slots& saved, FrameData* f) {
  ucm::detail::copy_slots(saved, s);
  s.current = f;
  ucm::detail::copy_slots(s, saved);
  return s.current;
}

}  // namespace

TEST_CASE("a window's close restores the slots its open saved, read field by field", "[slots]") {
  ucm::clear();
  CHECK(current_after_window(fake()) == nullptr);
  Slots a{};
  Slots b{};
  CHECK(current_after_copies(a, b, fake()) == nullptr);
  CHECK(a.current == nullptr);
}

// SPDX-License-Identifier: MIT
// ucm/detail/config.hpp: macros every ucm header may need. Nothing here is public API.
#pragma once

// UCM_SHARED_STATE: marks the inline functions whose statics must be one per program (the
// variable id counter, the per-thread slots, block cache and run queue, the misuse handler) as
// exported even when a shared library is built with -fvisibility=hidden or
// -fvisibility-inlines-hidden. Without it, each such library would get its own copies: context
// set in one would be invisible in another, and two variables in different libraries could be
// given the same id.
#if defined(__GNUC__) || defined(__clang__)
#define UCM_SHARED_STATE [[gnu::visibility("default")]]
#else
#define UCM_SHARED_STATE
#endif

namespace ucm::detail {

/// `Accessor()` (a function returning one of ucm's thread_locals) for code that can run after a
/// coroutine was resumed, possibly on another thread: scope destructors in a coroutine body, the
/// awaiters around a co_await. Clang before 16 treats a thread_local's address as a constant
/// within a function, so in a coroutine it may compute it before a co_await and reuse it after
/// the resumption (fixed in LLVM 16 by llvm.threadlocal.address); there the access goes through
/// an opaque call. Elsewhere it is the plain access.
///
/// The rule: code that can run after a coroutine resumption reaches the thread's state only
/// through an accessor made with this (slots_after_resume, thread_refs_after_resume,
/// run_queue_after_resume), never through slots(), thread_context(), run_queue(), thread_refs(),
/// thread_state() or frame_cache(). That code is: the awaiters' and promises' hooks
/// (await_suspend, await_resume, final_suspend, ...), destructors (a scope's runs where its block
/// ends, after any co_await in it), coroutine bodies, and the helpers they call, which take the
/// slots from their caller (take_return, close_window) or use such an accessor themselves. g++
/// and clang 16 pass every test either way, so scripts/check_slot_access.py, run first by
/// scripts/test.sh, checks the hooks, destructors and coroutine bodies of include/ucm on any
/// compiler. A [[gnu::noinline]] function computes the address afresh on each call, so it may
/// use the plain accessor wherever it is called from; a plain call in a checked place that cannot
/// run after a resumption (a thread-exit destructor) carries the comment
/// `ucm: not after resume: <why>`.
#if defined(__clang__) && __clang_major__ < 16
template <auto Accessor>
[[gnu::noinline]] decltype(auto) after_resume() noexcept {
  asm volatile("" ::: "memory");
  return Accessor();
}
#else
template <auto Accessor>
inline decltype(auto) after_resume() noexcept {
  return Accessor();
}
#endif

}  // namespace ucm::detail

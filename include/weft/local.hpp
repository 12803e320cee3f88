// weft::local<T>: green-thread-local storage. A thread_local would follow the worker OS thread,
// not the green thread, which moves between workers; a weft::local follows the green thread.
//
//   weft::local<std::string> request_id;         // one per green thread, made on first use
//   weft::go([&] { *request_id = "abc"; handle(); });
#pragma once

#include <cstddef>

namespace weft {

namespace detail {
std::size_t local_slot_allocate() noexcept;
// The calling green thread's (or, outside one, OS thread's) value in `slot`, or null.
void* local_get(std::size_t slot) noexcept;
void local_set(std::size_t slot, void* value, void (*destroy)(void*));
}  // namespace detail

// Each green thread sees its own T, default-constructed on first use and destroyed when the
// green thread ends (on its own stack, so the destructor may use weft). Called from a plain OS
// thread, it gives that thread's own T. Meant for objects with static storage duration: a slot
// is never reused.
template <class T>
class local {
 public:
  local() noexcept : slot_(detail::local_slot_allocate()) {}
  local(const local&) = delete;
  local& operator=(const local&) = delete;

  T& get() {
    if (void* p = detail::local_get(slot_)) return *static_cast<T*>(p);
    T* p = new T();
    try {
      detail::local_set(slot_, p, [](void* q) { delete static_cast<T*>(q); });
    } catch (...) {
      delete p;
      throw;
    }
    return *p;
  }
  T& operator*() { return get(); }
  T* operator->() { return &get(); }

 private:
  std::size_t slot_;
};

}  // namespace weft

#include "timer_heap.hpp"

namespace weft::detail {

void timer_heap::insert(timer_node& t) {
  lock_.lock();
  t.heap.store(this, std::memory_order_release);
  heap_.push_back(&t);
  place(heap_.size() - 1, &t);
  sift_up(heap_.size() - 1);
  publish();
  lock_.unlock();
}

void timer_heap::drain() noexcept {
  lock_.lock();
  std::vector<timer_node*> left;
  left.swap(heap_);
  publish();
  lock_.unlock();
  for (timer_node* t : left) {
    t->index = -1;
    t->heap.store(nullptr, std::memory_order_release);
    if (t->discard) t->discard(*t);
  }
}

bool timer_heap::cancel(timer_node& t) {
  timer_heap* h = t.heap.load(std::memory_order_acquire);
  if (!h) return false;
  h->lock_.lock();
  const bool queued = t.heap.load(std::memory_order_relaxed) == h;
  if (queued) h->remove_at(static_cast<std::size_t>(t.index));
  h->lock_.unlock();
  return queued;
}

void timer_heap::remove_at(std::size_t i) {
  timer_node* gone = heap_[i];
  timer_node* last = heap_.back();
  heap_.pop_back();
  if (gone != last) {
    place(i, last);
    sift_up(i);
    sift_down(static_cast<std::size_t>(last->index));
  }
  gone->index = -1;
  gone->heap.store(nullptr, std::memory_order_release);
  publish();
}

void timer_heap::sift_up(std::size_t i) {
  timer_node* t = heap_[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / 4;
    if (heap_[parent]->when <= t->when) break;
    place(i, heap_[parent]);
    i = parent;
  }
  place(i, t);
}

void timer_heap::sift_down(std::size_t i) {
  timer_node* t = heap_[i];
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t first = i * 4 + 1;
    if (first >= n) break;
    std::size_t best = first;
    for (std::size_t c = first + 1; c < first + 4 && c < n; ++c)
      if (heap_[c]->when < heap_[best]->when) best = c;
    if (heap_[best]->when >= t->when) break;
    place(i, heap_[best]);
    i = best;
  }
  place(i, t);
}

}  // namespace weft::detail

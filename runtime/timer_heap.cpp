#include "timer_heap.hpp"

namespace weft::detail {

void timer_heap::insert(timer_node& t) {
  lock_.lock();
  t.heap = this;
  heap_.push_back(&t);
  place(heap_.size() - 1, &t);
  sift_up(heap_.size() - 1);
  publish();
  lock_.unlock();
}

void timer_heap::cancel(timer_node& t) {
  timer_heap* h = t.heap;
  if (!h) return;
  h->lock_.lock();
  if (t.index >= 0) h->remove_at(static_cast<std::size_t>(t.index));
  h->lock_.unlock();
  t.heap = nullptr;
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

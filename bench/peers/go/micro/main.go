// The Go peer of bench/micro_runtime.cpp: the same shapes, printed as
// "<name> workers=<n> ns_per_op=<x>" lines, one per run, for tools/bench.sh to compare.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

func spawnComplete(n int) {
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
}

func yield(perThread int) {
	var wg sync.WaitGroup
	wg.Add(2)
	for t := 0; t < 2; t++ {
		go func() {
			for i := 0; i < perThread; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
}

func wakeup(rounds int) {
	var m sync.Mutex
	cv := sync.NewCond(&m)
	turn := 0
	var wg sync.WaitGroup
	wg.Add(2)
	for side := 0; side < 2; side++ {
		go func(side int) {
			m.Lock()
			for i := 0; i < rounds; i++ {
				for turn%2 != side {
					cv.Wait()
				}
				turn++
				cv.Signal()
			}
			m.Unlock()
			wg.Done()
		}(side)
	}
	wg.Wait()
}

func serialFib(n int) int64 {
	if n < 2 {
		return int64(n)
	}
	return serialFib(n-1) + serialFib(n-2)
}

func forkJoinFib(n int) int64 {
	if n <= 20 {
		return serialFib(n)
	}
	left := make(chan int64, 1)
	go func() { left <- forkJoinFib(n - 1) }()
	right := forkJoinFib(n - 2)
	return <-left + right
}

type shape struct {
	name string
	ops  int
	run  func()
}

func main() {
	workers := flag.Int("workers", runtime.NumCPU(), "GOMAXPROCS")
	runs := flag.Int("runs", 5, "runs of each shape")
	only := flag.String("only", "", "comma-separated shapes to run (default all)")
	flag.Parse()
	runtime.GOMAXPROCS(*workers)

	shapes := []shape{
		{"spawn_complete", 1000000, func() { spawnComplete(1000000) }},
		{"yield", 10000000, func() { yield(5000000) }},
		{"wakeup", 500000, func() { wakeup(500000) }},
		{"fib", 1, func() {
			if forkJoinFib(35) != 9227465 {
				fmt.Fprintln(os.Stderr, "fib: wrong result")
				os.Exit(1)
			}
		}},
	}
	for _, s := range shapes {
		if *only != "" && !strings.Contains(","+*only+",", ","+s.name+",") {
			continue
		}
		s.run() // warm-up: grows the heap and the goroutine free lists, as a server would have
		for r := 0; r < *runs; r++ {
			t0 := time.Now()
			s.run()
			ns := float64(time.Since(t0).Nanoseconds()) / float64(s.ops)
			fmt.Printf("%s workers=%d ns_per_op=%.1f\n", s.name, *workers, ns)
		}
	}
}

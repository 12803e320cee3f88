// The Go peer of bench/micro_runtime.cpp and bench/micro_channels.cpp: the same shapes, printed as
// "<name> workers=<n> ns_per_op=<x>" lines, one per run, for tools/bench.sh to compare.
package main

import (
	"context"
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

func pingpong(rounds int) {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for i := 0; i < rounds; i++ {
			pong <- <-ping
		}
	}()
	for i := 0; i < rounds; i++ {
		ping <- 1
		<-pong
	}
}

func mpmc(n int) {
	const producers, consumers = 4, 4
	ch := make(chan int64, 1024)
	var prod, cons sync.WaitGroup
	prod.Add(producers)
	cons.Add(consumers)
	for p := 0; p < producers; p++ {
		go func() {
			for i := 0; i < n/producers; i++ {
				ch <- int64(i)
			}
			prod.Done()
		}()
	}
	for c := 0; c < consumers; c++ {
		go func() {
			var sum int64
			for v := range ch {
				sum += v
			}
			_ = sum
			cons.Done()
		}()
	}
	prod.Wait()
	close(ch)
	cons.Wait()
}

func select4(n int) {
	var chans [4]chan int64
	for i := range chans {
		chans[i] = make(chan int64)
	}
	for s := 0; s < 4; s++ {
		go func(c chan int64) {
			for i := 0; i < n/4; i++ {
				c <- int64(i)
			}
		}(chans[s])
	}
	var sum int64
	for i := 0; i < n/4*4; i++ {
		select {
		case v := <-chans[0]:
			sum += v
		case v := <-chans[1]:
			sum += v
		case v := <-chans[2]:
			sum += v
		case v := <-chans[3]:
			sum += v
		}
	}
	_ = sum
}

func pipeline(n int) {
	numbers, squares := make(chan int64), make(chan int64)
	go func() {
		for i := 0; i < n; i++ {
			numbers <- int64(i)
		}
		close(numbers)
	}()
	go func() {
		for v := range numbers {
			squares <- v * v
		}
		close(squares)
	}()
	var sum int64
	for v := range squares {
		sum += v
	}
	_ = sum
}

// Go's test/chan/sieve1.go with the numbers bounded, so every filter ends when its input closes.
func sieve() {
	const primes, last = 1000, 7919 // the 1,000th prime
	ch := make(chan int64)
	go func(ch chan<- int64) {
		for i := int64(2); i <= last; i++ {
			ch <- i
		}
		close(ch)
	}(ch)
	found := 0
	for {
		prime, ok := <-ch
		if !ok {
			break
		}
		found++
		out := make(chan int64)
		go func(in <-chan int64, out chan<- int64, p int64) {
			for v := range in {
				if v%p != 0 {
					out <- v
				}
			}
			close(out)
		}(ch, out, prime)
		ch = out
	}
	if found != primes {
		fmt.Fprintln(os.Stderr, "sieve: wrong count")
		os.Exit(1)
	}
}

// Go's test/chan/daisy: a line of goroutines passing one value, built afresh each round.
func chain(length, rounds int) {
	for r := 0; r < rounds; r++ {
		leftmost := make(chan int)
		left := leftmost
		for i := 0; i < length; i++ {
			right := make(chan int)
			go func(left, right chan int) { left <- 1 + <-right }(left, right)
			left = right
		}
		left <- 1
		if <-leftmost != length+1 {
			fmt.Fprintln(os.Stderr, "chain: wrong value")
			os.Exit(1)
		}
	}
}

type shape struct {
	name string
	ops  int
	run  func()
}

// n goroutines parked in a select on ctx.Done() and a channel (set-up, untimed); then either
// the context is cancelled or the channel closed (the request: every goroutine readied), and
// all are joined (the whole).
func releaseParked(n int, cancel bool) (request, whole time.Duration) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	never := make(chan int)
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			select {
			case <-ctx.Done():
			case <-never:
			}
			done.Done()
		}()
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond) // the last ones reach their select
	t0 := time.Now()
	if cancel {
		stop()
	} else {
		close(never)
	}
	t1 := time.Now()
	done.Wait()
	return t1.Sub(t0), time.Since(t0)
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
		{"pingpong", 500000, func() { pingpong(500000) }},
		{"mpmc", 2000000, func() { mpmc(2000000) }},
		{"select4", 1000000, func() { select4(1000000) }},
		{"pipeline", 1000000, func() { pipeline(1000000) }},
		{"sieve", 1000, sieve},
		{"chain", 100000, func() { chain(10000, 10) }},
		{"fib", 1, func() {
			if forkJoinFib(35) != 9227465 {
				fmt.Fprintln(os.Stderr, "fib: wrong result")
				os.Exit(1)
			}
		}},
	}
	// Shapes with an untimed set-up time themselves, and report the request alone too.
	for _, name := range []string{"cancel_parked", "wake_parked"} {
		if *only != "" && !strings.Contains(","+*only+",", ","+name+",") {
			continue
		}
		const n = 100000
		releaseParked(n, name == "cancel_parked")
		for r := 0; r < *runs; r++ {
			request, whole := releaseParked(n, name == "cancel_parked")
			fmt.Printf("%s workers=%d ns_per_op=%.1f request_ns_per_op=%.1f\n", name, *workers,
				float64(whole.Nanoseconds())/n, float64(request.Nanoseconds())/n)
		}
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

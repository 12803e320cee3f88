// The Go peer of bench/park_million.cpp: goroutines parked at once on one channel, then
// released. Usage: park [count] [GOMAXPROCS]; prints the same line as the C++ program.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

func statusKiB(key string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), key) {
			v, _ := strconv.ParseInt(strings.Fields(s.Text()[len(key):])[0], 10, 64)
			return v
		}
	}
	return 0
}

func main() {
	n := 1000000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		p, _ := strconv.Atoi(os.Args[2])
		runtime.GOMAXPROCS(p)
	}
	before := statusKiB("VmRSS:")
	t0 := time.Now()
	gate := make(chan int)
	var parked, finished sync.WaitGroup
	parked.Add(n)
	finished.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			parked.Done()
			<-gate
			finished.Done()
		}()
	}
	parked.Wait()
	runtime.Gosched()
	t1 := time.Now()
	peak := statusKiB("VmRSS:")
	pte := statusKiB("VmPTE:")
	close(gate)
	finished.Wait()
	t2 := time.Now()
	debug.FreeOSMemory()
	after := statusKiB("VmRSS:")
	fmt.Printf("park count=%d workers=%d spawn_park_s=%.3f release_s=%.3f rss_kib_per=%.2f "+
		"pte_kib_per=%.2f after_trim_kib=%d after_trim_share=%.3f\n",
		n, runtime.GOMAXPROCS(0), t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds(),
		float64(peak-before)/float64(n), float64(pte)/float64(n), after, float64(after)/float64(peak))
}

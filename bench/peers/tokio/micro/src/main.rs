// The Tokio peer of weft's stackless tasks: the same shapes as bench/micro_channels.cpp's
// task_spawn_complete and task_pingpong, bench/micro_runtime.cpp's task_fib and
// bench/park_million.cpp's tasks, printed as the Go peers print them.
//
//   tokio_micro micro <workers> <runs>   "<shape> workers=<n> ns_per_op=<x>", one line per run
//   tokio_micro park <count> <workers>   the park_million line
//
// One worker is Tokio's current_thread runtime (its single-threaded scheduler, the faster of
// its two on one core); more is the multi-thread runtime with that many workers. Each timed
// body runs inside a spawned task, as weft's run inside a green thread, after one warm-up.
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, Notify, Semaphore};

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    if workers == 1 {
        tokio::runtime::Builder::new_current_thread().build().unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .build()
            .unwrap()
    }
}

// Go's sync.WaitGroup for tasks: the last done() wakes the waiter.
struct WaitGroup {
    left: AtomicUsize,
    zero: Notify,
}

impl WaitGroup {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(WaitGroup { left: AtomicUsize::new(n), zero: Notify::new() })
    }
    fn done(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.zero.notify_one();
        }
    }
    async fn wait(&self) {
        while self.left.load(Ordering::Acquire) != 0 {
            self.zero.notified().await;
        }
    }
}

async fn spawn_complete(n: usize) {
    let wg = WaitGroup::new(n);
    for _ in 0..n {
        let wg = wg.clone();
        tokio::spawn(async move { wg.done() });
    }
    wg.wait().await;
}

// A round trip: ping sends, pong receives and sends back. Capacity 1 is Tokio's nearest to an
// unbuffered channel.
async fn pingpong(rounds: usize) {
    let (to_pong, mut pong_in) = mpsc::channel::<i64>(1);
    let (to_ping, mut ping_in) = mpsc::channel::<i64>(1);
    let echo = tokio::spawn(async move {
        while let Some(v) = pong_in.recv().await {
            if to_ping.send(v).await.is_err() {
                break;
            }
        }
    });
    for i in 0..rounds as i64 {
        to_pong.send(i).await.unwrap();
        if ping_in.recv().await != Some(i) {
            std::process::abort();
        }
    }
    drop(to_pong);
    echo.await.unwrap();
}

fn serial_fib(n: u32) -> i64 {
    if n < 2 {
        n as i64
    } else {
        serial_fib(n - 1) + serial_fib(n - 2)
    }
}

// A task per call above 20, as weft's and Go's.
fn fork_join_fib(n: u32) -> Pin<Box<dyn Future<Output = i64> + Send>> {
    Box::pin(async move {
        if n <= 20 {
            return serial_fib(n);
        }
        let left = tokio::spawn(fork_join_fib(n - 1));
        let right = fork_join_fib(n - 2).await;
        left.await.unwrap() + right
    })
}

async fn fib() {
    if fork_join_fib(35).await != 9227465 {
        std::process::abort();
    }
}

fn timed<F, Fut>(rt: &tokio::runtime::Runtime, body: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    rt.block_on(async move {
        tokio::spawn(async move {
            body().await; // warm-up
            let t0 = Instant::now();
            body().await;
            t0.elapsed().as_secs_f64()
        })
        .await
        .unwrap()
    })
}

fn micro(workers: usize, runs: usize) {
    let rt = runtime(workers);
    for _ in 0..runs {
        let n = 1_000_000;
        let s = timed(&rt, move || spawn_complete(n));
        println!("spawn_complete workers={} ns_per_op={:.1}", workers, s * 1e9 / n as f64);
        let rounds = 1_000_000;
        let s = timed(&rt, move || pingpong(rounds));
        println!("pingpong workers={} ns_per_op={:.1}", workers, s * 1e9 / rounds as f64);
        let s = timed(&rt, fib);
        println!("fib workers={} ns_per_op={:.1}", workers, s * 1e9);
    }
}

fn status_kib(key: &str) -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l[key.len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

// Tasks parked at once on one gate (a semaphore without permits: closing it wakes them all, as
// closing the channel does in the weft and Go programs), then released.
fn park(n: usize, workers: usize) {
    let before = status_kib("VmRSS:");
    let rt = runtime(workers);
    let (spawn_park, release, peak, pte) = rt.block_on(async move {
        tokio::spawn(async move {
            let t0 = Instant::now();
            let gate = Arc::new(Semaphore::new(0));
            let parked = WaitGroup::new(n);
            let finished = WaitGroup::new(n);
            let released = Arc::new(AtomicI64::new(0));
            for _ in 0..n {
                let (gate, parked, finished, released) =
                    (gate.clone(), parked.clone(), finished.clone(), released.clone());
                tokio::spawn(async move {
                    parked.done();
                    if gate.acquire().await.is_err() {
                        released.fetch_add(1, Ordering::Relaxed);
                    }
                    finished.done();
                });
            }
            parked.wait().await;
            tokio::task::yield_now().await; // the last ones reach acquire
            let t1 = Instant::now();
            let peak = status_kib("VmRSS:");
            let pte = status_kib("VmPTE:");
            gate.close();
            finished.wait().await;
            let t2 = Instant::now();
            if released.load(Ordering::Relaxed) != n as i64 {
                std::process::abort();
            }
            ((t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64(), peak, pte)
        })
        .await
        .unwrap()
    });
    drop(rt);
    let after = status_kib("VmRSS:");
    println!(
        "park count={} workers={} kind=tasks spawn_park_s={:.3} release_s={:.3} rss_kib_per={:.2} \
         pte_kib_per={:.2} after_trim_kib={} after_trim_share={:.3}",
        n,
        workers,
        spawn_park,
        release,
        (peak - before) as f64 / n as f64,
        pte as f64 / n as f64,
        after,
        after as f64 / peak as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: usize| args.get(i).and_then(|v| v.parse().ok()).unwrap_or(default);
    match args.get(1).map(String::as_str) {
        Some("micro") => micro(arg(2, 1), arg(3, 5)),
        Some("park") => park(arg(2, 1_000_000), arg(3, 1)),
        _ => {
            eprintln!("usage: tokio_micro micro <workers> <runs> | park <count> <workers>");
            std::process::exit(2);
        }
    }
}

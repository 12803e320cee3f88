// The Tokio peer of bench/http_hello: an HTTP/1.1 keep-alive "Hello, World!" server with a task
// per connection, the same parsing and reply as the weft and Go programs.
// Usage: tokio_http_hello [-port N] [-workers N] [-adversary] [-parked N]
// With -adversary it carries the same hostile load as the weft program (bench/adversary.hpp):
// parked tasks holding 1 KiB each, a 64 KiB allocation churn and two greedy producer/consumer
// pairs whose channel operations never block; "adversary ready" goes to stderr once it is in
// place. Tokio's try_send and try_recv spend no cooperative budget (weft's do), so each greedy
// operation and each churn block is followed by consume_budget(), as weft's churn does: without
// it a task that never awaits would hold its worker for good, which is no test of the scheduler.
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify, Semaphore};

static SINK: AtomicU64 = AtomicU64::new(0); // keeps the optimizer honest

const REPLY: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

fn find_terminator(h: &[u8]) -> Option<usize> {
    h.windows(4).position(|w| w == b"\r\n\r\n")
}

async fn serve(mut c: TcpStream) {
    let mut input = vec![0u8; 8192];
    let mut out = Vec::with_capacity(1024);
    let mut have = 0;
    loop {
        let n = match c.read(&mut input[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        have += n;
        let mut start = 0;
        while let Some(end) = find_terminator(&input[start..have]) {
            out.extend_from_slice(REPLY);
            start += end + 4;
        }
        if have - start == input.len() {
            return; // a request larger than the buffer
        }
        input.copy_within(start..have, 0);
        have -= start;
        if !out.is_empty() {
            if c.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

async fn start_adversary(parked: usize) {
    let t0 = Instant::now();
    let never = Arc::new(Notify::new()); // nobody notifies: its waiters stay parked
    let holding = Arc::new(Semaphore::new(0));
    for _ in 0..parked {
        let never = never.clone();
        let holding = holding.clone();
        tokio::spawn(async move {
            let buf = vec![1u8; 1024];
            holding.add_permits(1);
            never.notified().await;
            SINK.fetch_add(u64::from(buf[0]), Ordering::Relaxed);
        });
    }
    // All hold their buffer; they park on `never` right after.
    let all = holding.acquire_many(parked as u32).await.expect("semaphore closed");
    all.forget();
    tokio::spawn(async {
        // the allocation churn
        const BLOCK: usize = 64 * 1024;
        let mut ring: Vec<Vec<u8>> = (0..16).map(|_| Vec::new()).collect();
        let mut i: u64 = 0;
        loop {
            let mut b = vec![0u8; BLOCK];
            for off in (0..BLOCK).step_by(4096) {
                b[off] = i as u8;
            }
            SINK.fetch_add(u64::from(b[(i as usize) % BLOCK]), Ordering::Relaxed);
            ring[(i % 16) as usize] = b;
            i += 1;
            tokio::task::consume_budget().await;
        }
    });
    for _ in 0..2 {
        let (tx, mut rx) = mpsc::channel::<u64>(1024);
        tokio::spawn(async move {
            // greedy producer: never blocks
            let mut i: u64 = 0;
            loop {
                let _ = tx.try_send(i);
                i += 1;
                tokio::task::consume_budget().await;
            }
        });
        tokio::spawn(async move {
            // greedy consumer: never blocks
            loop {
                if let Ok(v) = rx.try_recv() {
                    SINK.fetch_add(v, Ordering::Relaxed);
                }
                tokio::task::consume_budget().await;
            }
        });
    }
    eprintln!(
        "adversary ready: {} parked tasks in {:.1} s",
        parked,
        t0.elapsed().as_secs_f64()
    );
}

fn usage() -> ! {
    eprintln!("usage: tokio_http_hello [-port N] [-workers N] [-adversary] [-parked N]");
    std::process::exit(2);
}

fn main() {
    let mut port: u16 = 8080;
    let mut workers: usize = 0;
    let mut adversary = false;
    let mut parked: usize = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse::<usize>().ok()).unwrap_or_else(|| usage());
        match a.as_str() {
            "-port" => port = value() as u16,
            "-workers" => workers = value(),
            "-parked" => parked = value(),
            "-adversary" => adversary = true,
            _ => usage(),
        }
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if workers > 0 {
        builder.worker_threads(workers);
    }
    let rt = builder.enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        let listener = match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{}", e);
                std::process::exit(1);
            }
        };
        println!("listening on {}", listener.local_addr().expect("local address").port());
        std::io::stdout().flush().ok();
        if adversary {
            start_adversary(parked).await;
        }
        loop {
            if let Ok((c, _)) = listener.accept().await {
                let _ = c.set_nodelay(true); // as Go's net package and weft do
                tokio::spawn(serve(c));
            }
        }
    });
}

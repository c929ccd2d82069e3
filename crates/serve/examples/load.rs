//! A load generator for jackstop's HTTPS servers (the admission webhook, the audit backend):
//! POSTs request bodies at a fixed rate over keep-alive TLS connections, as the API server
//! does, for a fixed time, and reports latency percentiles measured from when each request
//! was due (so a stalled server shows as latency, not as a lower rate) and from when it was
//! written to its connection.
//!
//! ```sh
//! cargo run --release -p jackstop-serve --example load -- \
//!   --url https://127.0.0.1:8443/validate --ca tls.crt --rate 1000 --seconds 60 \
//!   --connections 8 body1.json body2.json ...
//! ```
//!
//! Bodies are sent in turn, each as the API server would send it: JSON without whitespace.
//! Prints one JSON object: sent, answered by status, transport errors, achieved rate, latency
//! p50/p90/p99/p999/max in milliseconds, per body, how many answers said
//! `"allowed":false`, and where the calls over 2 ms were (`stalls`: in runs of three or more
//! in a row, or alone).
//!
//! With the generator on the same cores as the server, a call's latency as the generator
//! sees it includes the generator's own delays (its thread waiting for a CPU before it reads
//! the answer). So each call is also timed as the network sees it (`wireMs`, Linux): from the
//! moment its first bytes are handed to the kernel (the write system call) to the moment the
//! last bytes of its answer arrive in the generator's socket (the kernel's receive timestamp,
//! `SO_TIMESTAMPNS`), which no delay of the generator's after that moves.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

struct Args {
    host: String,
    port: u16,
    path: String,
    ca: String,
    rate: u64,
    seconds: u64,
    connections: usize,
    bodies: Vec<String>,
    headers: Vec<(String, String)>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        host: String::new(),
        port: 443,
        path: "/".into(),
        ca: String::new(),
        rate: 1000,
        seconds: 10,
        connections: 8,
        bodies: Vec::new(),
        headers: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut val = || it.next().ok_or(format!("{x} needs a value"));
        match x.as_str() {
            "--url" => {
                let u = val()?;
                let rest = u.strip_prefix("https://").ok_or("--url must be https://")?;
                let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
                let (h, p) = hostport.rsplit_once(':').unwrap_or((hostport, "443"));
                a.host = h.to_string();
                a.port = p.parse().map_err(|_| "bad port")?;
                a.path = format!("/{path}");
            }
            "--ca" => a.ca = val()?,
            "--rate" => a.rate = val()?.parse().map_err(|_| "bad --rate")?,
            "--seconds" => a.seconds = val()?.parse().map_err(|_| "bad --seconds")?,
            "--connections" => a.connections = val()?.parse().map_err(|_| "bad --connections")?,
            "--header" => {
                let h = val()?;
                let (k, v) = h.split_once(':').ok_or("--header NAME:VALUE")?;
                a.headers.push((k.trim().into(), v.trim().into()));
            }
            _ => a.bodies.push(x),
        }
    }
    if a.host.is_empty() || a.ca.is_empty() || a.bodies.is_empty() {
        return Err("usage: load --url https://HOST:PORT/PATH --ca CA.pem [--rate N] [--seconds S] [--connections C] [--header K:V] BODY...".into());
    }
    Ok(a)
}

/// One request's fate.
struct Done {
    body: usize,
    due: Instant,
    /// When it was written to its connection (after the one before it on that connection
    /// was answered).
    sent: Instant,
    /// Write system call to the kernel's receive time of the answer's last bytes, in ms.
    wire: Option<f64>,
    at: Instant,
    status: Option<u16>,
    denied: bool,
}

/// A body as the API server sends it: JSON without whitespace (Go's `encoding/json`), keys in
/// the file's order. A body that is not JSON is sent as it is.
fn as_sent(body: Vec<u8>) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => serde_json::to_vec(&v).unwrap_or(body),
        Err(_) => body,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let bodies: Vec<Bytes> = a
        .bodies
        .iter()
        .map(|p| {
            Bytes::from(as_sent(
                std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}")),
            ))
        })
        .collect();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&a.ca).expect("the CA file") {
        roots
            .add(c.expect("a PEM certificate"))
            .expect("a CA certificate");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(a.host.clone()).expect("a host name");

    // One task per connection, each taking due requests from its own queue in turn.
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut queues = Vec::new();
    for _ in 0..a.connections {
        let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Instant)>();
        queues.push(tx);
        let tcp = tokio::net::TcpStream::connect((a.host.as_str(), a.port))
            .await
            .expect("connect");
        tcp.set_nodelay(true).ok();
        let clock = Arc::new(std::sync::Mutex::new(WireClock::default()));
        let tcp = Timed::new(tcp, clock.clone());
        let tls = connector.connect(name.clone(), tcp).await.expect("TLS");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("HTTP/1.1");
        tokio::spawn(conn);
        let (bodies, done, path, host, headers) = (
            bodies.clone(),
            done_tx.clone(),
            a.path.clone(),
            a.host.clone(),
            a.headers.clone(),
        );
        tokio::spawn(async move {
            while let Some((i, due)) = rx.recv().await {
                let mut req = hyper::Request::post(&path)
                    .header("host", &host)
                    .header("content-type", "application/json");
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                let req = req.body(Full::new(bodies[i].clone())).unwrap();
                clock.lock().unwrap().written = None;
                let sent = Instant::now();
                let (status, denied) = match sender.send_request(req).await {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        let b = r.into_body().collect().await.map(|c| c.to_bytes());
                        let denied = b
                            .map(|b| memfind(&b, b"\"allowed\":false"))
                            .unwrap_or(false);
                        (Some(s), denied)
                    }
                    Err(_) => (None, false),
                };
                let wire = {
                    let c = clock.lock().unwrap();
                    match (c.written, c.received) {
                        (Some(w), Some(r)) if r >= w => {
                            Some(r.duration_since(w).unwrap_or_default().as_secs_f64() * 1000.0)
                        }
                        _ => None,
                    }
                };
                let _ = done.send(Done {
                    body: i,
                    due,
                    wire,
                    sent,
                    at: Instant::now(),
                    status,
                    denied,
                });
                if status.is_none() {
                    break;
                }
            }
        });
    }
    drop(done_tx);

    let total = a.rate * a.seconds;
    let interval = Duration::from_nanos(1_000_000_000 / a.rate.max(1));
    let start = Instant::now();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let sender = tokio::spawn(async move {
        for n in 0..total {
            tick.tick().await;
            let due = start + interval * n as u32;
            let _ = queues[n as usize % queues.len()].send((n as usize % bodies.len(), due));
        }
    });

    let mut latencies: Vec<f64> = Vec::with_capacity(total as usize);
    let mut service: Vec<f64> = Vec::with_capacity(total as usize);
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut denied_by_body: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut service_by_body: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    // When the slowest calls were written (ms from the start): a stall shows as a cluster.
    let mut slow: Vec<(f64, f64)> = Vec::new();
    // Call latencies by the second they were written in.
    let mut by_second: Vec<Vec<f64>> = vec![Vec::new(); a.seconds as usize + 1];
    let mut errors = 0u64;
    let mut wires: Vec<f64> = Vec::with_capacity(total as usize);
    let mut wire_by_second: Vec<Vec<f64>> = vec![Vec::new(); a.seconds as usize + 1];
    let mut last = start;
    // Each call's send time and its wire time (its call time where it has none), in ms.
    let mut timeline: Vec<(f64, f64)> = Vec::with_capacity(total as usize);
    while let Some(d) = done_rx.recv().await {
        last = last.max(d.at);
        timeline.push((
            d.sent.duration_since(start).as_secs_f64() * 1000.0,
            d.wire
                .unwrap_or_else(|| d.at.duration_since(d.sent).as_secs_f64() * 1000.0),
        ));
        if let Some(w) = d.wire {
            wires.push(w);
            if let Some(v) = wire_by_second.get_mut(d.sent.duration_since(start).as_secs() as usize)
            {
                v.push(w);
            }
        }
        latencies.push(d.at.duration_since(d.due).as_secs_f64() * 1000.0);
        service.push(d.at.duration_since(d.sent).as_secs_f64() * 1000.0);
        let call = d.at.duration_since(d.sent).as_secs_f64() * 1000.0;
        let second = d.sent.duration_since(start).as_secs() as usize;
        if let Some(v) = by_second.get_mut(second) {
            v.push(call);
        }
        if call > 4.0 && slow.len() < 400 {
            slow.push((d.sent.duration_since(start).as_secs_f64() * 1000.0, call));
        }
        service_by_body
            .entry(a.bodies[d.body].clone())
            .or_default()
            .push(d.at.duration_since(d.sent).as_secs_f64() * 1000.0);
        match d.status {
            Some(s) => *by_status.entry(s.to_string()).or_default() += 1,
            None => errors += 1,
        }
        let e = denied_by_body.entry(a.bodies[d.body].clone()).or_default();
        e.0 += 1;
        e.1 += d.denied as u64;
        if latencies.len() as u64 == total {
            break;
        }
    }
    sender.abort();
    latencies.sort_by(|x, y| x.total_cmp(y));
    service.sort_by(|x, y| x.total_cmp(y));
    let pct_of = |v: &[f64], p: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() as f64 - 1.0) * p).round() as usize]
    };
    let pct = |p: f64| pct_of(&latencies, p);
    let spct = |p: f64| pct_of(&service, p);
    wires.sort_by(|x, y| x.total_cmp(y));
    let wpct = |p: f64| pct_of(&wires, p);
    let elapsed = last.duration_since(start).as_secs_f64();
    let stalls = stalls(&mut timeline, SLOW_MS, STALL_CALLS);
    let report = serde_json::json!({
        "sent": total,
        "answered": by_status,
        "transportErrors": errors,
        "seconds": elapsed,
        "ratePerSecond": latencies.len() as f64 / elapsed.max(1e-9),
        // From when each request was due (its queueing behind the one before it on its
        // connection, and the generator's own delays, included).
        "latencyMs": {
            "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "p999": pct(0.999),
            "max": latencies.last().copied().unwrap_or(f64::NAN),
        },
        // From when it was written to the connection to its answer: what the API server
        // waits for each call.
        "serviceMs": {
            "p50": spct(0.50), "p90": spct(0.90), "p99": spct(0.99), "p999": spct(0.999),
            "max": service.last().copied().unwrap_or(f64::NAN),
        },
        // From the write system call to the kernel's receive time of the answer: the call as
        // the network sees it, without the generator's delays in reading it. `timed` calls
        // of all (one whose answer came in several reads is timed by its last).
        "wireMs": {
            "timed": wires.len(),
            "p50": wpct(0.50), "p90": wpct(0.90), "p99": wpct(0.99), "p999": wpct(0.999),
            "max": wires.last().copied().unwrap_or(f64::NAN),
        },
        "wireP99BySecondMs": wire_by_second.iter_mut().filter(|v| !v.is_empty()).map(|v| {
            v.sort_by(|x, y| x.total_cmp(y));
            pct_of(v, 0.99)
        }).collect::<Vec<f64>>(),
        "deniedByBody": denied_by_body.iter().map(|(k, (n, d))| (k.clone(), serde_json::json!({"sent": n, "denied": d}))).collect::<serde_json::Map<_, _>>(),
        "slowCalls": slow,
        "stalls": stalls,
        // The call p99 of each second of the run.
        "p99BySecondMs": by_second.iter_mut().filter(|v| !v.is_empty()).map(|v| {
            v.sort_by(|x, y| x.total_cmp(y));
            pct_of(v, 0.99)
        }).collect::<Vec<f64>>(),
        // The call latency of each body: which requests make the tail.
        "serviceMsByBody": service_by_body.iter_mut().map(|(k, v)| {
            v.sort_by(|x, y| x.total_cmp(y));
            (k.clone(), serde_json::json!({"p50": pct_of(v, 0.5), "p99": pct_of(v, 0.99)}))
        }).collect::<serde_json::Map<_, _>>(),
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}

/// A call slower than this (wire time, in ms) is slow: the target's p99.
const SLOW_MS: f64 = 2.0;
/// This many slow calls in a row, by the time they were sent, make a stall.
const STALL_CALLS: usize = 3;

/// Where the slow calls were: in stalls (runs of at least `run` consecutive slow calls, by send
/// time: the server fell behind for a while, as when the machine's CPU slows down) or alone.
/// A tail made of a few stalls is the machine's; one spread over the run is the server's.
fn stalls(timeline: &mut [(f64, f64)], slow_ms: f64, run: usize) -> serde_json::Value {
    timeline.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut count, mut in_stalls, mut alone, mut longest) = (0u64, 0u64, 0u64, 0f64);
    let mut i = 0;
    while i < timeline.len() {
        if timeline[i].1 <= slow_ms {
            i += 1;
            continue;
        }
        let first = i;
        while i < timeline.len() && timeline[i].1 > slow_ms {
            i += 1;
        }
        let n = i - first;
        if n >= run {
            count += 1;
            in_stalls += n as u64;
            // From the first slow call's send to the last one's answer.
            let (t0, _) = timeline[first];
            let (t1, w1) = timeline[i - 1];
            longest = longest.max(t1 + w1 - t0);
        } else {
            alone += n as u64;
        }
    }
    serde_json::json!({
        "slowMs": slow_ms, "runOfAtLeast": run, "stalls": count,
        "slowCallsInStalls": in_stalls, "slowCallsAlone": alone, "longestMs": longest,
    })
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The times of one connection's current call: its first write system call, and the kernel's
/// receive timestamp of the last bytes read.
#[derive(Default)]
struct WireClock {
    written: Option<std::time::SystemTime>,
    received: Option<std::time::SystemTime>,
}

/// A TCP stream that notes when bytes are handed to the kernel, and reads with `recvmsg` to
/// get the kernel's receive timestamp of what it reads (`SO_TIMESTAMPNS`: CLOCK_REALTIME, the
/// clock `SystemTime` reads).
struct Timed {
    tcp: tokio::net::TcpStream,
    clock: Arc<std::sync::Mutex<WireClock>>,
}

impl Timed {
    fn new(tcp: tokio::net::TcpStream, clock: Arc<std::sync::Mutex<WireClock>>) -> Timed {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: a valid socket descriptor, and a c_int option value of the size given.
        let r = unsafe {
            libc::setsockopt(
                tcp.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "SO_TIMESTAMPNS: {}", std::io::Error::last_os_error());
        Timed { tcp, clock }
    }

    /// One `recvmsg` into `buf`: the bytes read, and the receive timestamp if the kernel gave
    /// one.
    fn recv(fd: i32, buf: &mut [u8]) -> std::io::Result<(usize, Option<std::time::SystemTime>)> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 16];
        // SAFETY: msghdr is plain data; every pointer set below is valid for its length for
        // the duration of the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: fd is an open socket, msg points at live buffers.
        let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut at = None;
        // SAFETY: the CMSG macros walk the control buffer the kernel filled, within
        // msg_controllen.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    at = Some(
                        std::time::UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32),
                    );
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Ok((n as usize, at))
    }
}

impl tokio::io::AsyncRead for Timed {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::os::fd::AsRawFd;
        let this = self.get_mut();
        loop {
            std::task::ready!(this.tcp.poll_read_ready(cx))?;
            let fd = this.tcp.as_raw_fd();
            let unfilled = buf.initialize_unfilled();
            match this
                .tcp
                .try_io(tokio::io::Interest::READABLE, || Timed::recv(fd, unfilled))
            {
                Ok((n, at)) => {
                    buf.advance(n);
                    if at.is_some() {
                        this.clock.lock().unwrap().received = at;
                    }
                    return std::task::Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return std::task::Poll::Ready(Err(e)),
            }
        }
    }
}

impl tokio::io::AsyncWrite for Timed {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let now = std::time::SystemTime::now();
        let r = std::pin::Pin::new(&mut this.tcp).poll_write(cx, data);
        if matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0) {
            let mut c = this.clock.lock().unwrap();
            if c.written.is_none() {
                c.written = Some(now);
            }
        }
        r
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

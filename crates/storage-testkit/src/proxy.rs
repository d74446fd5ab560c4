//! A fault-injecting TCP proxy: tests put it between a client and PostgreSQL or Redis and switch
//! faults while the client works. No such tool is packaged on the test machines, and a small one
//! on tokio is enough.
//!
//! Faults apply to both directions of every connection, and change while connections are open:
//! - [`Fault::Latency`] delays every chunk; [`Fault::Bandwidth`] paces bytes;
//! - [`Fault::Blackhole`] stops moving bytes without closing anything (a half-open network, or a
//!   server that stopped answering: the client's own timeout is what fires). Nothing is lost: bytes
//!   move again when the fault ends;
//! - [`Fault::Reset`] resets every open connection (RST) and every new one at once;
//! - [`Fault::Down`] is `Reset` while it lasts; [`FaultProxy::down_for`] ends it after a while.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to the bytes it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Bytes pass as they come.
    #[default]
    None,
    /// Every chunk waits this long before it is forwarded.
    Latency(Duration),
    /// At most this many bytes per second, each direction of each connection.
    Bandwidth(u64),
    /// Nothing moves; connections stay open.
    Blackhole,
    /// Open connections are reset, new ones reset at once.
    Reset,
    /// The server is gone: as `Reset`, for as long as it lasts.
    Down,
}

impl Fault {
    fn resets(self) -> bool {
        matches!(self, Self::Reset | Self::Down)
    }
}

/// A proxy listening on a free local port, forwarding to `upstream`. Dropped, it stops accepting;
/// open connections end with their client.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    fault: Arc<watch::Sender<Fault>>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream`, passing bytes as they come.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (fault, watching) = watch::channel(Fault::None);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let watching = watching.clone();
                tokio::spawn(async move {
                    if watching.borrow().resets() {
                        reset(&client);
                        return;
                    }
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        reset(&client);
                        return;
                    };
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(pump(client_read, server_write, watching.clone()));
                    tokio::spawn(pump(server_read, client_write, watching));
                });
            }
        });
        Self { addr, fault: Arc::new(fault), accept }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Switches to `fault`, for open connections too.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// The fault in force.
    pub fn fault(&self) -> Fault {
        *self.fault.borrow()
    }

    /// Down for `duration` (open connections reset, new ones refused), then up again.
    pub async fn down_for(&self, duration: Duration) {
        self.set(Fault::Down);
        tokio::time::sleep(duration).await;
        self.set(Fault::None);
    }
}

impl FaultProxy {
    /// Switches `fault` on for `on` and off for `off`, starting with `off`, over and over until
    /// the returned guard is dropped (which leaves the fault off).
    pub fn flap(&self, fault: Fault, on: Duration, off: Duration) -> Flapping {
        let shared = Arc::new(FlapState { stopped: Mutex::new(false), ended: Mutex::new(None), windows: AtomicU64::new(0) });
        let (switch, state) = (Arc::clone(&self.fault), Arc::clone(&shared));
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(off).await;
                if !state.switch(&switch, fault) {
                    return;
                }
                tokio::time::sleep(on).await;
                if !state.switch(&switch, Fault::None) {
                    return;
                }
                lock(&state.ended).get_or_insert_with(Instant::now);
                state.windows.fetch_add(1, Ordering::SeqCst);
            }
        });
        Flapping { task, state: shared, fault: Arc::clone(&self.fault) }
    }
}

/// A fault switching on and off ([`FaultProxy::flap`]); stops, fault off, when dropped.
#[derive(Debug)]
pub struct Flapping {
    task: tokio::task::JoinHandle<()>,
    state: Arc<FlapState>,
    fault: Arc<watch::Sender<Fault>>,
}

#[derive(Debug)]
struct FlapState {
    /// Set by the guard's drop; the switching task checks it under the same lock before every
    /// switch, so it can never switch the fault on after the drop switched it off.
    stopped: Mutex<bool>,
    ended: Mutex<Option<Instant>>,
    windows: AtomicU64,
}

impl FlapState {
    /// Switches to `to` unless stopped; whether it did.
    fn switch(&self, switch: &watch::Sender<Fault>, to: Fault) -> bool {
        let stopped = lock(&self.stopped);
        if !*stopped {
            switch.send_replace(to);
        }
        !*stopped
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Flapping {
    /// How many fault windows have ended.
    pub fn windows(&self) -> u64 {
        self.state.windows.load(Ordering::SeqCst)
    }

    /// When the earliest fault window not yet taken ended, if one ended since the last call.
    pub fn take_ended(&self) -> Option<Instant> {
        lock(&self.state.ended).take()
    }

    /// Whether a window ended that [`Flapping::take_ended`] has not taken yet.
    pub fn ended_untaken(&self) -> bool {
        lock(&self.state.ended).is_some()
    }
}

impl Drop for Flapping {
    fn drop(&mut self) {
        let mut stopped = lock(&self.state.stopped);
        *stopped = true;
        self.fault.send_replace(Fault::None);
        drop(stopped);
        self.task.abort();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Closes `stream` with a reset instead of an orderly shutdown.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

/// Moves bytes from `from` to `to` under the fault in force, until either side closes or a reset.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut fault: watch::Receiver<Fault>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let current = *fault.borrow_and_update();
        match current {
            Fault::Reset | Fault::Down => break,
            Fault::Blackhole => {
                if fault.changed().await.is_err() {
                    break;
                }
                continue;
            }
            Fault::None | Fault::Latency(_) | Fault::Bandwidth(_) => {}
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            changed = fault.changed() => match changed {
                Ok(()) => continue,
                Err(_) => break,
            },
        };
        let n = match read {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        match current {
            Fault::Latency(delay) => tokio::time::sleep(delay).await,
            Fault::Bandwidth(per_second) => {
                tokio::time::sleep(Duration::from_secs_f64(n as f64 / per_second.max(1) as f64)).await;
            }
            _ => {}
        }
        // A chunk read before a blackhole began is held, not lost, until it ends.
        while *fault.borrow() == Fault::Blackhole {
            if fault.changed().await.is_err() {
                break;
            }
        }
        if fault.borrow().resets() || to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    reset(from.as_ref());
    reset(to.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// An echo server: every byte back.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, payload: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(payload).await?;
        let mut back = vec![0u8; payload.len()];
        stream.read_exact(&mut back).await?;
        Ok(back)
    }

    #[tokio::test]
    async fn bytes_pass_slow_down_and_are_paced() {
        let proxy = FaultProxy::start(echo().await).await;
        let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(round_trip(&mut stream, b"hello").await.expect("echo"), b"hello");

        proxy.set(Fault::Latency(Duration::from_millis(100)));
        let started = Instant::now();
        round_trip(&mut stream, b"slow").await.expect("echo");
        assert!(started.elapsed() >= Duration::from_millis(200), "both directions wait: {:?}", started.elapsed());

        proxy.set(Fault::Bandwidth(20_000));
        let started = Instant::now();
        round_trip(&mut stream, &[7u8; 5_000]).await.expect("echo");
        assert!(started.elapsed() >= Duration::from_millis(400), "5 kB each way at 20 kB/s: {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_blackhole_stalls_without_losing_and_a_reset_cuts() {
        let proxy = FaultProxy::start(echo().await).await;
        let mut stream = TcpStream::connect(proxy.addr()).await.expect("connect");
        round_trip(&mut stream, b"warm").await.expect("echo");

        proxy.set(Fault::Blackhole);
        stream.write_all(b"held").await.expect("write");
        let mut back = [0u8; 4];
        assert!(tokio::time::timeout(Duration::from_millis(300), stream.read_exact(&mut back)).await.is_err(), "nothing arrives");
        proxy.set(Fault::None);
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back)).await.expect("arrives").expect("read");
        assert_eq!(&back, b"held", "nothing was lost");

        proxy.set(Fault::Reset);
        let cut = tokio::time::timeout(Duration::from_secs(5), round_trip(&mut stream, b"gone")).await.expect("fails fast");
        assert!(cut.is_err(), "the open connection was reset: {cut:?}");
        let mut fresh = TcpStream::connect(proxy.addr()).await.expect("the port still accepts");
        let refused = tokio::time::timeout(Duration::from_secs(5), round_trip(&mut fresh, b"new")).await.expect("fails fast");
        assert!(refused.is_err(), "new connections are reset too");
    }

    #[tokio::test]
    async fn down_for_a_while_then_up() {
        let proxy = std::sync::Arc::new(FaultProxy::start(echo().await).await);
        let outage = tokio::spawn({
            let proxy = std::sync::Arc::clone(&proxy);
            async move { proxy.down_for(Duration::from_millis(300)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(proxy.fault(), Fault::Down);
        let mut during = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert!(round_trip(&mut during, b"x").await.is_err(), "down");
        outage.await.expect("outage");
        let mut after = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(round_trip(&mut after, b"back").await.expect("up again"), b"back");
    }
}

//! What the subscriber sends and what the far side receives.

use std::{
    io::{ErrorKind, Read as _, Write as _},
    net::{Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::Context as _;

use super::{
    interrupt,
    lab::{FAR_IP, SUB_IP, in_netns},
};

/// A SIP INVITE (RFC 3261) without a body.
pub fn sip_invite(i: u32, sport: u16) -> Vec<u8> {
    format!(
        "INVITE sip:bob@{FAR_IP} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {SUB_IP}:{sport};branch=z9hG4bK-demo-{i}\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice\" <sip:alice@{SUB_IP}>;tag=demo{i}\r\n\
         To: <sip:bob@{FAR_IP}>\r\n\
         Call-ID: demo-{i}@{SUB_IP}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@{SUB_IP}:{sport}>\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// An IAX2 full frame NEW (RFC 5456): source call number with the F bit, destination call 0,
/// timestamp, sequence numbers, frame type IAX (6), subclass NEW (1), then the VERSION (2) and
/// CALLED NUMBER IEs.
pub fn iax2_new(i: u32, _sport: u16) -> Vec<u8> {
    let call = 0x8000 | (i as u16 & 0x7fff);
    let mut f = Vec::with_capacity(24);
    f.extend_from_slice(&call.to_be_bytes());
    f.extend_from_slice(&0u16.to_be_bytes());
    f.extend_from_slice(&(i * 20).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x06, 0x01]);
    f.extend_from_slice(&[0x0b, 2, 0x00, 0x02]);
    f.extend_from_slice(&[0x01, 3, b'1', b'0', b'0']);
    f
}

/// A STUN Binding Request (RFC 8489) with no attributes.
pub fn stun_binding(i: u32, _sport: u16) -> Vec<u8> {
    let mut f = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    f.extend_from_slice(b"demo");
    f.extend_from_slice(&i.to_be_bytes());
    f.extend_from_slice(&std::process::id().to_be_bytes());
    f
}

/// A DNS query for `example.org. IN A`.
pub fn dns_query(i: u32, _sport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&(i as u16).to_be_bytes());
    f.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in ["example", "org"] {
        f.push(label.len() as u8);
        f.extend_from_slice(label.as_bytes());
    }
    f.extend_from_slice(&[0, 0, 1, 0, 1]);
    f
}

/// Plain application data.
pub fn app_data(i: u32, _sport: u16) -> Vec<u8> {
    format!("ordinary application data, datagram {i}\n").into_bytes()
}

/// A UDP receiver or TCP listener on the far side, with the number of datagrams or accepted
/// connections.
struct Port {
    proto: &'static str,
    port: u16,
    count: Arc<AtomicU64>,
}

/// The far side's receivers, running until dropped.
pub struct Far {
    ports: Vec<Port>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Far {
    /// Opens UDP receivers on `udp` ports and TCP listeners on `tcp` ports (`true`: echo what
    /// arrives) at [`FAR_IP`] in namespace `ns`.
    pub fn start(ns: &str, udp: &[u16], tcp: &[(u16, bool)]) -> anyhow::Result<Far> {
        let mut far = Far {
            ports: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        };
        for &port in udp {
            let sock = in_netns(ns, || {
                UdpSocket::bind(SocketAddrV4::new(FAR_IP, port))
                    .with_context(|| format!("binding udp {FAR_IP}:{port}"))
            })?;
            sock.set_read_timeout(Some(Duration::from_millis(100)))?;
            let count = Arc::new(AtomicU64::new(0));
            let (c, stop) = (count.clone(), far.stop.clone());
            far.threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if sock.recv_from(&mut buf).is_ok() {
                        c.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }));
            far.ports.push(Port {
                proto: "udp",
                port,
                count,
            });
        }
        for &(port, echo) in tcp {
            let l = in_netns(ns, || {
                TcpListener::bind(SocketAddrV4::new(FAR_IP, port))
                    .with_context(|| format!("listening on tcp {FAR_IP}:{port}"))
            })?;
            l.set_nonblocking(true)?;
            let count = Arc::new(AtomicU64::new(0));
            let (c, stop) = (count.clone(), far.stop.clone());
            far.threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((s, _)) => {
                            c.fetch_add(1, Ordering::SeqCst);
                            if echo {
                                echo_until_eof(s);
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(20))
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            }));
            far.ports.push(Port {
                proto: "tcp",
                port,
                count,
            });
        }
        Ok(far)
    }

    /// Datagrams (udp) or accepted connections (tcp) so far.
    pub fn count(&self, proto: &str, port: u16) -> u64 {
        self.ports
            .iter()
            .find(|p| p.proto == proto && p.port == port)
            .map_or(0, |p| p.count.load(Ordering::SeqCst))
    }
}

fn echo_until_eof(mut s: TcpStream) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let mut buf = [0u8; 2048];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 || s.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

impl Drop for Far {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Sends `n` datagrams built by `payload(i, source_port)` from the subscriber to the far side's
/// `port`; returns how many were sent.
pub fn send_udp(
    sub_ns: &str,
    port: u16,
    n: u32,
    payload: fn(u32, u16) -> Vec<u8>,
) -> anyhow::Result<u64> {
    let sock = in_netns(sub_ns, || {
        UdpSocket::bind(SocketAddrV4::new(SUB_IP, 0)).context("binding a udp socket")
    })?;
    let sport = sock.local_addr()?.port();
    let to = SocketAddrV4::new(FAR_IP, port);
    let mut sent = 0;
    for i in 0..n {
        interrupt::check()?;
        sock.send_to(&payload(i, sport), to)
            .with_context(|| format!("sending to udp {to}"))?;
        sent += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(sent)
}

/// Connects from the subscriber to the far side's TCP `port`; the connect's outcome.
pub fn tcp_connect(
    sub_ns: &str,
    port: u16,
    timeout: Duration,
) -> anyhow::Result<std::io::Result<TcpStream>> {
    let to = SocketAddr::V4(SocketAddrV4::new(FAR_IP, port));
    in_netns(sub_ns, || Ok(TcpStream::connect_timeout(&to, timeout)))
}

/// Sends `msg` over a new connection to the far side's echo `port`, half-closes, and returns
/// what came back.
pub fn tcp_echo(sub_ns: &str, port: u16, msg: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut s = tcp_connect(sub_ns, port, Duration::from_secs(3))?
        .with_context(|| format!("connecting to tcp {FAR_IP}:{port}"))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(msg).context("sending on the echo connection")?;
    s.shutdown(Shutdown::Write)
        .context("half-closing the echo connection")?;
    let mut back = Vec::new();
    s.read_to_end(&mut back).context("reading the echo")?;
    Ok(back)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_well_formed() {
        let sip = String::from_utf8(sip_invite(3, 40000)).unwrap();
        assert!(
            sip.starts_with("INVITE sip:bob@10.201.2.2 SIP/2.0\r\n") && sip.ends_with("\r\n\r\n"),
            "{sip}"
        );
        assert!(sip.contains("Via: SIP/2.0/UDP 10.201.1.2:40000;branch=z9hG4bK"));

        let iax = iax2_new(5, 0);
        assert_eq!(&iax[..2], &[0x80, 0x05], "F bit and source call number");
        assert_eq!(
            (iax[10], iax[11]),
            (0x06, 0x01),
            "frame type IAX, subclass NEW"
        );

        let stun = stun_binding(1, 0);
        assert_eq!(stun.len(), 20, "header only");
        assert_eq!(
            &stun[..8],
            &[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42],
            "binding request, length 0, magic cookie"
        );

        let dns = dns_query(7, 0);
        assert_eq!(&dns[..6], &[0, 7, 1, 0, 0, 1], "id, RD flag, one question");
        assert_eq!(&dns[12..], b"\x07example\x03org\x00\x00\x01\x00\x01");
    }
}

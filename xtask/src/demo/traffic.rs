//! What the subscriber sends and what the far side receives.

use std::{
    io::{ErrorKind, Read as _, Write as _},
    net::{Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket},
    sync::{
        Arc, Mutex,
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

/// A SIP INVITE built like the RFC 3261 §4 example (Alice calls Bob), from the subscriber to
/// the far side, with an SDP offer (RFC 4566) of one PCMU audio stream.
pub fn sip_invite(i: u32, sport: u16) -> Vec<u8> {
    let sdp = format!(
        "v=0\r\n\
         o=alice 2890844526 {i} IN IP4 {SUB_IP}\r\n\
         s=-\r\n\
         c=IN IP4 {SUB_IP}\r\n\
         t=0 0\r\n\
         m=audio 49170 RTP/AVP 0\r\n\
         a=rtpmap:0 PCMU/8000\r\n"
    );
    format!(
        "INVITE sip:bob@{FAR_IP} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {SUB_IP}:{sport};branch=z9hG4bK776asdhds{i}\r\n\
         Max-Forwards: 70\r\n\
         To: Bob <sip:bob@{FAR_IP}>\r\n\
         From: Alice <sip:alice@{SUB_IP}>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710{i}@{SUB_IP}\r\n\
         CSeq: 314159 INVITE\r\n\
         Contact: <sip:alice@{SUB_IP}:{sport}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

/// An IAX2 full frame NEW (RFC 5456): source call number with the F bit, destination call 0,
/// timestamp, sequence numbers, frame type IAX (6), subclass NEW (1), then the VERSION (11) and
/// CALLED NUMBER (1) IEs.
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

/// Packet `i` of an RTP stream (RFC 3550) as a phone sends it: PCMU (payload type 0), 20 ms
/// of audio (160 bytes) per packet, one SSRC, sequence numbers and timestamps advancing.
pub fn rtp_pcmu(i: u32, _sport: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&(1000u16.wrapping_add(i as u16)).to_be_bytes());
    p.extend_from_slice(&(160 * i).to_be_bytes());
    p.extend_from_slice(&0x5EED_CA11u32.to_be_bytes());
    p.extend_from_slice(&[0xFF; 160]);
    p
}

/// A STUN Binding Request (RFC 8489) with no attributes, as ICE sends them.
pub fn stun_binding(i: u32, _sport: u16) -> Vec<u8> {
    let mut f = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    f.extend_from_slice(b"demo");
    f.extend_from_slice(&i.to_be_bytes());
    f.extend_from_slice(&std::process::id().to_be_bytes());
    f
}

/// Packet `i` of Zoom audio from a client to a Zoom multimedia router (UDP 8801): the 8-byte
/// SFU encapsulation (type 5, sequence, direction), the Zoom media encapsulation (type 15:
/// audio; sequence, timestamp), and the RTP packet (Opus, dynamic payload type 112) 19 bytes
/// into it, as voipfilter-common's `detect::zoom` reads them.
pub fn zoom_audio(i: u32, _sport: u16) -> Vec<u8> {
    let mut p = vec![0x05];
    p.extend_from_slice(&(i as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 0x00]);
    p.push(15);
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&(i as u16).to_be_bytes());
    p.extend_from_slice(&(960 * i).to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    p.extend_from_slice(&[0x80, 112]);
    p.extend_from_slice(&(i as u16).to_be_bytes());
    p.extend_from_slice(&(960 * i).to_be_bytes());
    p.extend_from_slice(&0x2020_5A4Fu32.to_be_bytes());
    p.extend_from_slice(&[0x5A; 60]);
    p
}

/// A TeamSpeak 3 client's low-level handshake packet: the `TS3INIT1` MAC, packet id 101, client
/// id 0, flags, then the Init1 step 0 body (version, step, timestamp, random, reserved).
pub fn teamspeak_init(i: u32, _sport: u16) -> Vec<u8> {
    let mut p = b"TS3INIT1".to_vec();
    p.extend_from_slice(&[0x00, 0x65, 0x00, 0x00, 0x88]);
    p.extend_from_slice(&[0x0D, 0xD0, 0x57, 0x66, 0x00]);
    p.extend_from_slice(&i.to_be_bytes());
    p.extend_from_slice(&[0; 12]);
    p
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
/// connections, and the payload bytes received.
struct Port {
    proto: &'static str,
    port: u16,
    count: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

/// The far side's receivers, running until dropped.
pub struct Far {
    ports: Vec<Port>,
    stop: Arc<AtomicBool>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Far {
    /// Opens UDP receivers on `udp` ports and TCP echo servers on `tcp` ports at [`FAR_IP`] in
    /// namespace `ns`. An echo connection lasts until the client closes it or the far side
    /// stops: a connection whose data never arrives stays open, silent.
    pub fn start(ns: &str, udp: &[u16], tcp: &[u16]) -> anyhow::Result<Far> {
        let far = Far {
            ports: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Arc::new(Mutex::new(Vec::new())),
        };
        let mut far = far;
        for &port in udp {
            let sock = in_netns(ns, || {
                UdpSocket::bind(SocketAddrV4::new(FAR_IP, port))
                    .with_context(|| format!("binding udp {FAR_IP}:{port}"))
            })?;
            sock.set_read_timeout(Some(Duration::from_millis(100)))?;
            let (count, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
            let (c, b, stop) = (count.clone(), bytes.clone(), far.stop.clone());
            far.spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, _)) = sock.recv_from(&mut buf) {
                        c.fetch_add(1, Ordering::SeqCst);
                        b.fetch_add(n as u64, Ordering::SeqCst);
                    }
                }
            });
            far.ports.push(Port {
                proto: "udp",
                port,
                count,
                bytes,
            });
        }
        for &port in tcp {
            let l = in_netns(ns, || {
                TcpListener::bind(SocketAddrV4::new(FAR_IP, port))
                    .with_context(|| format!("listening on tcp {FAR_IP}:{port}"))
            })?;
            l.set_nonblocking(true)?;
            let (count, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
            let (c, b, stop, threads) = (
                count.clone(),
                bytes.clone(),
                far.stop.clone(),
                far.threads.clone(),
            );
            far.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((s, _)) => {
                            c.fetch_add(1, Ordering::SeqCst);
                            let (b, stop) = (b.clone(), stop.clone());
                            let t = std::thread::spawn(move || echo(s, &b, &stop));
                            threads.lock().unwrap_or_else(|e| e.into_inner()).push(t);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            });
            far.ports.push(Port {
                proto: "tcp",
                port,
                count,
                bytes,
            });
        }
        Ok(far)
    }

    fn spawn(&mut self, f: impl FnOnce() + Send + 'static) {
        let t = std::thread::spawn(f);
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(t);
    }

    fn port(&self, proto: &str, port: u16) -> Option<&Port> {
        self.ports
            .iter()
            .find(|p| p.proto == proto && p.port == port)
    }

    /// Datagrams (udp) or accepted connections (tcp) so far.
    pub fn count(&self, proto: &str, port: u16) -> u64 {
        self.port(proto, port)
            .map_or(0, |p| p.count.load(Ordering::SeqCst))
    }

    /// Payload bytes received so far (datagrams, or data on the connections).
    pub fn bytes(&self, proto: &str, port: u16) -> u64 {
        self.port(proto, port)
            .map_or(0, |p| p.bytes.load(Ordering::SeqCst))
    }
}

/// Echoes what arrives until the client closes the connection or `stop` is set.
fn echo(mut s: TcpStream, bytes: &AtomicU64, stop: &AtomicBool) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                bytes.fetch_add(n as u64, Ordering::SeqCst);
                if s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
}

impl Drop for Far {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Accept loops may add connection threads until they see the flag: join until none
        // is left.
        loop {
            let t = self.threads.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match t {
                Some(t) => {
                    let _ = t.join();
                }
                None => break,
            }
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

/// A connection from the subscriber that sends `msg` and waits `wait` for an echo; the
/// connection is then aborted (RST: a closed socket with unacknowledged data would retransmit
/// for minutes). Returns the connect error, or the bytes echoed back.
pub fn tcp_send_and_abort(
    sub_ns: &str,
    port: u16,
    msg: &[u8],
    wait: Duration,
) -> anyhow::Result<std::io::Result<Vec<u8>>> {
    let mut s = match tcp_connect(sub_ns, port, Duration::from_secs(3))? {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    s.write_all(msg).context("sending on the connection")?;
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    let end = std::time::Instant::now() + wait;
    let mut back = Vec::new();
    let mut buf = [0u8; 2048];
    while std::time::Instant::now() < end {
        interrupt::check()?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => back.extend_from_slice(&buf[..n]),
            // EINTR: a signal (Ctrl-C); the next round's check reports it.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e).context("reading from the connection"),
        }
    }
    abort(&s);
    Ok(Ok(back))
}

/// Makes the next close send a RST (SO_LINGER with a zero timeout).
fn abort(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on an open socket with a valid `linger` of the size passed.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(s),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
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
            sip.starts_with("INVITE sip:bob@10.201.2.2 SIP/2.0\r\n"),
            "{sip}"
        );
        assert!(sip.contains("Via: SIP/2.0/UDP 10.201.1.2:40000;branch=z9hG4bK"));
        let (head, body) = sip.split_once("\r\n\r\n").unwrap();
        let cl: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(cl, body.len(), "Content-Length matches the SDP");
        assert!(body.starts_with("v=0\r\n") && body.contains("m=audio 49170 RTP/AVP 0\r\n"));

        let iax = iax2_new(5, 0);
        assert_eq!(&iax[..2], &[0x80, 0x05], "F bit and source call number");
        assert_eq!(
            (iax[10], iax[11]),
            (0x06, 0x01),
            "frame type IAX, subclass NEW"
        );

        let (a, b) = (rtp_pcmu(0, 0), rtp_pcmu(1, 0));
        assert_eq!(
            (a.len(), a[0], a[1]),
            (172, 0x80, 0),
            "RTP v2, PCMU, 160 bytes"
        );
        assert_eq!(&a[8..12], &b[8..12], "one SSRC");
        assert_eq!(
            u16::from_be_bytes([b[2], b[3]]),
            u16::from_be_bytes([a[2], a[3]]) + 1
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

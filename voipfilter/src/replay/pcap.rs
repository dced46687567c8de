//! A streaming reader for pcap and pcapng captures.
//!
//! pcap: both byte orders, microsecond (`a1b2c3d4`) and nanosecond (`a1b23c4d`) stamps.
//! pcapng: both byte orders (per section), several sections and interfaces, `if_tsresol` and
//! `if_tsoffset`; enhanced, simple and obsolete packet blocks; other blocks are skipped.
//!
//! Nothing here panics on bad input: a capture that ends inside a record or whose structure is
//! inconsistent yields a [`CaptureError`] that names the packet being read and what is wrong,
//! after every packet before it has been returned.

use std::{
    fmt,
    io::{self, Read},
};

/// Largest packet record accepted (libpcap's `MAXIMUM_SNAPLEN`).
pub const MAX_SNAPLEN: u32 = 262_144;
/// Largest pcapng block accepted: a packet of [`MAX_SNAPLEN`] plus generous room for options.
const MAX_BLOCK: u32 = MAX_SNAPLEN + 65_536;

const PCAP_MAGIC_US: u32 = 0xA1B2_C3D4;
const PCAP_MAGIC_NS: u32 = 0xA1B2_3C4D;
const NG_SHB: u32 = 0x0A0D_0D0A;
const NG_BYTE_ORDER: u32 = 0x1A2B_3C4D;
const NG_OPB: u32 = 2;
const NG_IDB: u32 = 1;
const NG_SPB: u32 = 3;
const NG_EPB: u32 = 6;
const NG_OPT_END: u16 = 0;
const NG_IF_TSRESOL: u16 = 9;
const NG_IF_TSOFFSET: u16 = 14;

/// One packet of a capture. `data` is valid until the next call to [`Reader::next`].
#[derive(Debug)]
pub struct Record<'a> {
    /// 1-based number of the packet in the capture (as Wireshark shows it).
    pub number: u64,
    /// Time stamp, nanoseconds since the Unix epoch (0 when the capture has none).
    pub ts_ns: i128,
    /// Link type of the packet (`LINKTYPE_*` from tcpdump.org).
    pub linktype: u32,
    /// Length of the packet on the wire; more than `data.len()` when the capture snapped it.
    pub orig_len: u32,
    pub data: &'a [u8],
}

/// What is wrong with a capture, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    /// The packet being read (1-based), or `None` for the file header.
    pub packet: Option<u64>,
    /// Byte offset in the file where the bad record or block starts.
    pub offset: u64,
    pub what: String,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.packet {
            Some(n) => write!(f, "packet {n} (byte {}): {}", self.offset, self.what),
            None => write!(f, "file header: {}", self.what),
        }
    }
}

impl std::error::Error for CaptureError {}

/// The container format, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pcap { big_endian: bool, nanos: bool },
    PcapNg,
}

impl Format {
    /// `pcap`, `pcap-be`, `pcap-ns`, `pcap-be-ns` or `pcapng`.
    pub fn short(self) -> String {
        match self {
            Format::Pcap { big_endian, nanos } => {
                format!("pcap{}{}", if big_endian { "-be" } else { "" }, if nanos { "-ns" } else { "" })
            }
            Format::PcapNg => "pcapng".into(),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Pcap { big_endian, nanos } => write!(
                f,
                "pcap ({}, {})",
                if *big_endian { "big-endian" } else { "little-endian" },
                if *nanos { "ns" } else { "us" }
            ),
            Format::PcapNg => f.write_str("pcapng"),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    /// Time stamp units per second.
    units: u64,
    /// Seconds added to every time stamp (`if_tsoffset`).
    offset_s: i64,
}

#[derive(Debug)]
enum Kind {
    Pcap { big_endian: bool, nanos: bool, linktype: u32 },
    /// `big_endian` of the current section, and its interfaces.
    PcapNg { big_endian: bool, interfaces: Vec<Interface> },
}

/// A packet as the format readers return it: time stamp (ns), link type, original length, and
/// where its bytes are in the reader's buffer.
type Raw = (i128, u32, u32, std::ops::Range<usize>);

/// Reads packets one at a time from any [`Read`] (wrap files in a `BufReader`).
pub struct Reader<R> {
    inner: R,
    kind: Kind,
    buf: Vec<u8>,
    /// Packets returned so far.
    count: u64,
    /// Bytes consumed so far.
    pos: u64,
    /// Set once an error was returned: the reader then only returns that error.
    failed: Option<CaptureError>,
}

fn u16_at(b: &[u8], off: usize, be: bool) -> u16 {
    let x = [b[off], b[off + 1]];
    if be { u16::from_be_bytes(x) } else { u16::from_le_bytes(x) }
}

fn u32_at(b: &[u8], off: usize, be: bool) -> u32 {
    let x = [b[off], b[off + 1], b[off + 2], b[off + 3]];
    if be { u32::from_be_bytes(x) } else { u32::from_le_bytes(x) }
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Nanoseconds for `ts` in units of `1/units` s (exact for every resolution pcapng allows).
fn to_ns(ts: u64, units: u64) -> i128 {
    if units == 0 {
        return 0;
    }
    i128::from(ts) * 1_000_000_000 / i128::from(units)
}

impl<R: Read> Reader<R> {
    /// Reads the file header and prepares to return packets.
    pub fn new(mut inner: R) -> Result<Reader<R>, CaptureError> {
        let header_err = |what: String| CaptureError { packet: None, offset: 0, what };
        let mut magic = [0u8; 4];
        let n = read_full(&mut inner, &mut magic).map_err(|e| header_err(format!("read error: {e}")))?;
        if n < 4 {
            return Err(header_err(format!("file is {n} bytes long; not a capture")));
        }
        let le = u32::from_le_bytes(magic);
        let be = u32::from_be_bytes(magic);
        let mut r = Reader {
            inner,
            kind: Kind::PcapNg { big_endian: false, interfaces: Vec::new() },
            buf: Vec::with_capacity(65_536),
            count: 0,
            pos: 4,
            failed: None,
        };
        if le == NG_SHB {
            r.read_shb_rest(0).map_err(|mut e| {
                e.packet = None;
                e
            })?;
            return Ok(r);
        }
        let (big_endian, nanos) = match (le, be) {
            (PCAP_MAGIC_US, _) => (false, false),
            (PCAP_MAGIC_NS, _) => (false, true),
            (_, PCAP_MAGIC_US) => (true, false),
            (_, PCAP_MAGIC_NS) => (true, true),
            _ => return Err(header_err(format!("unknown magic number {be:08x}; not a pcap or pcapng file"))),
        };
        let mut h = [0u8; 20];
        let n = read_full(&mut r.inner, &mut h).map_err(|e| header_err(format!("read error: {e}")))?;
        if n < h.len() {
            return Err(header_err(format!("truncated pcap header: {} of 24 bytes", 4 + n)));
        }
        r.pos += 20;
        let major = u16_at(&h, 0, big_endian);
        if major != 2 {
            return Err(header_err(format!("unsupported pcap version {major}.{}", u16_at(&h, 2, big_endian))));
        }
        // The upper bits of the link type field carry FCS information (see pcap-savefile(5)).
        let linktype = u32_at(&h, 16, big_endian) & 0x03FF_FFFF;
        r.kind = Kind::Pcap { big_endian, nanos, linktype };
        Ok(r)
    }

    pub fn format(&self) -> Format {
        match self.kind {
            Kind::Pcap { big_endian, nanos, .. } => Format::Pcap { big_endian, nanos },
            Kind::PcapNg { .. } => Format::PcapNg,
        }
    }

    /// Bytes of the input consumed so far (for progress reports).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The next packet, `Ok(None)` at a clean end of the capture.
    #[expect(clippy::should_implement_trait, reason = "a lending iterator: the record borrows the reader's buffer")]
    pub fn next(&mut self) -> Result<Option<Record<'_>>, CaptureError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let start = self.pos;
        let got = match self.kind {
            Kind::Pcap { big_endian, nanos, linktype } => self.next_pcap(big_endian, nanos, linktype),
            Kind::PcapNg { .. } => self.next_ng(),
        };
        match got {
            Ok(Some((ts_ns, linktype, orig_len, range))) => {
                self.count += 1;
                Ok(Some(Record { number: self.count, ts_ns, linktype, orig_len, data: &self.buf[range] }))
            }
            Ok(None) => Ok(None),
            Err(what) => {
                let e = CaptureError { packet: Some(self.count + 1), offset: start, what };
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Fills `self.buf[..n]`; `Ok(false)` when the input ended before the first byte.
    fn fill(&mut self, n: usize, what: &str) -> Result<bool, String> {
        if self.buf.len() < n {
            self.buf.resize(n, 0);
        }
        let got = read_full(&mut self.inner, &mut self.buf[..n]).map_err(|e| format!("read error: {e}"))?;
        self.pos += got as u64;
        match got {
            0 if n > 0 => Ok(false),
            g if g < n => Err(format!("capture truncated: {what} has {g} of {n} bytes")),
            _ => Ok(true),
        }
    }

    fn next_pcap(&mut self, be: bool, nanos: bool, linktype: u32) -> Result<Option<Raw>, String> {
        if !self.fill(16, "the record header")? {
            return Ok(None);
        }
        let sec = u32_at(&self.buf, 0, be);
        let frac = u32_at(&self.buf, 4, be);
        let incl = u32_at(&self.buf, 8, be);
        let orig = u32_at(&self.buf, 12, be);
        if incl > MAX_SNAPLEN {
            return Err(format!("record length {incl} is larger than the maximum {MAX_SNAPLEN}; the file is corrupt"));
        }
        let ts_ns = i128::from(sec) * 1_000_000_000 + i128::from(frac) * if nanos { 1 } else { 1000 };
        if incl > 0 && !self.fill(incl as usize, "the packet data")? {
            return Err(format!("capture truncated: the packet data (0 of {incl} bytes) is missing"));
        }
        Ok(Some((ts_ns, linktype, orig.max(incl), 0..incl as usize)))
    }

    /// Reads the rest of a section header block whose type was already consumed at `start`.
    fn read_shb_rest(&mut self, start: u64) -> Result<(), CaptureError> {
        let err = |what: String| CaptureError { packet: Some(0), offset: start, what };
        if !self.fill(8, "the section header").map_err(err)? {
            return Err(err("capture truncated: the section header is missing".into()));
        }
        let bom = [self.buf[4], self.buf[5], self.buf[6], self.buf[7]];
        let big_endian = match (u32::from_le_bytes(bom), u32::from_be_bytes(bom)) {
            (NG_BYTE_ORDER, _) => false,
            (_, NG_BYTE_ORDER) => true,
            _ => return Err(err(format!("bad pcapng byte-order magic {:08x}", u32::from_be_bytes(bom)))),
        };
        let total = u32_at(&self.buf, 0, big_endian);
        if total < 28 || !total.is_multiple_of(4) || total > MAX_BLOCK {
            return Err(err(format!("bad section header length {total}")));
        }
        // Rest of the block: version, section length, options, trailing length.
        let rest = (total - 12) as usize;
        if !self.fill(rest, "the section header").map_err(err)? {
            return Err(err("capture truncated: the section header is missing".into()));
        }
        let major = u16_at(&self.buf, 0, big_endian);
        if major != 1 {
            return Err(err(format!("unsupported pcapng version {major}")));
        }
        if u32_at(&self.buf, rest - 4, big_endian) != total {
            return Err(err("section header: trailing length does not match".into()));
        }
        self.kind = Kind::PcapNg { big_endian, interfaces: Vec::new() };
        Ok(())
    }

    fn next_ng(&mut self) -> Result<Option<Raw>, String> {
        loop {
            let start = self.pos;
            if !self.fill(4, "the block header")? {
                return Ok(None);
            }
            let raw_type = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
            if u32::from_le_bytes(raw_type) == NG_SHB {
                self.read_shb_rest(start).map_err(|e| e.what)?;
                continue;
            }
            let Kind::PcapNg { big_endian: be, .. } = self.kind else {
                return Err("internal: pcapng block in a pcap file".into());
            };
            let btype = if be { u32::from_be_bytes(raw_type) } else { u32::from_le_bytes(raw_type) };
            self.fill(4, "the block header")?
                .then_some(())
                .ok_or_else(|| "capture truncated: the block header has 4 of 8 bytes".to_string())?;
            let total = u32_at(&self.buf, 0, be);
            if total < 12 || !total.is_multiple_of(4) || total > MAX_BLOCK {
                return Err(format!("bad length {total} in a block of type {btype}; the file is corrupt"));
            }
            let body_len = (total - 12) as usize;
            if !self.fill(body_len + 4, "the block")? {
                return Err(format!("capture truncated: block of type {btype} ends after its header"));
            }
            if u32_at(&self.buf, body_len, be) != total {
                return Err(format!("block of type {btype}: trailing length does not match {total}; the file is corrupt"));
            }
            match btype {
                NG_IDB => self.read_idb(body_len, be)?,
                NG_EPB | NG_OPB | NG_SPB => return self.read_packet_block(btype, body_len, be).map(Some),
                _ => {}
            }
        }
    }

    fn read_idb(&mut self, body_len: usize, be: bool) -> Result<(), String> {
        if body_len < 8 {
            return Err(format!("interface description block of {body_len} bytes is too short"));
        }
        let b = &self.buf[..body_len];
        let mut iface = Interface {
            linktype: u32::from(u16_at(b, 0, be)),
            snaplen: u32_at(b, 4, be),
            units: 1_000_000,
            offset_s: 0,
        };
        let mut off = 8;
        while off + 4 <= body_len {
            let code = u16_at(b, off, be);
            let len = u16_at(b, off + 2, be) as usize;
            let val = off + 4;
            if code == NG_OPT_END || val + len > body_len {
                break;
            }
            match (code, len) {
                (NG_IF_TSRESOL, 1) => {
                    let v = b[val];
                    let exp = u32::from(v & 0x7F);
                    let base: u64 = if v & 0x80 != 0 { 2 } else { 10 };
                    iface.units = base
                        .checked_pow(exp)
                        .ok_or_else(|| format!("interface time stamp resolution {v:#04x} is out of range"))?;
                }
                (NG_IF_TSOFFSET, 8) => {
                    let mut x = [0u8; 8];
                    x.copy_from_slice(&b[val..val + 8]);
                    iface.offset_s = if be { i64::from_be_bytes(x) } else { i64::from_le_bytes(x) };
                }
                _ => {}
            }
            off = val + len.div_ceil(4) * 4;
        }
        if let Kind::PcapNg { interfaces, .. } = &mut self.kind {
            interfaces.push(iface);
        }
        Ok(())
    }

    fn read_packet_block(&mut self, btype: u32, body_len: usize, be: bool) -> Result<Raw, String> {
        let Kind::PcapNg { interfaces, .. } = &self.kind else {
            return Err("internal: pcapng block in a pcap file".into());
        };
        let b = &self.buf[..body_len];
        let iface_of = |id: u32| {
            interfaces.get(id as usize).copied().ok_or_else(|| {
                format!("packet refers to interface {id} but the section declares {} interface(s)", interfaces.len())
            })
        };
        if btype == NG_SPB {
            if body_len < 4 {
                return Err("simple packet block is too short".into());
            }
            let iface = iface_of(0)?;
            let orig = u32_at(b, 0, be);
            let mut cap = (body_len - 4).min(orig as usize);
            if iface.snaplen != 0 {
                cap = cap.min(iface.snaplen as usize);
            }
            return Ok((0, iface.linktype, orig, 4..4 + cap));
        }
        // EPB: if_id u32, ts_hi, ts_lo, caplen, origlen. OPB: if_id u16, drops u16, then the same.
        if body_len < 20 {
            return Err(format!("packet block of {body_len} bytes is too short"));
        }
        let id = if btype == NG_EPB { u32_at(b, 0, be) } else { u32::from(u16_at(b, 0, be)) };
        let iface = iface_of(id)?;
        let ts = u64::from(u32_at(b, 4, be)) << 32 | u64::from(u32_at(b, 8, be));
        let cap = u32_at(b, 12, be);
        let orig = u32_at(b, 16, be);
        if cap as usize > body_len - 20 {
            return Err(format!(
                "captured length {cap} does not fit in its block ({} bytes of data); the file is corrupt",
                body_len - 20
            ));
        }
        let ts_ns = to_ns(ts, iface.units) + i128::from(iface.offset_s) * 1_000_000_000;
        Ok((ts_ns, iface.linktype, orig.max(cap), 20..20 + cap as usize))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a classic pcap in either byte order and resolution.
    pub(crate) fn pcap(be: bool, nanos: bool, linktype: u32, packets: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w32 = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() });
        let w16 = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() });
        let mut v = Vec::new();
        w32(&mut v, if nanos { PCAP_MAGIC_NS } else { PCAP_MAGIC_US });
        w16(&mut v, 2);
        w16(&mut v, 4);
        w32(&mut v, 0);
        w32(&mut v, 0);
        w32(&mut v, 65535);
        w32(&mut v, linktype);
        for (sec, frac, data) in packets {
            w32(&mut v, *sec);
            w32(&mut v, *frac);
            w32(&mut v, data.len() as u32);
            w32(&mut v, data.len() as u32);
            v.extend_from_slice(data);
        }
        v
    }

    /// Builds pcapng blocks in either byte order.
    pub(crate) struct Ng {
        pub be: bool,
        pub out: Vec<u8>,
    }

    impl Ng {
        pub fn new(be: bool) -> Ng {
            let mut ng = Ng { be, out: Vec::new() };
            ng.shb();
            ng
        }

        fn w32(&self, v: &mut Vec<u8>, x: u32) {
            v.extend_from_slice(&if self.be { x.to_be_bytes() } else { x.to_le_bytes() });
        }

        fn w16(&self, v: &mut Vec<u8>, x: u16) {
            v.extend_from_slice(&if self.be { x.to_be_bytes() } else { x.to_le_bytes() });
        }

        pub fn block(&mut self, btype: u32, body: &[u8]) {
            let mut body = body.to_vec();
            while !body.len().is_multiple_of(4) {
                body.push(0);
            }
            let total = body.len() as u32 + 12;
            let mut v = Vec::new();
            self.w32(&mut v, btype);
            self.w32(&mut v, total);
            v.extend_from_slice(&body);
            self.w32(&mut v, total);
            self.out.extend_from_slice(&v);
        }

        pub fn shb(&mut self) {
            let mut b = Vec::new();
            self.w32(&mut b, NG_BYTE_ORDER);
            self.w16(&mut b, 1);
            self.w16(&mut b, 0);
            b.extend_from_slice(&u64::MAX.to_le_bytes());
            self.block(NG_SHB, &b);
        }

        /// An interface; `tsresol` is the raw option byte if any.
        pub fn idb(&mut self, linktype: u16, tsresol: Option<u8>) {
            let mut b = Vec::new();
            self.w16(&mut b, linktype);
            self.w16(&mut b, 0);
            self.w32(&mut b, 262_144);
            if let Some(r) = tsresol {
                self.w16(&mut b, NG_IF_TSRESOL);
                self.w16(&mut b, 1);
                b.extend_from_slice(&[r, 0, 0, 0]);
                self.w16(&mut b, 0);
                self.w16(&mut b, 0);
            }
            self.block(NG_IDB, &b);
        }

        pub fn epb(&mut self, iface: u32, ts: u64, data: &[u8]) {
            let mut b = Vec::new();
            self.w32(&mut b, iface);
            self.w32(&mut b, (ts >> 32) as u32);
            self.w32(&mut b, ts as u32);
            self.w32(&mut b, data.len() as u32);
            self.w32(&mut b, data.len() as u32 + 10);
            b.extend_from_slice(data);
            self.block(NG_EPB, &b);
        }

        pub fn spb(&mut self, data: &[u8]) {
            let mut b = Vec::new();
            self.w32(&mut b, data.len() as u32);
            b.extend_from_slice(data);
            self.block(NG_SPB, &b);
        }
    }

    type Packet = (u64, i128, u32, u32, Vec<u8>);

    fn read_all(bytes: &[u8]) -> (Vec<Packet>, Option<CaptureError>) {
        let mut r = match Reader::new(bytes) {
            Ok(r) => r,
            Err(e) => return (Vec::new(), Some(e)),
        };
        let mut v = Vec::new();
        loop {
            match r.next() {
                Ok(Some(p)) => v.push((p.number, p.ts_ns, p.linktype, p.orig_len, p.data.to_vec())),
                Ok(None) => return (v, None),
                Err(e) => return (v, Some(e)),
            }
        }
    }

    #[test]
    fn pcap_both_byte_orders_and_resolutions() {
        for be in [false, true] {
            for nanos in [false, true] {
                let bytes = pcap(be, nanos, 113, &[(10, 5, b"abc"), (11, 0, b""), (12, 7, b"defgh")]);
                let r = Reader::new(&bytes[..]).unwrap();
                assert_eq!(r.format(), Format::Pcap { big_endian: be, nanos });
                let (pkts, err) = read_all(&bytes);
                assert_eq!(err, None, "be={be} nanos={nanos}");
                let unit = if nanos { 1 } else { 1000 };
                assert_eq!(
                    pkts,
                    vec![
                        (1, 10_000_000_000 + 5 * unit, 113, 3, b"abc".to_vec()),
                        (2, 11_000_000_000, 113, 0, vec![]),
                        (3, 12_000_000_000 + 7 * unit, 113, 5, b"defgh".to_vec()),
                    ]
                );
            }
        }
    }

    #[test]
    fn pcapng_both_byte_orders_resolutions_and_interfaces() {
        for be in [false, true] {
            let mut ng = Ng::new(be);
            ng.idb(1, None); // microseconds
            ng.idb(101, Some(9)); // nanoseconds
            ng.block(5, &[0; 8]); // an interface statistics block: skipped
            ng.epb(0, 1_500_000, b"eth");
            ng.epb(1, 2_000_000_123, b"raw");
            ng.spb(b"simple");
            // A second section resets the interfaces.
            ng.shb();
            ng.idb(276, Some(0x80 | 10)); // 2^-10 s
            ng.epb(0, 2048, b"sll2");
            let (pkts, err) = read_all(&ng.out);
            assert_eq!(err, None, "be={be}");
            assert_eq!(
                pkts,
                vec![
                    (1, 1_500_000_000, 1, 13, b"eth".to_vec()),
                    (2, 2_000_000_123, 101, 13, b"raw".to_vec()),
                    (3, 0, 1, 6, b"simple".to_vec()),
                    (4, 2_000_000_000, 276, 14, b"sll2".to_vec()),
                ]
            );
        }
    }

    #[test]
    fn truncated_pcap_reports_the_packet_and_keeps_the_earlier_ones() {
        let bytes = pcap(false, false, 1, &[(1, 0, &[1; 60]), (2, 0, &[2; 60]), (3, 0, &[3; 60])]);
        // Cut inside the data of packet 3.
        let (pkts, err) = read_all(&bytes[..bytes.len() - 10]);
        assert_eq!(pkts.len(), 2);
        let err = err.unwrap();
        assert_eq!(err.packet, Some(3));
        assert_eq!(err.offset, 24 + 2 * 76);
        assert!(err.to_string().starts_with("packet 3 (byte 176): capture truncated: the packet data has 50 of 60 bytes"), "{err}");
        // Cut inside a record header.
        let (pkts, err) = read_all(&bytes[..24 + 76 + 5]);
        assert_eq!(pkts.len(), 1);
        assert!(err.unwrap().to_string().contains("packet 2 (byte 100): capture truncated: the record header has 5 of 16 bytes"));
    }

    #[test]
    fn corrupt_records_are_reported() {
        let mut bytes = pcap(false, false, 1, &[(1, 0, &[1; 60]), (2, 0, &[2; 60])]);
        bytes[24 + 76 + 8..24 + 76 + 12].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
        let (pkts, err) = read_all(&bytes);
        assert_eq!(pkts.len(), 1);
        assert!(err.unwrap().to_string().contains("packet 2 (byte 100): record length 2147483647 is larger than"));

        let mut ng = Ng::new(false);
        ng.idb(1, None);
        ng.epb(0, 1, b"ok");
        ng.epb(3, 1, b"no such interface");
        let (pkts, err) = read_all(&ng.out);
        assert_eq!(pkts.len(), 1);
        assert!(err.unwrap().what.contains("interface 3 but the section declares 1"));

        let mut ng = Ng::new(true);
        ng.idb(1, None);
        ng.epb(0, 1, b"ok");
        ng.epb(0, 1, b"cut");
        let cut = ng.out.len() - 3;
        let (pkts, err) = read_all(&ng.out[..cut]);
        assert_eq!(pkts.len(), 1);
        let err = err.unwrap();
        assert_eq!(err.packet, Some(2));
        assert!(err.what.contains("capture truncated"), "{err}");

        let mut ng = Ng::new(false);
        ng.idb(1, None);
        ng.epb(0, 1, b"data");
        let n = ng.out.len();
        ng.out[n - 4] ^= 0x40; // trailing length
        let (_, err) = read_all(&ng.out);
        assert!(err.unwrap().what.contains("trailing length does not match"));
    }

    #[test]
    fn not_a_capture() {
        let (_, err) = read_all(b"GET / HTTP/1.1\r\n");
        assert_eq!(err.unwrap().to_string(), "file header: unknown magic number 47455420; not a pcap or pcapng file");
        let (_, err) = read_all(b"\xd4\xc3");
        assert!(err.unwrap().to_string().contains("2 bytes long"));
        let (_, err) = read_all(&pcap(false, false, 1, &[])[..10]);
        assert!(err.unwrap().to_string().contains("truncated pcap header: 10 of 24 bytes"));
    }

    #[test]
    fn errors_are_sticky() {
        let bytes = pcap(false, false, 1, &[(1, 0, &[1; 60])]);
        let mut r = Reader::new(&bytes[..bytes.len() - 1]).unwrap();
        let e1 = r.next().unwrap_err();
        let e2 = r.next().unwrap_err();
        assert_eq!(e1, e2);
    }
}

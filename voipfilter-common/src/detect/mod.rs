//! Protocol detectors: pure functions over the L4 payload of one packet.
//!
//! Each detector lives in its own file with its tests beside it, and is generic over
//! [`Bytes`] so that the same code runs in the XDP program (on the packet) and on the host
//! (tests, replay checks). A detector sees the payload through [`Payload`], so its offsets
//! start at 0 at the first payload byte; it returns what it recognised and never panics.
//!
//! Verifier rules for code in this module (see docs/verifier.md and the toolchain notes):
//! every loop has a constant trip count and a constant clamp on the offset it reads at; no
//! slice indexing with variable indices (use `Bytes` loads); no `==` on slices or arrays longer
//! than 16 bytes (compare `u32`/`u16` words); everything `#[inline(always)]`.

use crate::Bytes;

pub mod agora;
pub mod apps;
pub mod discord;
pub mod dtls;
pub mod h323;
pub mod iax;
pub mod imo;
pub mod line;
pub mod megaco;
pub mod mgcp;
pub mod mumble;
pub mod rtp;
pub mod sccp;
pub mod sdp;
pub mod sip;
pub mod snapchat;
pub mod stun;
pub mod teamspeak;
pub mod telegram;
pub mod track;
pub mod viber;
pub mod zoom;

/// A transport endpoint announced inside a payload (SDP `c=`/`m=`, STUN XOR addresses).
/// An IPv4 address uses the first 4 bytes of `addr`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: [u8; 16],
    pub port: u16,
    pub ipv6: bool,
}

/// The L4 payload of a packet: a window `[off, off + len)` of the frame, with offsets relative
/// to its start.
pub struct Payload<'a, B: ?Sized> {
    p: &'a B,
    off: usize,
    len: usize,
}

impl<'a, B: Bytes + ?Sized> Payload<'a, B> {
    /// The window `[off, end)` of `p`; empty when `end <= off`.
    #[inline(always)]
    pub fn new(p: &'a B, off: usize, end: usize) -> Self {
        Payload { p, off, len: end.saturating_sub(off) }
    }

    /// Absolute offset of the window in the frame.
    #[inline(always)]
    pub fn offset(&self) -> usize {
        self.off
    }

    /// The window shifted by `skip` bytes (e.g. past a TURN ChannelData or RFC 4571 header).
    #[inline(always)]
    pub fn skip(&self, skip: usize) -> Payload<'a, B> {
        Payload { p: self.p, off: self.off + skip, len: self.len.saturating_sub(skip) }
    }
}

impl<B: Bytes + ?Sized> Bytes for Payload<'_, B> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn load<T: Copy>(&self, off: usize) -> Option<T> {
        if off + core::mem::size_of::<T>() > self.len {
            return None;
        }
        self.p.load(self.off + off)
    }

    #[inline(always)]
    fn launder(&self, x: usize, max: usize) -> Option<usize> {
        self.p.launder(x, max)
    }
}

/// `s` as a big-endian `u32` (for comparing 4-byte text tags in one instruction).
#[inline(always)]
pub const fn tag4(s: &[u8; 4]) -> u32 {
    u32::from_be_bytes(*s)
}

/// `s` as a big-endian `u16`.
#[inline(always)]
pub const fn tag2(s: &[u8; 2]) -> u16 {
    u16::from_be_bytes(*s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_window_is_bounded() {
        let frame: &[u8] = b"0123456789";
        let p = Payload::new(frame, 4, 8);
        assert_eq!(p.len(), 4);
        assert_eq!(p.u8_at(0), Some(b'4'));
        assert_eq!(p.u8_at(3), Some(b'7'));
        assert_eq!(p.u8_at(4), None, "past the window, though inside the frame");
        assert_eq!(p.be16(3), None);
        let q = p.skip(2);
        assert_eq!((q.len(), q.u8_at(0)), (2, Some(b'6')));
        assert_eq!(p.skip(9).len(), 0);
        assert_eq!(Payload::new(frame, 8, 4).len(), 0);
        assert_eq!(tag4(b"SIP/"), 0x5349_502F);
    }
}

//! Per-flow RTP/RTCP confirmation: a few headers from [`crate::detect::rtp::header`] in, one
//! verdict out. The state is a small `#[repr(C)]` record meant to sit in the flow-table value.
//!
//! Mirrors the decision half of nDPI `src/lib/protocols/rtp.c` (`ndpi_rtp_search`, facts §2),
//! with a different rule: nDPI needs 3 RTP-shaped packets (any SSRC, any sequence numbers, one
//! repeated sequence number cancels) or 4 RTCP-shaped ones. We need fewer packets and more
//! agreement between them. XDP class: **F**.
//!
//! # The rule
//! The caller feeds every packet of a flow that it inspects for RTP, in order, with the packet's
//! direction (0 or 1) and its header (`None` when the payload is neither RTP nor RTCP). Each
//! direction remembers its last RTP header (SSRC, sequence number, timestamp, payload type) and
//! the sender SSRC of its last RTCP packet.
//!
//! **Confirmed RTP** when an RTP packet follows an earlier RTP packet *of the same direction*
//! with
//! * the same SSRC,
//! * a sequence number 1..=[`MAX_SEQ_GAP`] ahead (mod 2^16: losses and wrap-around pass,
//!   reordering and big jumps do not),
//! * a timestamp not behind (mod 2^32: equal timestamps are fine, video frames span packets),
//! * and the same payload type, or, if the type changed (DTMF 101 or comfort noise 13 between
//!   voice packets), this is at least the 3rd RTP packet of the flow;
//!
//! or when an RTP packet and an RTCP packet of the same direction carry the same SSRC (RTP and
//! RTCP multiplexed on one port, RFC 5761: the RTCP sender SSRC is the sender's RTP SSRC).
//!
//! **Confirmed RTCP** when two RTCP packets of the same direction carry the same sender SSRC.
//!
//! So a plain RTP stream (one SSRC per direction, nothing else on the flow) is confirmed on its
//! 2nd packet when one side talks, and by its 3rd whatever the interleaving of the two
//! directions (with two directions, two of any three packets share one): at most 2 packets pass
//! before the confirmation ("RTP without signalling: at most 2 packets pass before the first
//! drop"). Each non-RTP packet opening the flow, and each packet of a second interleaved SSRC,
//! adds one. An RTCP flow (one packet every few seconds each way) is confirmed on the second
//! report of either side, at the latest its 3rd packet.
//!
//! **Not RTP**:
//! * an RTP packet repeats the sequence number of the remembered one of its direction with
//!   another SSRC or timestamp (nDPI cancels on any repeat; constant "sequence numbers" are how RakNet,
//!   NTP with LI=2 and other RTP-shaped protocols look);
//! * the 3rd packet with no RTP/RTCP header ([`MAX_MISSES`]): nDPI also lets a few unknown
//!   packets open a flow (`rtp.pcapng`'s 55402/6008 call starts with a 16-byte keepalive, the
//!   Discord call with two IP-discovery packets) and gives up after about 3;
//! * [`MAX_PENDING`] packets without a confirmation.
//!
//! A packet that repeats the remembered one of its direction exactly (same SSRC, sequence number
//! and timestamp: a retransmission or a duplicate) changes nothing, but still counts towards
//! [`MAX_PENDING`]. An RTP packet with another SSRC than the remembered one is set aside once:
//! the remembered stream is kept for the next packet, so two interleaved streams (WebRTC BUNDLE
//! of audio and video, an SFU forwarding two speakers: `discord.pcap`'s 61392/50004 flow
//! alternates SSRCs 0xa1f9 and 0xa139 packet by packet) confirm on their 3rd packet; a second
//! packet in a row with another SSRC replaces the remembered stream (a sender that changed its
//! SSRC). A packet of the remembered SSRC whose sequence number or timestamp goes backwards or
//! jumps replaces it too.
//!
//! Once decided (confirmed or not RTP), the verdict is kept and later calls return it unchanged.
//!
//! # What the caller must do
//! * Call [`update`] only for packets with a non-empty payload (TCP ACKs carry no header), on
//!   flows whose ports pass [`crate::detect::rtp::excluded_ports`], with the header of
//!   [`crate::detect::rtp::header`] (UDP) or [`crate::detect::rtp::header_tcp`] (TCP).
//! * On a flow that carries STUN, DTLS or ZRTP (RFC 7983 demultiplexing by first byte), skip
//!   those packets instead of passing `None`: a DTLS handshake would exhaust [`MAX_MISSES`] before
//!   the first SRTP packet.
//! * `dir` is the packet's direction in the flow (0 or 1; only bit 0 is read).
//!
//! Differences from nDPI, on purpose: fewer packets (2-3 instead of 3-8 for RTP, 2-3 instead of 4
//! for RTCP); SSRC, sequence and timestamp agreement instead of bare header shapes; an exact
//! duplicate is ignored rather than cancelling; a STUN packet is the caller's business (nDPI
//! resets its stages on one).
//!
//! Checked on the corpus (every TCP/UDP flow of `/work/shared/corpus/pcap`, STUN/DTLS packets
//! skipped as above): no flow labelled `pass` is confirmed; every flow nDPI labels RTP or RTCP is,
//! on its 2nd or 3rd fed packet (`rtp.pcapng`'s 55402/6008 on its 3rd, after the keepalive), and
//! so are the SRTP legs of the WhatsApp, Teams, Google, Discord and KakaoTalk calls.
//!
//! Verifier notes: no loops, no indexing; the two directions are two named fields chosen with
//! an `if`. Measured on kernel 6.18 in a test XDP program (state in an array map value): RTP
//! header + [`update`] verify in about 7k processed instructions, and the kernel's verdicts and
//! final states equal the host's on all 16k corpus packets.

use crate::detect::rtp::{RtpHeader, RtpKind};

/// Largest forward step of the sequence number between two packets of a direction that still
/// counts as the same stream (up to 15 packets lost in between).
pub const MAX_SEQ_GAP: u16 = 16;
/// Packets without an RTP/RTCP header before the flow is declared not RTP (the 3rd one decides).
pub const MAX_MISSES: u8 = 3;
/// Packets fed without a confirmation before the flow is declared not RTP.
pub const MAX_PENDING: u8 = 8;

/// `RtpDir::flags` bit: the RTP fields hold an RTP packet of the direction.
pub const SEEN_RTP: u8 = 1;
/// `RtpDir::flags` bit: `rtcp_ssrc` holds the sender SSRC of the last RTCP packet.
pub const SEEN_RTCP: u8 = 2;
/// `RtpDir::flags` bit: the last RTP packet of the direction had another SSRC than the one
/// remembered (the next such packet replaces it).
pub const OTHER_SSRC: u8 = 4;

/// `RtpState::verdict` values.
pub const VERDICT_PENDING: u8 = 0;
pub const VERDICT_RTP: u8 = 1;
pub const VERDICT_RTCP: u8 = 2;
pub const VERDICT_NOT_RTP: u8 = 3;

/// What one direction of the flow last showed.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtpDir {
    /// SSRC of the remembered RTP packet.
    pub ssrc: u32,
    /// Its timestamp.
    pub ts: u32,
    /// Sender SSRC of the last RTCP packet.
    pub rtcp_ssrc: u32,
    /// Its sequence number.
    pub seq: u16,
    /// Its payload type.
    pub pt: u8,
    /// `SEEN_RTP` | `SEEN_RTCP` | `OTHER_SSRC`.
    pub flags: u8,
}

const _: () = assert!(core::mem::size_of::<RtpDir>() == 16);

/// Per-flow confirmation state; all zero (`Default`) for a new flow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtpState {
    /// Direction 0.
    pub dir0: RtpDir,
    /// Direction 1.
    pub dir1: RtpDir,
    /// Packets fed to [`update`] before the verdict (saturating).
    pub pkts: u8,
    /// RTP packets among them, not counting exact repeats (saturating).
    pub rtp_pkts: u8,
    /// Packets among them with no RTP/RTCP header.
    pub misses: u8,
    /// `VERDICT_*`.
    pub verdict: u8,
    pub _pad: [u8; 4],
}

const _: () = assert!(core::mem::size_of::<RtpState>() == 40);

/// The result of feeding one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtpVerdict {
    /// The flow is RTP (or RTCP); every later call says so too.
    Confirmed(RtpKind),
    /// Not decided yet: feed the next packet.
    Pending,
    /// The flow is not RTP; every later call says so too.
    NotRtp,
}

impl RtpState {
    /// The state of a new flow.
    pub const NEW: RtpState = RtpState {
        dir0: RtpDir {
            ssrc: 0,
            ts: 0,
            rtcp_ssrc: 0,
            seq: 0,
            pt: 0,
            flags: 0,
        },
        dir1: RtpDir {
            ssrc: 0,
            ts: 0,
            rtcp_ssrc: 0,
            seq: 0,
            pt: 0,
            flags: 0,
        },
        pkts: 0,
        rtp_pkts: 0,
        misses: 0,
        verdict: VERDICT_PENDING,
        _pad: [0; 4],
    };

    /// The verdict so far, without feeding a packet.
    #[inline(always)]
    pub fn verdict(&self) -> RtpVerdict {
        match self.verdict {
            VERDICT_RTP => RtpVerdict::Confirmed(RtpKind::Rtp),
            VERDICT_RTCP => RtpVerdict::Confirmed(RtpKind::Rtcp),
            VERDICT_NOT_RTP => RtpVerdict::NotRtp,
            _ => RtpVerdict::Pending,
        }
    }
}

/// Feeds one packet of the flow: its direction (0 or 1) and its RTP/RTCP header, if it has one.
#[inline(always)]
pub fn update(st: &mut RtpState, dir: u8, h: Option<&RtpHeader>) -> RtpVerdict {
    if st.verdict != VERDICT_PENDING {
        return st.verdict();
    }
    st.pkts = st.pkts.saturating_add(1);
    let v = match step(st, dir, h) {
        RtpVerdict::Pending if st.pkts >= MAX_PENDING => RtpVerdict::NotRtp,
        v => v,
    };
    st.verdict = match v {
        RtpVerdict::Confirmed(RtpKind::Rtp) => VERDICT_RTP,
        RtpVerdict::Confirmed(RtpKind::Rtcp) => VERDICT_RTCP,
        RtpVerdict::NotRtp => VERDICT_NOT_RTP,
        RtpVerdict::Pending => VERDICT_PENDING,
    };
    v
}

#[inline(always)]
fn step(st: &mut RtpState, dir: u8, h: Option<&RtpHeader>) -> RtpVerdict {
    let Some(h) = h else {
        st.misses = st.misses.saturating_add(1);
        return if st.misses >= MAX_MISSES {
            RtpVerdict::NotRtp
        } else {
            RtpVerdict::Pending
        };
    };
    let d = if dir & 1 == 0 {
        &mut st.dir0
    } else {
        &mut st.dir1
    };
    match h.kind {
        RtpKind::Rtp => {
            if d.flags & SEEN_RTP != 0 && h.seq == d.seq {
                if h.ssrc == d.ssrc && h.ts == d.ts {
                    // A duplicate or retransmission: no evidence either way.
                    return RtpVerdict::Pending;
                }
                return RtpVerdict::NotRtp;
            }
            st.rtp_pkts = st.rtp_pkts.saturating_add(1);
            if d.flags & SEEN_RTCP != 0 && d.rtcp_ssrc == h.ssrc {
                return RtpVerdict::Confirmed(RtpKind::Rtp);
            }
            if d.flags & SEEN_RTP != 0 && h.ssrc != d.ssrc && d.flags & OTHER_SSRC == 0 {
                // Another stream, interleaved (BUNDLE, an SFU forwarding two speakers) or
                // replacing this one: keep the remembered stream for one more packet.
                d.flags |= OTHER_SSRC;
                return RtpVerdict::Pending;
            }
            if d.flags & SEEN_RTP != 0
                && h.ssrc == d.ssrc
                && h.seq.wrapping_sub(d.seq) <= MAX_SEQ_GAP
                && h.ts.wrapping_sub(d.ts) < 0x8000_0000
                && (h.pt == d.pt || st.rtp_pkts >= 3)
            {
                return RtpVerdict::Confirmed(RtpKind::Rtp);
            }
            d.ssrc = h.ssrc;
            d.ts = h.ts;
            d.seq = h.seq;
            d.pt = h.pt;
            d.flags = (d.flags | SEEN_RTP) & !OTHER_SSRC;
            RtpVerdict::Pending
        }
        RtpKind::Rtcp => {
            if d.flags & SEEN_RTP != 0 && d.ssrc == h.ssrc {
                return RtpVerdict::Confirmed(RtpKind::Rtp);
            }
            if d.flags & SEEN_RTCP != 0 && d.rtcp_ssrc == h.ssrc {
                return RtpVerdict::Confirmed(RtpKind::Rtcp);
            }
            d.rtcp_ssrc = h.ssrc;
            d.flags |= SEEN_RTCP;
            RtpVerdict::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rtp::{
        header, header_tcp,
        tests::{hex, padded},
    };

    use RtpVerdict::{Confirmed, NotRtp, Pending};

    const RTP: RtpVerdict = Confirmed(RtpKind::Rtp);
    const RTCP: RtpVerdict = Confirmed(RtpKind::Rtcp);

    /// One captured packet: direction, first bytes of the payload (hex) and the payload length.
    type Pkt = (u8, &'static str, usize);

    /// Feeds `pkts` (UDP payloads, zero-padded to their length past the captured prefix) through
    /// a new state and returns the verdict after each packet.
    fn run(pkts: &[Pkt]) -> Vec<RtpVerdict> {
        let mut st = RtpState::default();
        pkts.iter()
            .map(|&(dir, p, len)| update(&mut st, dir, header(&padded(p, len)[..]).as_ref()))
            .collect()
    }

    #[test]
    fn new_state_is_zero() {
        assert_eq!(RtpState::NEW, RtpState::default());
        assert_eq!(RtpState::NEW.verdict(), Pending);
    }

    #[test]
    fn sip_rtp_leg_confirms_on_the_second_packet() {
        // sip.pcap packets 95-97: 192.168.1.2:30000 -> 212.242.33.36:40392, PT 8, seq 0x6fae..,
        // ts += 160, SSRC 0x3796cb71 (one direction only; 172-byte payloads).
        let v = run(&[
            (0, "80086fae000004d83796cb71", 172),
            (0, "80086faf000005783796cb71", 172),
            (0, "80086fb0000006183796cb71", 172),
        ]);
        assert_eq!(v, [Pending, RTP, RTP]);
    }

    #[test]
    fn video_with_marker_and_padding_confirms() {
        // rtp.pcapng packets 1-4: 10.204.220.71:6000 -> 10.204.220.171:6000, H.263 (PT 34),
        // marker on every other packet (b1 0x22 / 0xa2), two packets per timestamp.
        let v = run(&[
            (1, "802201100009e88600001646", 1444),
            (1, "80a201110009e88600001646", 896),
            (1, "802201120009feac00001646", 1444),
            (1, "80a201130009feac00001646", 1012),
        ]);
        assert_eq!(v, [Pending, RTP, RTP, RTP]);
        // Packets 6-8: packet 7 has the padding bit (0xa0) and must not break the stream.
        let v = run(&[
            (0, "80220115000a169400001646", 1444),
            (0, "a0a20116000a169400001646", 124),
        ]);
        assert_eq!(v, [Pending, RTP]);
    }

    #[test]
    fn leading_keepalive_is_tolerated() {
        // rtp.pcapng packets 83-85: 10.140.67.167:55402 -> 148.153.85.97:6008 opens with a
        // 16-byte non-RTP packet, then Opus (PT 111, CC=1) with seq 0xcdd2, 0xcdd3.
        let v = run(&[
            (0, "0100000000000000000000000000011c", 16),
            (0, "816fcdd21e5131ffb80974d80000011c480be455bf14987c", 24),
            (0, "816fcdd31e5135bfb80974d80000011c", 23),
        ]);
        assert_eq!(v, [Pending, Pending, RTP]);
    }

    #[test]
    fn srtp_with_muxed_rtcp_confirms_on_the_ssrc() {
        // rtp.pcapng packets 53-56 (the Discord call, 150.219.118.19:54234 <->
        // 192.113.193.227:50003): two 74-byte IP-discovery packets, one SRTP packet (PT 120,
        // SSRC 0x001a7e73) and an SRTCP feedback packet whose sender SSRC is the same.
        let v = run(&[
            (0, "00010046001a7e7300000000000000000000000000000000", 74),
            (1, "00020046001a7e7338352e3135342e322e31343500000000", 74),
            (0, "907848b6d17f3d75001a7e73bede000130a179db6a7f08e1", 160),
            (0, "afcd0008001a7e73bf0ee62e93b426ec04bc17f9918c0856", 56),
        ]);
        assert_eq!(v, [Pending, Pending, Pending, RTP]);
        // The same SRTCP packet first, then the SRTP one: confirmed too.
        let v = run(&[
            (0, "afcd0008001a7e73bf0ee62e93b426ec04bc17f9918c0856", 56),
            (0, "907848b6d17f3d75001a7e73bede000130a179db6a7f08e1", 160),
        ]);
        assert_eq!(v, [Pending, RTP]);
    }

    #[test]
    fn rtcp_flow_confirms_on_the_second_report_of_one_side() {
        // rtcp_multiple_pkts_in_the_same_datagram.pcap packets 1-5 (whole payloads):
        // 217.12.244.34:25963 sends SR+SDES (SSRC 0x5d931534), 217.12.247.98:31601 RR+SDES
        // (SSRC 0x01932db4).
        let p = |s: &str| hex(s);
        let sr1 = p(crate::detect::rtp::tests::RTCP_SR_1);
        let rr2 = p(crate::detect::rtp::tests::RTCP_RR_2);
        let sr3 = p(
            "81c8000c5d931534dd3ac17452808c820000faa0000001910000faa001932db4000000010000000000000000000000000000000081ca000e5d931534010835643933313533340725467265655357495443482e6f7267202d2d20436f6d6520746f20436c7565436f6e2e636f6d000000",
        );
        let mut st = RtpState::default();
        assert_eq!(update(&mut st, 0, header(&sr1[..]).as_ref()), Pending);
        assert_eq!(update(&mut st, 1, header(&rr2[..]).as_ref()), Pending);
        assert_eq!(update(&mut st, 0, header(&sr3[..]).as_ref()), RTCP);
        // Kept.
        assert_eq!(update(&mut st, 1, None), RTCP);
        assert_eq!(st.verdict(), RTCP);
    }

    #[test]
    fn rtp_over_tcp_confirms() {
        // rtp.pcapng packets 19, 21, 23: 172.16.168.24:40252 -> 172.16.168.64:5000, RFC 4571
        // framing (length 0x04bc), PT 8, seq 0xc623.. (the ACK-only packets of the other
        // direction carry no payload and are not fed).
        let mut st = RtpState::default();
        let mut out = vec![];
        for pre in [
            "04bc8088c6236448eca900000000d5d5",
            "04bc8008c6246448f159000000005756",
            "04bc8008c6256448f609000000005b5e",
        ] {
            out.push(update(
                &mut st,
                0,
                header_tcp(&padded(pre, 1214)[..]).as_ref(),
            ));
        }
        assert_eq!(out, [Pending, RTP, RTP]);
    }

    #[test]
    fn two_directions_confirm_by_the_third_packet() {
        // sip.pcap's stream (direction 0) interleaved with a synthetic reply stream (direction 1,
        // SSRC 0x11223344): one packet each way, then either direction's second packet decides.
        let a1 = (0, "80086fae000004d83796cb71", 172);
        let a2 = (0, "80086faf000005783796cb71", 172);
        let b1 = (1, "800012340000100011223344", 172);
        let b2 = (1, "80001235000010a011223344", 172);
        assert_eq!(run(&[a1, b1, a2]), [Pending, Pending, RTP]);
        assert_eq!(run(&[a1, b1, b2]), [Pending, Pending, RTP]);
        assert_eq!(run(&[b1, a1, b2]), [Pending, Pending, RTP]);
    }

    #[test]
    fn payload_type_change_waits_for_a_third_packet() {
        // Voice PT 0, then a DTMF event (PT 101) in the same stream, then voice again.
        let v = run(&[
            (0, "800000640000a0000badcafe", 172),
            (0, "80e500650000a0000badcafe", 28),
            (0, "800000660000a1400badcafe", 172),
        ]);
        assert_eq!(v, [Pending, Pending, RTP]);
    }

    #[test]
    fn sequence_wrap_and_losses() {
        // 0xffff -> 0x0000 is one step; a gap of 16 still counts, 17 restarts the direction.
        assert_eq!(
            run(&[
                (0, "8000ffff000000000badcafe", 100),
                (0, "80000000000000a00badcafe", 100)
            ]),
            [Pending, RTP]
        );
        assert_eq!(
            run(&[
                (0, "800000010000000000000001", 100),
                (0, "8000001100000a0000000001", 100)
            ]),
            [Pending, RTP]
        );
        let v = run(&[
            (0, "800000010000000000000001", 100),
            (0, "8000001200000a0000000001", 100), // +17: restart
            (0, "8000001300000aa000000001", 100), // +1 from the restart
        ]);
        assert_eq!(v, [Pending, Pending, RTP]);
        // Backwards (reordering) restarts too.
        assert_eq!(
            run(&[
                (0, "800000050000032000000001", 100),
                (0, "800000040000028000000001", 100)
            ]),
            [Pending, Pending]
        );
    }

    #[test]
    fn timestamp_going_back_restarts() {
        let v = run(&[
            (0, "800000100001000000000007", 100),
            (0, "800000110000ff0000000007", 100), // ts - 0x100
            (0, "800000120000ffa000000007", 100),
        ]);
        assert_eq!(v, [Pending, Pending, RTP]);
    }

    #[test]
    fn interleaved_streams_confirm() {
        // discord.pcap packets 147-149 (66.22.196.173:50004 -> 192.168.2.100:61392, 281 bytes):
        // an SFU forwarding two speakers, SSRCs 0xa1f9 and 0xa139 alternating packet by packet.
        let v = run(&[
            (1, "90789816cc1a01fb0000a1f9bede0001", 281),
            (1, "907814f1b7197c9b0000a139bede0001", 281),
            (1, "90789817cc1a05bb0000a1f9bede0001", 281),
        ]);
        assert_eq!(v, [Pending, Pending, RTP]);
        // The same with the second stream first.
        let v = run(&[
            (1, "907814f1b7197c9b0000a139bede0001", 281),
            (1, "90789816cc1a01fb0000a1f9bede0001", 281),
            (1, "907814f2b719805b0000a139bede0001", 281),
        ]);
        assert_eq!(v, [Pending, Pending, RTP]);
    }

    #[test]
    fn ssrc_change_replaces_the_stream_on_its_second_packet() {
        let v = run(&[
            (0, "80000010000100000000000a", 100),
            (0, "80000500000200000000000b", 100), // other SSRC: set aside
            (0, "80000501000200a00000000b", 100), // again: replaces the remembered stream
            (0, "80000502000201400000000b", 100),
        ]);
        assert_eq!(v, [Pending, Pending, Pending, RTP]);
        // Three streams in turn never agree (until the budget runs out).
        let v = run(&[
            (0, "80000010000100000000000a", 100),
            (0, "80000500000200000000000b", 100),
            (0, "80000900000300000000000c", 100),
            (0, "80000011000100a00000000a", 100),
            (0, "80000501000200a00000000b", 100),
            (0, "80000901000300a00000000c", 100),
        ]);
        assert_eq!(v, [Pending; 6]);
    }

    #[test]
    fn duplicates_are_ignored_other_repeats_reject() {
        let p = (0, "80086fae000004d83796cb71", 172);
        let next = (0, "80086faf000005783796cb71", 172);
        assert_eq!(run(&[p, p, next]), [Pending, Pending, RTP]);
        // Same sequence number, other timestamp or SSRC: not RTP.
        assert_eq!(
            run(&[p, (0, "80086fae000005783796cb71", 172)]),
            [Pending, NotRtp]
        );
        assert_eq!(
            run(&[p, (0, "80086fae000004d83796cb72", 172)]),
            [Pending, NotRtp]
        );
        // A repeat in the other direction is not a repeat.
        assert_eq!(
            run(&[p, (1, "80086fae000004d83796cb71", 172), next]),
            [Pending, Pending, RTP]
        );
    }

    #[test]
    fn misses_and_budget() {
        let p = (0, "80086fae000004d83796cb71", 172);
        let q = (0, "80086faf000005783796cb71", 172);
        let junk = (0, "0100000000000000000000000000011c", 16);
        // Three packets without a header: not RTP (the third decides).
        assert_eq!(run(&[junk, junk, junk]), [Pending, Pending, NotRtp]);
        // Two are tolerated, before or between RTP packets.
        assert_eq!(run(&[junk, p, junk, q]), [Pending, Pending, Pending, RTP]);
        assert_eq!(
            run(&[junk, p, junk, junk, q]),
            [Pending, Pending, Pending, NotRtp, NotRtp]
        );
        // RTP-shaped packets that never agree: not RTP after MAX_PENDING packets.
        let mut st = RtpState::default();
        let mut last = Pending;
        for i in 0..MAX_PENDING as u32 {
            let h = RtpHeader {
                kind: RtpKind::Rtp,
                pt: 0,
                seq: i as u16 * 100,
                ssrc: i,
                ts: 0,
            };
            last = update(&mut st, (i & 1) as u8, Some(&h));
            if i + 1 < MAX_PENDING as u32 {
                assert_eq!(last, Pending, "packet {i}");
            }
        }
        assert_eq!(last, NotRtp);
        // Kept, whatever comes next.
        let good = header(&hex(crate::detect::rtp::tests::SIP_RTP_95)[..]).unwrap();
        assert_eq!(update(&mut st, 0, Some(&good)), NotRtp);
        assert_eq!(update(&mut st, 0, Some(&good)), NotRtp);
    }

    #[test]
    fn rtcp_needs_the_same_sender_in_one_direction() {
        let sr = |ssrc: u32| RtpHeader {
            kind: RtpKind::Rtcp,
            pt: 200,
            seq: 0,
            ssrc,
            ts: 0,
        };
        let mut st = RtpState::default();
        assert_eq!(update(&mut st, 0, Some(&sr(1))), Pending);
        assert_eq!(
            update(&mut st, 1, Some(&sr(1))),
            Pending,
            "same SSRC, other direction"
        );
        assert_eq!(update(&mut st, 0, Some(&sr(2))), Pending, "other SSRC");
        assert_eq!(update(&mut st, 0, Some(&sr(2))), RTCP);
    }

    #[test]
    fn raknet_never_confirms() {
        // raknet.pcap packets 46-48 (148.153.35.205:60022 -> 192.168.2.100:32951): the same
        // 24-byte datagram three times; its flags byte 0x84 reads as version 2 with CC=4, too
        // short for the CSRC list, so no header at all.
        let dg = (0, "8402000000008803000000000015e95e000000130c201546", 24);
        assert_eq!(run(&[dg, dg, dg]), [Pending, Pending, NotRtp]);
        // raknet.pcap packets 55-57 (192.168.2.100:32953 -> 148.153.35.205:60021): 28 bytes,
        // RTP-shaped (PT 0), repeated exactly: duplicates, never confirmed.
        let dg = (0, crate::detect::rtp::tests::RAKNET_55, 28);
        assert_eq!(run(&[dg, dg, dg]), [Pending, Pending, Pending]);
        // A RakNet datagram counter is 24-bit little-endian at 1..4: consecutive datagrams
        // change b1 and keep "seq" (bytes 2..4), with other content at 8..12 -> rejected.
        let v = run(&[
            (0, "8410000000008803000000000015e95e", 40),
            (0, "8411000000008803000000010015e95e", 40),
        ]);
        assert_eq!(v, [Pending, NotRtp]);
        // The connected-handshake packets (0x05..0x08 first) are not RTP at all.
        let v = run(&[
            (0, "0500ffff00fefefefefdfdfdfd123456", 1464),
            (1, "0600ffff00fefefefefdfdfdfd123456", 28),
            (0, "0700ffff00fefefefefdfdfdfd123456", 34),
        ]);
        assert_eq!(v, [Pending, Pending, NotRtp]);
    }

    #[test]
    fn ntp_dns_quic_wireguard_dtls_never_confirm() {
        // NTP with LI=2 (0xa3 client, 0xa4 server) is RTP-shaped. Consecutive packets repeat
        // poll and precision (our "seq") while root delay or dispersion (our timestamp and
        // SSRC) move: rejected; if the first 12 bytes do not move at all, the packets count as
        // duplicates and never confirm either. (NTPv4.pcap packet 1 with its first byte changed
        // from 0x23.)
        let ntp = hex(crate::detect::rtp::tests::NTP_1);
        let mut a = ntp.clone();
        a[0] = 0xa4;
        let mut b = a.clone();
        b[8] ^= 1; // root dispersion changes
        let mut st = RtpState::default();
        assert_eq!(update(&mut st, 0, header(&a[..]).as_ref()), Pending);
        assert_eq!(update(&mut st, 0, header(&b[..]).as_ref()), NotRtp);
        // dns.pcap packets 1-3, quic.pcap packets 1-4, wireguard.pcap packets 1-4 and
        // dtls.pcap packets 7-9 (first bytes): no header, so the third packet decides.
        let flows: [&[Pkt]; 4] = [
            &[
                (1, "dca28180000100000000000003777777", 34),
                (0, "bc1f0100000100000000000003777777", 33),
                (1, "bc1f8180000100000000000003777777", 33),
            ],
            &[
                (0, "0db2de5df14f5545eb51303234013b6e", 1350),
                (0, "0db2de5df14f5545eb51303234029dc6", 436),
                (1, "000103ef25ce9f07bba450c37de91c28", 1350),
            ],
            &[
                (0, "01000000d837d0305fcec7c8e5c8e2e3", 148),
                (1, "0200000006f47dabd837d030b18d5550", 92),
                (0, "0400000006f47dab0000000000000000", 128),
            ],
            &[
                (1, "16fefd000000000000000001fd010001", 522),
                (0, "16fefd00000000000000000083020000", 144),
                (1, "16fefd00000000000000010246010002", 595),
            ],
        ];
        for f in flows {
            assert_eq!(run(f), [Pending, Pending, NotRtp], "{}", f[0].1);
        }
    }

    #[test]
    fn random_udp_never_confirms() {
        // 2000 flows of 8 random payloads each (xorshift): RTP-shaped packets occur, agreeing
        // ones must not.
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x = crate::testing::xorshift(x);
            x
        };
        let mut shaped = 0;
        for _ in 0..2000 {
            let mut st = RtpState::default();
            for i in 0..8u8 {
                let mut p = [0u8; 64];
                for c in p.chunks_mut(8) {
                    c.copy_from_slice(&next().to_le_bytes());
                }
                let h = header(&p[..]);
                shaped += h.is_some() as u32;
                let v = update(&mut st, i & 1, h.as_ref());
                assert!(!matches!(v, Confirmed(_)), "{v:?}");
            }
        }
        assert!(
            shaped > 100,
            "the test should see RTP-shaped packets ({shaped})"
        );
    }

    #[test]
    fn direction_uses_bit_zero_only() {
        let a = header(&padded("80086fae000004d83796cb71", 172)[..]).unwrap();
        let b = header(&padded("80086faf000005783796cb71", 172)[..]).unwrap();
        let mut st = RtpState::default();
        assert_eq!(update(&mut st, 2, Some(&a)), Pending);
        assert_eq!(update(&mut st, 0, Some(&b)), RTP);
        assert_eq!(st.dir1.flags, 0);
    }
}
